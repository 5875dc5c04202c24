//! When a schedule fires: a cron expression in an IANA time zone, a fixed interval, or
//! once at an instant; and what happens to ticks missed while every host was down
//! (catch-up) or due while the previous run is still going (overlap). Temporal's names.
//!
//! DST follows croner 4: a wall time the spring gap skips fires at the first instant
//! after the gap (02:30 → 03:00); a fixed wall time the autumn overlap repeats fires
//! once, at its first (earlier-offset) occurrence; an expression with a range, step or
//! list in the hour (`0 * * * *`) fires in both passes of the repeated hour, as it does
//! every real hour. Ticks are UTC instants from then on (docs/automation.md, Schedules).

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use serde::{Deserialize, Serialize};

use crate::workflows::definition::Problem;

/// The shortest interval (and the finest cron: seconds are allowed, every second too).
pub const MIN_EVERY: Duration = Duration::from_secs(1);
/// The longest catch-up window.
pub const MAX_CATCH_UP_WINDOW: Duration = Duration::from_secs(366 * 86_400);
/// How late a tick may be seen and still count as on time rather than missed (a host
/// busy or restarting for a moment does not trigger the catch-up policy).
pub const ON_TIME: Duration = Duration::from_secs(15);

/// A schedule as a user writes it, in a workflow trigger or a scheduled task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Five fields (minute hour day month weekday) or six (seconds first); croner's
    /// syntax (`L`, `#`, `W`, names). Exactly one of `cron`, `every`, `at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 200, example = "0 8 * * MON-FRI")]
    pub cron: Option<String>,
    /// IANA time zone of `cron` (`Europe/Berlin`); default UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 64, example = "Europe/Berlin")]
    pub timezone: Option<String>,
    /// A fixed interval (`30s`, `15m`, `6h`, `1d`), counted from when it was saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 32, example = "15m")]
    pub every: Option<String>,
    /// Once, at this instant (RFC 3339); the schedule completes after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub catch_up: CatchUp,
    /// How far back missed ticks are still run (`latest`, `all`); default `1d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 32, example = "1d")]
    pub catch_up_window: Option<String>,
    #[serde(default)]
    pub overlap: Overlap,
    /// A workflow trigger's execution input (an object; `schedule: {id, tick}` is added).
    /// A scheduled task gives its input in its action instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub input: Option<serde_json::Value>,
}

/// Ticks missed while every host was down (seen later than `ON_TIME` after their time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Run none of them; the next on-time tick runs.
    Skip,
    /// Run the most recent one within the window, once.
    #[default]
    Latest,
    /// Run every one within the window, oldest first.
    All,
}

/// A tick due while the schedule's previous run is still going.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Don't run it (recorded as skipped).
    #[default]
    Skip,
    /// Keep one to run when the previous finishes; further ones are skipped.
    BufferOne,
    /// Run it alongside.
    Allow,
}

/// A checked spec, ready to compute ticks.
#[derive(Debug, Clone)]
pub enum Timing {
    Cron {
        cron: Box<Cron>,
        zone: chrono_tz::Tz,
    },
    Every(Duration),
    At(DateTime<Utc>),
}

