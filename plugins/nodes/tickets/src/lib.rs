//! The `tickets/create` and `tickets/update` workflow nodes (what automation rules'
//! `create_ticket` and `update_ticket` actions run): support tickets through the
//! database capability, as this plugin's own PostgreSQL role in the calling workspace,
//! so the tickets' triggers apply every rule and write the `ticket.*` events with actor
//! `plugin:tickets`.
//!
//! Once per node run: the run's idempotency key is claimed in the plugin's own table
//! `runs` in the same transaction as the ticket's statements, with the output recorded
//! next to it (as `database/execute` does). A node run that runs again after a success
//! answers with the recorded ticket and changes nothing; a failed call rolls back the
//! claim with everything else.
//!
//! The bundled manifest asks for `tickets` and `ticket_comments` (write) and `people`
//! (read, to resolve an assignee by external id or email), nothing else.

mod ticket;

use agenthost_sdk::database;
use agenthost_sdk::{CallContext, Error, NodeOutput, NodePlugin, NodeSpec, log};
use serde_json::{Value, json};

struct Tickets;

fn ticket_schema() -> Value {
    json!({"type": "object", "properties": {
        "id": {"type": "string"}, "number": {"type": "integer"}, "status": {"type": "string"},
        "priority": {"type": "string"}, "subject": {"type": "string"}
    }, "required": ["id", "number", "status"]})
}

fn spec(node_type: &str, description: &str, config_schema: Value) -> NodeSpec {
    NodeSpec {
        node_type: node_type.into(),
        description: description.into(),
        config_schema,
        input_schema: json!({"type": "object"}),
        output_schema: ticket_schema(),
        branches: Vec::new(),
    }
}

impl NodePlugin for Tickets {
    fn nodes() -> Vec<NodeSpec> {
        let text = json!({"type": ["string", "null"]});
        vec![
            spec(
                "create",
                "Creates a ticket `{subject, description?, requester: {email, name?}, priority?, tags?, channel?}` \
                 once per node run; outputs the ticket `{id, number, status, ...}`.",
                json!({"type": "object", "properties": {
                    "subject": {"type": "string"},
                    "description": text,
                    "requester": {"oneOf": [
                        {"type": "string"},
                        {"type": "object", "properties": {
                            "email": {"type": "string"}, "name": text
                        }, "required": ["email"], "additionalProperties": false}
                    ]},
                    "priority": text, "channel": text,
                    "tags": {"type": ["array", "null"], "items": {"type": "string"}}
                }, "required": ["subject", "requester"], "additionalProperties": false}),
            ),
            spec(
                "update",
                "Changes a ticket (`ticket`: its number or id) once per node run: status, priority, assignee \
                 (external id or email; null unassigns), tags, and/or adds a comment (text: an internal note, \
                 or {body, public}); outputs the ticket.",
                json!({"type": "object", "properties": {
                    "ticket": {"type": ["integer", "string"]},
                    "status": text, "priority": text, "assignee": text,
                    "tags": {"type": ["array", "null"], "items": {"type": "string"}},
                    "comment": {"oneOf": [
                        {"type": ["string", "null"]},
                        {"type": "object", "properties": {
                            "body": {"type": "string"}, "public": {"type": "boolean"}
                        }, "required": ["body"], "additionalProperties": false}
                    ]}
                }, "required": ["ticket"], "additionalProperties": false}),
            ),
        ]
    }

    fn execute(
        ctx: &CallContext,
        node_type: &str,
        config: Value,
        _input: Value,
    ) -> Result<NodeOutput, Error> {
        let run: fn(&Value) -> Result<Value, Error> = match node_type {
            "create" => ticket::create,
            "update" => ticket::update,
            other => return Err(Error::NotFound(format!("tickets has no node type {other}"))),
        };
        let key = ctx.request_id.as_str();
        if let Some(output) = claim(key)? {
            log::info(&format!("{key}: already done, answering from the ledger"));
            return Ok(all(output));
        }
        let output = run(&config)?;
        database::execute(
            "UPDATE runs SET output = $2 WHERE idempotency_key = $1",
            &[key.into(), (&output).into()],
        )?;
        Ok(all(output))
    }
}

fn all(output: Value) -> NodeOutput {
    NodeOutput {
        output,
        branches: Vec::new(),
    }
}

/// Claim `key` in the ledger; the recorded output when an earlier run has it.
fn claim(key: &str) -> Result<Option<Value>, Error> {
    let claimed = database::execute(
        "INSERT INTO runs (idempotency_key) VALUES ($1) ON CONFLICT DO NOTHING",
        &[key.into()],
    )?;
    if claimed > 0 {
        return Ok(None);
    }
    let rows = database::query(
        "SELECT output FROM runs WHERE idempotency_key = $1",
        &[key.into()],
    )?;
    match rows.get(0, "output") {
        Some(output) if !output.is_null() => Ok(Some(output.to_json())),
        _ => Err(Error::Internal(format!(
            "{key} is claimed in the ledger without an output"
        ))),
    }
}

agenthost_sdk::export_node_plugin!(Tickets);

#[cfg(test)]
mod tests;
