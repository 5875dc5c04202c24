//! Counters of plugin calls by plugin and outcome, exported in the Prometheus text
//! format at `GET /api/admin/metrics`.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// (plugin, outcome)
type Key = (String, &'static str);

#[derive(Debug, Default)]
pub struct CallMetrics {
    // Key -> (count, total seconds). A mutex is plenty: one short critical section
    // per call, next to a call that costs microseconds at least.
    calls: Mutex<BTreeMap<Key, (u64, f64)>>,
}

impl CallMetrics {
    pub fn record(&self, plugin: &str, outcome: &'static str, seconds: f64) {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let entry = calls.entry((plugin.to_string(), outcome)).or_default();
        entry.0 += 1;
        entry.1 += seconds;
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        let calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::from(
            "# HELP agenthost_plugin_calls_total Plugin calls by outcome.\n\
             # TYPE agenthost_plugin_calls_total counter\n",
        );
        for ((plugin, outcome), (count, _)) in calls.iter() {
            out.push_str(&format!(
                "agenthost_plugin_calls_total{{plugin=\"{plugin}\",outcome=\"{outcome}\"}} {count}\n"
            ));
        }
        out.push_str(
            "# HELP agenthost_plugin_call_seconds_total Time spent in plugin calls.\n\
             # TYPE agenthost_plugin_call_seconds_total counter\n",
        );
        for ((plugin, outcome), (_, seconds)) in calls.iter() {
            out.push_str(&format!(
                "agenthost_plugin_call_seconds_total{{plugin=\"{plugin}\",outcome=\"{outcome}\"}} {seconds}\n"
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_plugin_and_outcome() {
        let metrics = CallMetrics::default();
        metrics.record("a", "ok", 0.5);
        metrics.record("a", "ok", 0.25);
        metrics.record("a", "timeout", 1.0);
        let text = metrics.render();
        assert!(text.contains("agenthost_plugin_calls_total{plugin=\"a\",outcome=\"ok\"} 2\n"));
        assert!(
            text.contains("agenthost_plugin_calls_total{plugin=\"a\",outcome=\"timeout\"} 1\n")
        );
        assert!(
            text.contains(
                "agenthost_plugin_call_seconds_total{plugin=\"a\",outcome=\"ok\"} 0.75\n"
            )
        );
    }
}