impl ScheduleSpec {
    /// Check every field; problems are named under `prefix` (`triggers[0]`, `schedule`).
    pub fn check(&self, prefix: &str) -> Result<Timing, Vec<Problem>> {
        let at = |field: &str| format!("{prefix}.{field}");
        let mut problems = Vec::new();
        let given = [self.cron.is_some(), self.every.is_some(), self.at.is_some()];
        if given.iter().filter(|g| **g).count() != 1 {
            problems.push(Problem::at(
                prefix,
                "give exactly one of `cron`, `every` or `at`",
            ));
        }
        let zone = match self.timezone.as_deref() {
            None => Some(chrono_tz::UTC),
            Some(name) => match chrono_tz::Tz::from_str(name) {
                Ok(zone) => Some(zone),
                Err(_) => {
                    problems.push(Problem::at(
                        at("timezone"),
                        format!(
                            "{name:?} is not an IANA time zone (like `Europe/Berlin` or `UTC`)"
                        ),
                    ));
                    None
                }
            },
        };
        if self.timezone.is_some() && self.cron.is_none() {
            problems.push(Problem::at(
                at("timezone"),
                "only a `cron` schedule has a time zone (`every` and `at` are instants)",
            ));
        }
        let mut timing = None;
        if let Some(text) = &self.cron {
            match parse_cron(text) {
                Ok(cron) => {
                    timing = zone.map(|zone| Timing::Cron {
                        cron: Box::new(cron),
                        zone,
                    })
                }
                Err(why) => problems.push(Problem::at(at("cron"), why)),
            }
        }
        if let Some(text) = &self.every {
            match crate::config::parse_retention(text) {
                Ok(every) if every >= MIN_EVERY && every.subsec_nanos() == 0 => {
                    timing = Some(Timing::Every(every))
                }
                Ok(_) => problems.push(Problem::at(
                    at("every"),
                    "must be whole seconds, at least 1s",
                )),
                Err(why) => problems.push(Problem::at(at("every"), why)),
            }
        }
        if let Some(instant) = self.at {
            // The database keeps microseconds: a tick must be the same instant there.
            timing = Some(Timing::At(instant.trunc_subsecs(6)));
        }
        if let Some(text) = &self.catch_up_window {
            match crate::config::parse_retention(text) {
                Ok(window) if window <= MAX_CATCH_UP_WINDOW => {}
                Ok(_) => problems.push(Problem::at(at("catch_up_window"), "must be at most 366d")),
                Err(why) => problems.push(Problem::at(at("catch_up_window"), why)),
            }
        }
        if self.input.as_ref().is_some_and(|input| !input.is_object()) {
            problems.push(Problem::at(at("input"), "must be a JSON object"));
        }
        match timing {
            Some(timing) if problems.is_empty() => Ok(timing),
            _ => Err(problems),
        }
    }

    pub fn catch_up_window(&self) -> Duration {
        self.catch_up_window
            .as_deref()
            .and_then(|text| crate::config::parse_retention(text).ok())
            .unwrap_or(Duration::from_secs(86_400))
    }
}

/// Five or six fields; seconds optional. croner's messages are terse, so the field
/// count gets a sentence of our own.
fn parse_cron(text: &str) -> Result<Cron, String> {
    if text.len() > 200 {
        return Err("is longer than 200 bytes".into());
    }
    let fields = text.split_whitespace().count();
    if !(5..=6).contains(&fields) {
        return Err(format!(
            "{text:?} has {fields} fields; a cron expression has 5 (minute hour day month \
             weekday) or 6 (seconds first)"
        ));
    }
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(text)
        .map_err(|err| format!("{text:?} is not a cron expression: {err}"))
}

/// Now, as the database stores it (microseconds), so ticks computed from it in Rust
/// and read back from a row are the same instants.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

