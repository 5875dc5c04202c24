//! The `events/emit` workflow node (what an automation rule's `emit_event` action runs):
//! one event of a custom type into the workspace's event feed, through the host's
//! `events` interface, with actor `plugin:events`. Event triggers, rules and outbound
//! webhooks then see it like any other event.
//!
//! The bundled manifest asks for the prefix `custom` only (`custom.escalated`,
//! `custom.billing.overdue`): types of the host's namespaces are refused by the host
//! anyway, and a narrow default keeps workflows from passing for another integration's
//! types (`acme.*`). An admin who wants more uploads a version asking for it.
//!
//! The event's id derives from the node run's idempotency key, so a node run that runs
//! again (its host died) emits nothing new.

use agenthost_sdk::{CallContext, Error, NodeOutput, NodePlugin, NodeSpec, events};
use serde_json::{Value, json};

struct Events;

impl NodePlugin for Events {
    fn nodes() -> Vec<NodeSpec> {
        vec![NodeSpec {
            node_type: "emit".into(),
            description: "Emits an event of `config.type` (a granted custom type such as `custom.escalated`) \
                          with `config.payload` (a JSON object, default {}) about `config.subject`; \
                          outputs `{type, subject}`."
                .into(),
            config_schema: json!({"type": "object", "properties": {
                "type": {"type": "string", "minLength": 3, "maxLength": 200},
                "payload": {"type": "object"},
                "subject": {"type": ["string", "null"], "maxLength": 500}
            }, "required": ["type"], "additionalProperties": false}),
            input_schema: json!({"type": "object"}),
            output_schema: json!({"type": "object", "properties": {
                "type": {"type": "string"}, "subject": {"type": ["string", "null"]}
            }, "required": ["type"]}),
            branches: Vec::new(),
        }]
    }

    fn execute(
        _: &CallContext,
        node_type: &str,
        config: Value,
        _input: Value,
    ) -> Result<NodeOutput, Error> {
        if node_type != "emit" {
            return Err(Error::NotFound(format!(
                "events has no node type {node_type}"
            )));
        }
        let kind = config["type"]
            .as_str()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::invalid("config.type must be an event type such as custom.escalated")
            })?;
        let payload = match config.get("payload") {
            None | Some(Value::Null) => json!({}),
            Some(payload @ Value::Object(_)) => payload.clone(),
            Some(_) => return Err(Error::invalid("config.payload must be a JSON object")),
        };
        let subject = match config.get("subject") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.trim()).filter(|s| !s.is_empty()),
            Some(_) => return Err(Error::invalid("config.subject must be text")),
        };
        events::emit(kind, &payload, subject)?;
        Ok(NodeOutput {
            output: json!({"type": kind, "subject": subject}),
            branches: Vec::new(),
        })
    }
}

agenthost_sdk::export_node_plugin!(Events);

#[cfg(test)]
mod tests {
    use agenthost_sdk::testing::{self, TestHost};

    use super::*;

    fn emit(config: Value) -> Result<NodeOutput, Error> {
        Events::execute(&CallContext::for_tests("ws"), "emit", config, json!({}))
    }

    #[test]
    fn the_event_is_emitted_with_its_payload_and_subject() {
        let _host = TestHost::new().events(&["custom"]).install();
        let out =
            emit(json!({"type": "custom.escalated", "payload": {"ticket": 42}, "subject": " 42 "}))
                .unwrap();
        assert_eq!(
            out.output,
            json!({"type": "custom.escalated", "subject": "42"})
        );
        let emitted = testing::emitted_events();
        assert_eq!(emitted.len(), 1);
        assert_eq!(emitted[0].event_type, "custom.escalated");
        assert_eq!(emitted[0].payload, json!({"ticket": 42}));
        assert_eq!(emitted[0].subject.as_deref(), Some("42"));
        // No payload is an empty object; a blank subject is none.
        emit(json!({"type": "custom.ping", "subject": ""})).unwrap();
        assert_eq!(testing::emitted_events()[1].payload, json!({}));
        assert_eq!(testing::emitted_events()[1].subject, None);
    }

    #[test]
    fn refusals_name_the_field_or_the_grant() {
        let _host = TestHost::new().events(&["custom"]).install();
        for (config, field) in [
            (json!({}), "config.type"),
            (
                json!({"type": "custom.x", "payload": [1]}),
                "config.payload",
            ),
            (json!({"type": "custom.x", "subject": 7}), "config.subject"),
        ] {
            let Err(Error::Invalid(message)) = emit(config.clone()) else {
                panic!("{config} was accepted");
            };
            assert!(message.contains(field), "{message}");
        }
        // The host's own types and types outside the grant are denied.
        for kind in ["ticket.created", "acme.invoice.paid"] {
            let error = emit(json!({"type": kind})).unwrap_err();
            assert!(matches!(error, Error::Denied(_)), "{kind}: {error:?}");
        }
        assert!(testing::emitted_events().is_empty());
    }

    #[test]
    fn without_a_grant_the_node_fails_with_the_hosts_refusal() {
        let _host = TestHost::new().install();
        let error = emit(json!({"type": "custom.x"})).unwrap_err();
        assert!(matches!(error, Error::Denied(_)), "{error:?}");
    }
}
