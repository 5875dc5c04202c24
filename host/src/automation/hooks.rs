//! Webhook triggers: `POST /hooks/{workflow}/{token}` starts the workflow's latest
//! version with the request as its input (docs/automation.md, Webhook triggers).
//!
//! What a hook does is declared in the definition (`{"type": "webhook", ...}`, so it is
//! versioned with it); its credentials are not, since definitions are readable by
//! viewers: the URL's token (stored as SHA-256) and the signing secret live in
//! `workflow_hooks`, one row per workflow, made when a version with a webhook trigger
//! is saved and kept across versions, so the URL stays the same while the workflow
//! changes. The URL answers only while the latest version has the trigger and the
//! workflow is enabled.

pub mod input;
pub mod limiter;
pub mod store;
pub mod verify;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::parse_duration;
use crate::workflows::definition::Problem;
use crate::workflows::trigger::TriggerDef;

/// How long an `on_output` hook waits for the execution by default.
pub const DEFAULT_RESPOND_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest `respond_timeout` (the request timeout may cut it shorter).
pub const MAX_RESPOND_TIMEOUT: Duration = Duration::from_secs(300);
/// The body limit of a hook that names none (`--webhook-max-body` may lower it).
pub const DEFAULT_MAX_BODY: u64 = 1 << 20;
/// The largest `max_body` a definition may ask for.
pub const MAX_MAX_BODY: u64 = 64 << 20;
/// Requests per minute a hook takes by default.
pub const DEFAULT_RATE_LIMIT: u32 = 60;
/// The most `rate_limit_per_minute` may be.
pub const MAX_RATE_LIMIT: u32 = 60_000;
/// How far a signed request's timestamp may be from the host's clock by default: the
/// tolerance of the Standard Webhooks libraries and of Stripe.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);
/// The widest `tolerance`.
pub const MAX_TOLERANCE: Duration = Duration::from_secs(3600);

/// A webhook trigger, as a workflow definition declares it. At most one per workflow
/// (the URL is the workflow's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookTrigger {
    #[serde(default)]
    pub respond: Respond,
    /// How long `on_output` waits before answering 202 with the execution's id
    /// (`10s`, `500ms`, `2m`; default `30s`, at most `5m`, and never longer than the
    /// server's request timeout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        max_length = 32,
        pattern = "^([0-9]{1,9}(\\.[0-9]{0,9})?|\\.[0-9]{1,9})(ms|s|m)?$",
        example = "10s"
    )]
    pub respond_timeout: Option<String>,
    /// Require an HMAC-SHA256 signature with a timestamp; absent, the URL's token is
    /// the only credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureSpec>,
    /// The largest body accepted, in bytes (default 1 MiB); larger ones get 413. The
    /// server's `--webhook-max-body` caps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 67108864)]
    pub max_body: Option<u64>,
    /// Requests per minute (a bucket of that size refilled evenly, per host); more get
    /// 429 with `Retry-After`. Default 60.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 60000)]
    pub rate_limit_per_minute: Option<u32>,
}

/// When the caller is answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = WebhookRespond)]
pub enum Respond {
    /// At once: 202 with the execution's id.
    #[default]
    Accepted,
    /// When the execution finishes: 200 with its output (502 if it failed), or 202
    /// with its id when `respond_timeout` passes first. n8n's "when last node
    /// finishes", without the hanging.
    OnOutput,
}

/// How requests are signed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WebhookSignature)]
pub struct SignatureSpec {
    #[serde(default)]
    pub scheme: Scheme,
    /// How far the request's timestamp may be from the host's clock (`5m` by default,
    /// at most `1h`); an older request is refused as a replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        max_length = 32,
        pattern = "^([0-9]{1,9}(\\.[0-9]{0,9})?|\\.[0-9]{1,9})(ms|s|m)?$",
        example = "5m"
    )]
    pub tolerance: Option<String>,
}

/// A signature scheme.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = WebhookSignatureScheme)]
pub enum Scheme {
    /// `X-Webhook-Timestamp: <unix seconds>` and `X-Webhook-Signature: sha256=<hex>`,
    /// the HMAC-SHA256 of `<timestamp>.<body>` keyed with the secret's text (as GitHub
    /// and Stripe sign).
    #[default]
    HmacSha256,
    /// The Standard Webhooks spec: `webhook-id`, `webhook-timestamp` and
    /// `webhook-signature: v1,<base64>` over `<id>.<timestamp>.<body>`, keyed with the
    /// base64 after `whsec_`; what its libraries (and our outbound webhooks) send.
    StandardWebhooks,
}

