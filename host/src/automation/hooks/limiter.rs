//! Per-hook rate limits: a token bucket per workflow holding a minute's allowance,
//! refilled evenly, so a sender may burst up to the limit and then keeps to the rate.
//! Per host process, as the API's per-key limit is: with N replicas behind a balancer a
//! hook takes up to N times its limit (docs/automation.md).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

#[derive(Debug, Default)]
pub struct HookLimiter {
    buckets: Mutex<HashMap<Uuid, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Buckets kept before full ones (hooks idle for a minute) are dropped.
const PRUNE_AT: usize = 10_000;

impl HookLimiter {
    /// Take one request for `hook` at `per_minute`, or say how long until one is allowed.
    pub fn check(&self, hook: Uuid, per_minute: u32) -> Result<(), Duration> {
        self.check_at(hook, per_minute, Instant::now())
    }

    fn check_at(&self, hook: Uuid, per_minute: u32, now: Instant) -> Result<(), Duration> {
        let capacity = f64::from(per_minute.max(1));
        let per_second = capacity / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= PRUNE_AT {
            buckets
                .retain(|_, b| now.saturating_duration_since(b.updated) < Duration::from_secs(60));
        }
        let bucket = buckets.entry(hook).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        // A new version may have lowered the limit: never more than it allows.
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_to_the_limit_then_keeps_the_rate_per_hook() {
        let limiter = HookLimiter::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at(a, 3, t0).is_ok());
        }
        let wait = limiter
            .check_at(a, 3, t0)
            .expect_err("the fourth is limited");
        assert!((wait.as_secs_f64() - 20.0).abs() < 0.01, "{wait:?}");
        assert!(limiter.check_at(b, 3, t0).is_ok(), "other hooks unaffected");
        assert!(limiter.check_at(a, 3, t0 + Duration::from_secs(20)).is_ok());
        // Lowered to 1 a minute: the bucket holds at most one.
        let c = Uuid::new_v4();
        for _ in 0..5 {
            let _ = limiter.check_at(c, 60, t0);
        }
        assert!(
            limiter
                .check_at(c, 1, t0 + Duration::from_secs(3600))
                .is_ok()
        );
        assert!(
            limiter
                .check_at(c, 1, t0 + Duration::from_secs(3600))
                .is_err()
        );
    }
}
