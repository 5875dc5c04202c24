//! Outbound webhooks: a workspace's events POSTed to URLs its admins registered, signed
//! as the Standard Webhooks spec says (docs/automation.md, "Outbound webhooks").
//!
//! Each webhook subscribes to its workspace's event feed with its own cursor
//! (`enqueue`, the shape of `event_triggers`): the events it selects become delivery
//! rows, unique per (webhook, event), in the transaction that moves the cursor. A
//! delivery is sent by whichever host claims it (`deliver`): the claim takes a lease
//! under `FOR UPDATE SKIP LOCKED`, so two hosts never send the same attempt at once;
//! an attempt cut short by a crash is sent again after the lease ends, with the same
//! `webhook-id`, so receivers de-duplicate by it (at least once).
//!
//! Failed attempts are retried on a schedule with jitter (about a day by default),
//! honouring `Retry-After`; a 410 disables the webhook, and so do several deliveries in
//! a row that failed every attempt, with a `webhook.disabled` event.

pub mod deliver;
pub mod enqueue;
pub mod sign;
pub mod store;
pub mod target;

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;

use crate::capabilities::http::Network;
use crate::config::Config;

/// How events and deliveries name the webhook machinery as the actor.
pub const ACTOR: &str = "system:webhooks";

/// What the flags decide about outbound webhooks.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Non-public networks webhooks may reach (`--webhook-allow-private-networks`).
    pub networks: Arc<Vec<Network>>,
    /// The whole request, connect to the last byte of the response excerpt.
    pub timeout: Duration,
    /// The wait before each attempt: the first is the wait after the event.
    pub schedule: Vec<Duration>,
    /// Deliveries in a row that fail every attempt before the webhook is disabled.
    pub disable_after: u32,
    /// Deliveries this host sends at once; 0 sends none (and walks no feed).
    pub workers: usize,
    /// Finished deliveries are deleted after this (the events' retention).
    pub retention: Duration,
}

impl Settings {
    pub fn from_config(config: &Config) -> Settings {
        Settings {
            networks: Arc::new(config.webhook_allow_private_networks.clone()),
            timeout: config.webhook_timeout,
            schedule: if config.webhook_retry_schedule.is_empty() {
                vec![Duration::ZERO]
            } else {
                config.webhook_retry_schedule.clone()
            },
            disable_after: config.webhook_disable_after.max(1),
            workers: config.webhook_workers,
            retention: config.event_retention,
        }
    }

    /// Attempts a delivery gets before its failure is final.
    pub fn max_attempts(&self) -> i32 {
        i32::try_from(self.schedule.len()).unwrap_or(i32::MAX)
    }
}

/// Walk the feeds and send deliveries for the life of the host (nothing when
/// `--webhook-workers 0`).
pub fn spawn(pool: PgPool, settings: Settings) -> Option<tokio::task::JoinHandle<()>> {
    if settings.workers == 0 {
        return None;
    }
    Some(tokio::spawn(deliver::run_forever(pool, Arc::new(settings))))
}