impl WebhookTrigger {
    /// Problems with its fields, at `{prefix}.field`.
    pub fn check(&self, prefix: &str) -> Vec<Problem> {
        let at = |field: &str| format!("{prefix}.{field}");
        let mut problems = Vec::new();
        if let Some(text) = &self.respond_timeout {
            match parse_duration(text) {
                Ok(timeout) if !timeout.is_zero() && timeout <= MAX_RESPOND_TIMEOUT => {}
                Ok(_) => problems.push(Problem::at(
                    at("respond_timeout"),
                    "must be more than 0 and at most 5m",
                )),
                Err(why) => problems.push(Problem::at(at("respond_timeout"), why)),
            }
            if self.respond != Respond::OnOutput {
                problems.push(Problem::at(
                    at("respond_timeout"),
                    "only `respond: \"on_output\"` waits; `accepted` answers at once",
                ));
            }
        }
        if let Some(max_body) = self.max_body
            && !(1..=MAX_MAX_BODY).contains(&max_body)
        {
            problems.push(Problem::at(
                at("max_body"),
                format!("must be 1 to {MAX_MAX_BODY} bytes (64 MiB)"),
            ));
        }
        if let Some(rate) = self.rate_limit_per_minute
            && !(1..=MAX_RATE_LIMIT).contains(&rate)
        {
            problems.push(Problem::at(
                at("rate_limit_per_minute"),
                format!("must be 1 to {MAX_RATE_LIMIT}"),
            ));
        }
        if let Some(SignatureSpec {
            tolerance: Some(text),
            ..
        }) = &self.signature
        {
            match parse_duration(text) {
                Ok(tolerance)
                    if tolerance >= Duration::from_secs(1) && tolerance <= MAX_TOLERANCE => {}
                Ok(_) => problems.push(Problem::at(at("signature.tolerance"), "must be 1s to 1h")),
                Err(why) => problems.push(Problem::at(at("signature.tolerance"), why)),
            }
        }
        problems
    }

    /// How long `on_output` waits (checked on save; the default for what doesn't parse).
    pub fn respond_timeout(&self) -> Duration {
        self.respond_timeout
            .as_deref()
            .and_then(|text| parse_duration(text).ok())
            .unwrap_or(DEFAULT_RESPOND_TIMEOUT)
    }

    /// The body limit, under the server's cap.
    pub fn max_body(&self, server_cap: usize) -> usize {
        let wanted = self.max_body.unwrap_or(DEFAULT_MAX_BODY);
        usize::try_from(wanted)
            .unwrap_or(usize::MAX)
            .min(server_cap)
    }

    pub fn rate_limit_per_minute(&self) -> u32 {
        self.rate_limit_per_minute.unwrap_or(DEFAULT_RATE_LIMIT)
    }
}

impl SignatureSpec {
    pub fn tolerance(&self) -> Duration {
        self.tolerance
            .as_deref()
            .and_then(|text| parse_duration(text).ok())
            .unwrap_or(DEFAULT_TOLERANCE)
    }
}

/// The webhook trigger of a definition's triggers, if it has one.
pub fn webhook_of(triggers: &[TriggerDef]) -> Option<&WebhookTrigger> {
    triggers.iter().find_map(|trigger| match trigger {
        TriggerDef::Webhook(hook) => Some(hook),
        _ => None,
    })
}

/// A second webhook trigger is a problem: the URL is the workflow's, one per workflow.
pub fn at_most_one(triggers: &[TriggerDef]) -> Vec<Problem> {
    triggers
        .iter()
        .enumerate()
        .filter(|(_, trigger)| matches!(trigger, TriggerDef::Webhook(_)))
        .skip(1)
        .map(|(i, _)| {
            Problem::at(
                format!("triggers[{i}]"),
                "a workflow has at most one webhook trigger (its URL is the workflow's)",
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(value: serde_json::Value) -> Result<Vec<TriggerDef>, serde_json::Error> {
        serde_json::from_value(value)
    }

    #[test]
    fn defaults_and_limits() {
        let triggers = parsed(json!([{"type": "webhook"}])).expect("a bare webhook trigger");
        let hook = webhook_of(&triggers).expect("found");
        assert_eq!(hook.respond, Respond::Accepted);
        assert_eq!(hook.max_body(16 << 20), 1 << 20);
        assert_eq!(hook.max_body(1000), 1000, "the server's cap wins");
        assert_eq!(hook.rate_limit_per_minute(), 60);
        assert!(hook.check("triggers[0]").is_empty());
        let unknown = parsed(json!([{"type": "webhook", "secret": "x"}]));
        assert!(unknown.is_err(), "secrets are not part of a definition");
    }

    #[test]
    fn bad_fields_are_named_and_one_hook_per_workflow() {
        let hook: WebhookTrigger = serde_json::from_value(json!({
            "respond_timeout": "6m", "max_body": 0, "rate_limit_per_minute": 0,
            "signature": {"tolerance": "2h"}
        }))
        .expect("shape");
        let paths: Vec<String> = hook.check("t").into_iter().map(|p| p.path).collect();
        assert_eq!(
            paths,
            [
                "t.respond_timeout",
                "t.respond_timeout",
                "t.max_body",
                "t.rate_limit_per_minute",
                "t.signature.tolerance"
            ]
        );
        let triggers = parsed(json!([{"type": "webhook"}, {"type": "webhook"}])).expect("shape");
        let paths: Vec<String> = at_most_one(&triggers).into_iter().map(|p| p.path).collect();
        assert_eq!(paths, ["triggers[1]"]);
    }
}
