//! Waiting a little for an execution a tool started, so the model can say how it went
//! in the same answer (as `?wait=` does on the REST API).

use std::time::Duration;

use uuid::Uuid;

use crate::capabilities::automation::Caller;
use crate::capabilities::workflows::from_api;
use crate::runtime::bindings::Error;
use crate::workflows::Engine;

/// Kept between the end of a wait and the plugin call's own deadline, for the answer.
const MARGIN: Duration = Duration::from_secs(2);

/// Wait up to `wait_ms` (and never past the plugin call's deadline) for `execution` to
/// leave `running`; a waiting execution (an approval, a delay) is not waited for.
pub async fn until_done(
    engine: &Engine,
    caller: &Caller,
    execution: Uuid,
    wait_ms: u32,
) -> Result<Uuid, Error> {
    let mut deadline = tokio::time::Instant::now() + Duration::from_millis(u64::from(wait_ms));
    if let Some(call_deadline) = caller.deadline {
        let left = call_deadline.saturating_duration_since(std::time::Instant::now());
        deadline = deadline.min(tokio::time::Instant::now() + left.saturating_sub(MARGIN));
    }
    loop {
        let row =
            crate::workflows::store::get_execution(engine.pool(), caller.workspace, execution)
                .await
                .map_err(from_api)?;
        if row.status != "running" || tokio::time::Instant::now() >= deadline {
            return Ok(execution);
        }
        let finished = engine.finished.notified();
        let _ = tokio::time::timeout_at(
            deadline.min(tokio::time::Instant::now() + Duration::from_millis(50)),
            finished,
        )
        .await;
    }
}
