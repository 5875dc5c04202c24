//! Plugin faults in the log: a `warn` tagged with plugin and version (a plugin's
//! failure is not the host's error), rate-limited so a storm of faults can't flood
//! the log. The metrics count every fault; the log keeps a sample.
//!
//! Per plugin version and window ([`WINDOW`]): a fault message is logged once (the
//! same message again is suppressed), and at most [`DISTINCT_PER_WINDOW`] different
//! messages are logged (so faults whose messages vary, e.g. with an index, are capped
//! too). The first line logged after a window ends carries how many were suppressed
//! in it. Memory is bounded: one small entry per faulting plugin version, at most
//! `DISTINCT_PER_WINDOW` message hashes in each.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a window lasts.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Different fault messages logged per plugin version and window.
pub const DISTINCT_PER_WINDOW: usize = 5;
/// Plugin versions tracked at once; past it, expired windows are dropped (and if all
/// are live, the oldest), so a flood of versions can't grow the map without bound.
const MAX_TRACKED: usize = 1024;

/// What to do with one fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Log it; `suppressed` faults of this plugin version were not logged since the
    /// last line (in the previous window).
    Log { suppressed: u64 },
    /// Count it, don't log it.
    Suppress,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    logged: Vec<u64>,
    suppressed: u64,
    /// Suppressed in the window before, not reported yet.
    carried: u64,
}

#[derive(Debug, Default)]
pub struct FaultLimiter {
    windows: Mutex<HashMap<(String, String), Window>>,
}

impl FaultLimiter {
    /// Decide about one fault of `plugin`@`version` with `message` at `now`.
    pub fn admit(&self, plugin: &str, version: &str, message: &str, now: Instant) -> Admit {
        let mut hasher = DefaultHasher::new();
        message.hash(&mut hasher);
        let hash = hasher.finish();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let key = (plugin.to_string(), version.to_string());
        if !windows.contains_key(&key) && windows.len() >= MAX_TRACKED {
            windows.retain(|_, w| now.duration_since(w.started) < WINDOW);
            if windows.len() >= MAX_TRACKED
                && let Some(oldest) = windows
                    .iter()
                    .min_by_key(|(_, w)| w.started)
                    .map(|(k, _)| k.clone())
            {
                windows.remove(&oldest);
            }
        }
        let window = windows.entry(key).or_insert_with(|| Window {
            started: now,
            logged: Vec::new(),
            suppressed: 0,
            carried: 0,
        });
        if now.duration_since(window.started) >= WINDOW {
            window.carried += window.suppressed;
            window.started = now;
            window.logged.clear();
            window.suppressed = 0;
        }
        if window.logged.contains(&hash) || window.logged.len() >= DISTINCT_PER_WINDOW {
            window.suppressed += 1;
            return Admit::Suppress;
        }
        window.logged.push(hash);
        Admit::Log {
            suppressed: std::mem::take(&mut window.carried),
        }
    }
}

/// One failed plugin call, as the log shows it.
#[derive(Debug)]
pub struct Fault<'a> {
    pub plugin: &'a str,
    pub version: &'a str,
    pub tool: &'a str,
    pub outcome: &'a str,
    pub error: &'a str,
    pub request_id: &'a str,
    /// What the guest wrote to stderr during the call (bounded).
    pub stderr: Option<&'a str>,
}