impl Timing {
    /// The first tick strictly after `after`, or none (a past `at`, a cron that never
    /// matches again).
    pub fn next_after(&self, after: DateTime<Utc>, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Timing::Cron { cron, zone } => cron
                .find_next_occurrence(&after.with_timezone(zone), false)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
            Timing::Every(every) => {
                // Ticks are anchor + k·every, so every host computes the same instants.
                let step = chrono::Duration::from_std(*every).ok()?;
                if after < anchor {
                    return Some(anchor);
                }
                let elapsed = (after - anchor).num_milliseconds();
                let k = elapsed / step.num_milliseconds() + 1;
                Some(anchor + step * k as i32)
            }
            Timing::At(at) => (*at > after).then_some(*at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn cron(expr: &str, zone: &str) -> Timing {
        ScheduleSpec {
            cron: Some(expr.into()),
            timezone: Some(zone.into()),
            ..blank()
        }
        .check("schedule")
        .unwrap()
    }

    fn blank() -> ScheduleSpec {
        ScheduleSpec {
            cron: None,
            timezone: None,
            every: None,
            at: None,
            catch_up: CatchUp::default(),
            catch_up_window: None,
            overlap: Overlap::default(),
            input: None,
        }
    }

    fn ticks(timing: &Timing, from: &str, n: usize) -> Vec<String> {
        let mut at: DateTime<Utc> = from.parse().unwrap();
        let mut out = Vec::new();
        for _ in 0..n {
            at = timing.next_after(at, at).unwrap();
            out.push(at.format("%Y-%m-%dT%H:%MZ").to_string());
        }
        out
    }

    #[test]
    fn spring_gap_fires_at_the_end_of_the_gap_once() {
        // Berlin: 2026-03-29 02:00 CET → 03:00 CEST. 02:30 doesn't exist that day.
        let berlin = cron("30 2 * * *", "Europe/Berlin");
        assert_eq!(
            ticks(&berlin, "2026-03-28T12:00:00Z", 3),
            [
                "2026-03-29T01:00Z",
                "2026-03-30T00:30Z",
                "2026-03-31T00:30Z"
            ]
        );
        // New York: 2026-03-08 02:00 EST → 03:00 EDT.
        let new_york = cron("30 2 * * *", "America/New_York");
        assert_eq!(
            ticks(&new_york, "2026-03-07T12:00:00Z", 3),
            [
                "2026-03-08T07:00Z",
                "2026-03-09T06:30Z",
                "2026-03-10T06:30Z"
            ]
        );
        // Hourly skips the hour that doesn't exist (no double run at 03:00).
        let hourly = cron("0 * * * *", "Europe/Berlin");
        assert_eq!(
            ticks(&hourly, "2026-03-28T23:30:00Z", 3),
            [
                "2026-03-29T00:00Z",
                "2026-03-29T01:00Z",
                "2026-03-29T02:00Z"
            ]
        );
    }

    #[test]
    fn autumn_overlap_fires_a_fixed_time_once_and_an_hourly_one_every_hour() {
        // Berlin: 2026-10-25 03:00 CEST → 02:00 CET; 02:30 happens twice.
        let berlin = cron("30 2 * * *", "Europe/Berlin");
        assert_eq!(
            ticks(&berlin, "2026-10-24T12:00:00Z", 2),
            ["2026-10-25T00:30Z", "2026-10-26T01:30Z"]
        );
        // New York: 2026-11-01 02:00 EDT → 01:00 EST; 01:30 happens twice.
        let new_york = cron("30 1 * * *", "America/New_York");
        assert_eq!(
            ticks(&new_york, "2026-10-31T12:00:00Z", 2),
            ["2026-11-01T05:30Z", "2026-11-02T06:30Z"]
        );
        let hourly = cron("0 * * * *", "America/New_York");
        assert_eq!(
            ticks(&hourly, "2026-11-01T04:30:00Z", 3),
            [
                "2026-11-01T05:00Z",
                "2026-11-01T06:00Z",
                "2026-11-01T07:00Z"
            ]
        );
    }

    #[test]
    fn intervals_count_from_their_anchor() {
        let every = ScheduleSpec {
            every: Some("15m".into()),
            ..blank()
        }
        .check("s")
        .unwrap();
        let anchor = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 7).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 1, 1, 1, 0, 0).unwrap();
        assert_eq!(
            every.next_after(after, anchor),
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 1, 0, 7).unwrap())
        );
        assert_eq!(
            every.next_after(anchor, anchor),
            Some(anchor + chrono::Duration::minutes(15))
        );
    }

    #[test]
    fn bad_specs_are_named_by_field() {
        let paths = |spec: ScheduleSpec| -> Vec<String> {
            spec.check("triggers[0]")
                .unwrap_err()
                .into_iter()
                .map(|p| p.path)
                .collect()
        };
        assert_eq!(paths(blank()), ["triggers[0]"]);
        let bad_zone = ScheduleSpec {
            cron: Some("0 8 * * *".into()),
            timezone: Some("Europe/Nowhere".into()),
            ..blank()
        };
        assert_eq!(paths(bad_zone), ["triggers[0].timezone"]);
        for expr in ["61 * * * *", "* * *", "0 8 * * * * *", "hello"] {
            let bad_cron = ScheduleSpec {
                cron: Some(expr.into()),
                ..blank()
            };
            assert_eq!(paths(bad_cron), ["triggers[0].cron"], "{expr}");
        }
        let too_fast = ScheduleSpec {
            every: Some("500ms".into()),
            ..blank()
        };
        assert_eq!(paths(too_fast), ["triggers[0].every"]);
        let zone_on_interval = ScheduleSpec {
            every: Some("1m".into()),
            timezone: Some("UTC".into()),
            ..blank()
        };
        assert_eq!(paths(zone_on_interval), ["triggers[0].timezone"]);
    }
}
