//! One call at a time on the local model, with a bounded wait: the model has one KV
//! cache and uses every core it is given, so running two calls at once would only make
//! both slower. Past `limit` waiting calls a call is refused as busy, with a
//! Retry-After from how long calls take.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::llm::LlmError;

#[derive(Debug)]
pub struct Queue {
    running: Semaphore,
    waiting: AtomicUsize,
    limit: usize,
    /// How long the last call held the model.
    last_call_ms: AtomicU64,
}

impl Queue {
    pub fn new(limit: usize) -> Queue {
        Queue {
            running: Semaphore::new(1),
            waiting: AtomicUsize::new(0),
            limit,
            last_call_ms: AtomicU64::new(0),
        }
    }

    /// The model to oneself, after at most `limit` others.
    pub async fn admit(&self) -> Result<SemaphorePermit<'_>, LlmError> {
        if let Ok(permit) = self.running.try_acquire() {
            return Ok(permit);
        }
        let ahead = self.waiting.fetch_add(1, Ordering::SeqCst);
        // Counted out however the wait ends: the caller may be dropped while waiting.
        let _counted = Waiting(&self.waiting);
        if ahead >= self.limit {
            return Err(LlmError::Busy {
                retry_after: self.retry_after(ahead),
            });
        }
        self.running
            .acquire()
            .await
            .map_err(|_| LlmError::Unavailable("the local model has shut down".into()))
    }

    /// Some(Retry-After) when a call now would be refused.
    pub fn is_full(&self) -> Option<Duration> {
        let busy = self.running.available_permits() == 0;
        let waiting = self.waiting.load(Ordering::SeqCst);
        (busy && waiting >= self.limit).then(|| self.retry_after(waiting))
    }

    /// Records how long a call held the model.
    pub fn took(&self, duration: Duration) {
        self.last_call_ms
            .store(duration.as_millis() as u64, Ordering::Relaxed);
    }

    /// The running call and the `waiting` ones at the last call's pace, at least a
    /// second each.
    fn retry_after(&self, waiting: usize) -> Duration {
        let per_call = self.last_call_ms.load(Ordering::Relaxed).max(1000);
        Duration::from_millis(per_call * (waiting as u64 + 1))
    }
}

struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_runs_limit_wait_and_the_next_is_busy_with_a_retry_after() {
        let queue = Queue::new(1);
        queue.took(Duration::from_secs(4));
        let running = queue.admit().await.unwrap();
        assert!(queue.is_full().is_none());
        let second = queue.admit();
        tokio::pin!(second);
        // Polled once: it is waiting now.
        assert!(futures_util::poll!(second.as_mut()).is_pending());
        assert_eq!(queue.is_full(), Some(Duration::from_secs(8)));
        match queue.admit().await {
            Err(LlmError::Busy { retry_after }) => assert_eq!(retry_after, Duration::from_secs(8)),
            other => panic!("{other:?}"),
        }
        drop(running);
        let _second = second.await.unwrap();
        assert!(queue.is_full().is_none(), "the waiter was counted out");
    }

    #[tokio::test]
    async fn with_no_queue_a_call_while_one_runs_is_busy() {
        let queue = Queue::new(0);
        let running = queue.admit().await.unwrap();
        assert_eq!(queue.is_full(), Some(Duration::from_secs(1)));
        assert!(matches!(queue.admit().await, Err(LlmError::Busy { .. })));
        drop(running);
        assert!(queue.admit().await.is_ok());
    }

    #[tokio::test]
    async fn a_waiter_that_leaves_is_counted_out() {
        let queue = Queue::new(1);
        let _running = queue.admit().await.unwrap();
        {
            let waiting = queue.admit();
            tokio::pin!(waiting);
            assert!(futures_util::poll!(waiting.as_mut()).is_pending());
            assert!(queue.is_full().is_some());
        }
        assert!(queue.is_full().is_none());
    }
}