impl FaultLimiter {
    /// Log `fault` as a `warn` unless the limiter suppresses it. Returns whether it
    /// was logged.
    pub fn log(&self, fault: &Fault<'_>) -> bool {
        let key = format!("{}\n{}\n{}", fault.tool, fault.outcome, fault.error);
        let suppressed = match self.admit(fault.plugin, fault.version, &key, Instant::now()) {
            Admit::Suppress => return false,
            Admit::Log { suppressed } => suppressed,
        };
        tracing::warn!(
            target: "plugin",
            plugin = fault.plugin,
            version = fault.version,
            tool = fault.tool,
            outcome = fault.outcome,
            error = fault.error,
            request_id = fault.request_id,
            stderr = fault.stderr,
            suppressed_before = suppressed,
            "plugin call failed (identical faults of this version are logged once per {} s; \
             the metrics count all)",
            WINDOW.as_secs()
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex as StdMutex};

    use tracing::Level;
    use tracing_subscriber::layer::{Context, SubscriberExt};

    use super::*;

    #[test]
    fn identical_faults_are_logged_once_per_window() {
        let limiter = FaultLimiter::default();
        let start = Instant::now();
        assert_eq!(
            limiter.admit("p", "1.0.0", "boom", start),
            Admit::Log { suppressed: 0 }
        );
        for i in 0..999 {
            let now = start + Duration::from_millis(i);
            assert_eq!(limiter.admit("p", "1.0.0", "boom", now), Admit::Suppress);
        }
        // Another version, another plugin: their own windows.
        assert!(matches!(
            limiter.admit("p", "2.0.0", "boom", start),
            Admit::Log { .. }
        ));
        assert!(matches!(
            limiter.admit("q", "1.0.0", "boom", start),
            Admit::Log { .. }
        ));
        // The next window logs again and reports what was suppressed.
        let later = start + WINDOW;
        assert_eq!(
            limiter.admit("p", "1.0.0", "boom", later),
            Admit::Log { suppressed: 999 }
        );
        assert_eq!(limiter.admit("p", "1.0.0", "boom", later), Admit::Suppress);
    }

    #[test]
    fn varying_messages_are_capped_per_window() {
        let limiter = FaultLimiter::default();
        let now = Instant::now();
        let logged = (0..1000)
            .filter(|i| {
                limiter.admit("p", "1.0.0", &format!("index {i} out of bounds"), now)
                    != Admit::Suppress
            })
            .count();
        assert_eq!(logged, DISTINCT_PER_WINDOW);
    }

    #[test]
    fn the_tracked_versions_are_bounded() {
        let limiter = FaultLimiter::default();
        let now = Instant::now();
        for i in 0..(MAX_TRACKED * 3) {
            limiter.admit(&format!("p{i}"), "1.0.0", "boom", now);
        }
        assert!(limiter.windows.lock().unwrap().len() <= MAX_TRACKED);
    }

    /// Every event's level and fields, as a subscriber sees them.
    #[derive(Clone, Default)]
    struct Recorder(Arc<StdMutex<Vec<(Level, String)>>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Recorder {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            struct Fields(String);
            impl tracing::field::Visit for Fields {
                fn record_debug(
                    &mut self,
                    field: &tracing::field::Field,
                    value: &dyn std::fmt::Debug,
                ) {
                    self.0.push_str(&format!("{}={:?} ", field.name(), value));
                }
            }
            let mut fields = Fields(String::new());
            event.record(&mut fields);
            self.0
                .lock()
                .unwrap()
                .push((*event.metadata().level(), fields.0));
        }
    }

    #[test]
    fn a_storm_of_faults_is_one_warning_tagged_with_plugin_and_version() {
        let recorder = Recorder::default();
        let subscriber = tracing_subscriber::registry().with(recorder.clone());
        let limiter = FaultLimiter::default();
        let logged = tracing::subscriber::with_default(subscriber, || {
            (0..1000)
                .filter(|i| {
                    limiter.log(&Fault {
                        plugin: "faults",
                        version: "1.0.0",
                        tool: "trap",
                        outcome: "trap",
                        error: "the plugin crashed: panicked at src/lib.rs:1:1: boom",
                        request_id: &format!("req-{i}"),
                        stderr: Some("panicked at src/lib.rs:1:1:\nboom"),
                    })
                })
                .count()
        });
        assert_eq!(logged, 1);
        let events = recorder.0.lock().unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        let (level, fields) = &events[0];
        assert_eq!(*level, Level::WARN);
        assert!(fields.contains("plugin=\"faults\""), "{fields}");
        assert!(fields.contains("version=\"1.0.0\""), "{fields}");
        assert!(fields.contains("boom"), "{fields}");
    }
}
