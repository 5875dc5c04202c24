//! Nodes that make their execution wait. A node plugin asks for it by returning an
//! output whose only key is `$wait` (the contract of `nodes.execute`, docs/workflows.md):
//!
//! - `{"$wait": {"for_ms": 5000, "output": ..}}` or `{"$wait": {"until": "<RFC 3339>",
//!   "output": ..}}`: a durable timer; afterwards the node's output is `output`.
//! - `{"$wait": {"approval": {"message", "role", "approvals", "timeout_ms",
//!   "on_timeout"}}}`: an approval request; afterwards the node fires `approved` or
//!   `rejected`, or fails (`on_timeout: fail`).
//!
//! The wait is stored on the node's run row; nothing of it lives in memory.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::Role;

/// What a waiting run waits for, as stored in `node_runs.wait`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Wait {
    Timer {
        until: DateTime<Utc>,
        #[serde(default)]
        output: Value,
    },
    Approval {
        approval_id: uuid::Uuid,
        on_timeout: OnTimeout,
        /// Set when the approval was decided (or timed out): `approved` / `rejected`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decided: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    Approve,
    Reject,
    Fail,
}

/// An approval a node asked for, before it is stored.
#[derive(Debug, Clone)]
pub struct ApprovalRequest {
    pub message: String,
    pub role: Role,
    pub required: i32,
    pub timeout_ms: Option<u64>,
    pub on_timeout: OnTimeout,
}

/// What a node's output asks for.
#[derive(Debug, Clone)]
pub enum Requested {
    Timer { until: DateTime<Utc>, output: Value },
    Approval(ApprovalRequest),
}

/// The wait a node's output asks for, if it is one; an error when `$wait` is malformed.
pub fn requested(output: &Value, now: DateTime<Utc>) -> Option<Result<Requested, String>> {
    let object = output.as_object()?;
    let wait = object.get("$wait")?;
    if object.len() != 1 {
        return Some(Err("an output with `$wait` may have no other keys".into()));
    }
    Some(parse(wait, now))
}

fn parse(wait: &Value, now: DateTime<Utc>) -> Result<Requested, String> {
    let output = wait.get("output").cloned().unwrap_or(Value::Null);
    if let Some(ms) = wait.get("for_ms") {
        let ms = ms
            .as_u64()
            .ok_or("`$wait.for_ms` must be a whole number of milliseconds")?;
        let ms = i64::try_from(ms).map_err(|_| "`$wait.for_ms` is too large")?;
        let until = now
            .checked_add_signed(chrono::Duration::milliseconds(ms))
            .ok_or("`$wait.for_ms` is too large")?;
        return Ok(Requested::Timer { until, output });
    }
    if let Some(until) = wait.get("until") {
        let until = until
            .as_str()
            .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
            .ok_or("`$wait.until` must be an RFC 3339 time such as 2026-12-24T18:00:00Z")?;
        return Ok(Requested::Timer {
            until: until.with_timezone(&Utc),
            output,
        });
    }
    if let Some(approval) = wait.get("approval") {
        let role = match approval["role"].as_str().unwrap_or("member") {
            "viewer" => Role::Viewer,
            "member" => Role::Member,
            "admin" => Role::Admin,
            "owner" => Role::Owner,
            other => return Err(format!("unknown approval role {other:?}")),
        };
        let required = approval["approvals"].as_i64().unwrap_or(1);
        if !(1..=100).contains(&required) {
            return Err("an approval needs 1 to 100 approvals".into());
        }
        let on_timeout = match approval["on_timeout"].as_str().unwrap_or("reject") {
            "approve" => OnTimeout::Approve,
            "reject" => OnTimeout::Reject,
            "fail" => OnTimeout::Fail,
            other => return Err(format!("unknown on_timeout {other:?}")),
        };
        return Ok(Requested::Approval(ApprovalRequest {
            message: approval["message"].as_str().unwrap_or_default().to_string(),
            role,
            required: required as i32,
            timeout_ms: approval["timeout_ms"].as_u64(),
            on_timeout,
        }));
    }
    Err("`$wait` needs `for_ms`, `until` or `approval`".into())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn outputs_that_ask_to_wait_are_read_and_others_are_not() {
        let now = Utc::now();
        assert!(requested(&json!({"result": 1}), now).is_none());
        assert!(requested(&json!("text"), now).is_none());
        match requested(&json!({"$wait": {"for_ms": 1500, "output": 7}}), now) {
            Some(Ok(Requested::Timer { until, output })) => {
                assert_eq!((until - now).num_milliseconds(), 1500);
                assert_eq!(output, json!(7));
            }
            other => panic!("{other:?}"),
        }
        match requested(
            &json!({"$wait": {"approval": {"role": "admin", "approvals": 2}}}),
            now,
        ) {
            Some(Ok(Requested::Approval(request))) => {
                assert_eq!((request.role, request.required), (Role::Admin, 2));
                assert_eq!(request.on_timeout, OnTimeout::Reject);
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            json!({"$wait": {}}),
            json!({"$wait": {"until": "tomorrow"}}),
            json!({"$wait": {"for_ms": 1}, "x": 1}),
            json!({"$wait": {"approval": {"role": "king"}}}),
        ] {
            assert!(matches!(requested(&bad, now), Some(Err(_))), "{bad}");
        }
    }
}
