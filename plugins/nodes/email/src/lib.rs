//! The `email/send` workflow node: one message through the host's email capability, as
//! a sender granted to this plugin version. The host has rendered the config's
//! templates already.
//!
//! Config: `{from, to, cc?, bcc?, reply_to?, subject, text? , html?}` (`to`, `cc`,
//! `bcc`: an address or a list). Output: `{message_id, from, recipients, subject}`.
//!
//! Sent once per node run: the plugin keeps a ledger in its own schema (table `sent`,
//! keyed by workspace and the run's idempotency key). The key is claimed before the
//! message goes out, in the call's transaction, and the message id recorded after; the
//! transaction commits when the call returns. So a node re-run after it succeeded (a
//! host that died before recording the result) answers from the ledger without
//! sending again, and a concurrent duplicate waits on the claim. What stays
//! at-least-once: the SMTP server took the message but the call did not return (a
//! trap, the plugin's deadline): its transaction rolls back and a retry sends again.
//! The email capability chooses the Message-ID itself, so it can't be derived from the
//! key. Without a database grant the ledger is skipped (with a warning).

use agenthost_sdk::database;
use agenthost_sdk::email::{self, Message};
use agenthost_sdk::{CallContext, Error, NodeOutput, NodePlugin, NodeSpec, log};
use serde_json::{Value, json};

struct Email;

fn addresses_schema() -> Value {
    json!({"type": ["string", "array"], "items": {"type": "string"}})
}

impl NodePlugin for Email {
    fn nodes() -> Vec<NodeSpec> {
        vec![NodeSpec {
            node_type: "send".into(),
            description: "Sends one email as a granted sender; outputs {message_id, from, recipients, subject}. \
                          Sent once per node run (a ledger keyed by the run's idempotency key)."
                .into(),
            config_schema: json!({
                "type": "object",
                "properties": {
                    "from": {"type": "string"},
                    "to": addresses_schema(),
                    "cc": addresses_schema(),
                    "bcc": addresses_schema(),
                    "reply_to": {"type": ["string", "null"]},
                    "subject": {"type": "string"},
                    "text": {"type": ["string", "null"]},
                    "html": {"type": ["string", "null"]}
                },
                "required": ["from", "subject"],
                "additionalProperties": false
            }),
            input_schema: json!({"type": "object"}),
            output_schema: json!({
                "type": "object",
                "properties": {
                    "message_id": {"type": "string"},
                    "from": {"type": "string"},
                    "recipients": {"type": "array", "items": {"type": "string"}},
                    "subject": {"type": "string"}
                }
            }),
            branches: Vec::new(),
        }]
    }

    fn execute(
        ctx: &CallContext,
        node_type: &str,
        config: Value,
        _input: Value,
    ) -> Result<NodeOutput, Error> {
        if node_type != "send" {
            return Err(Error::NotFound(format!(
                "email has no node type {node_type}"
            )));
        }
        let message = message(&config)?;
        let key = ctx.request_id.as_str();
        let ledger = match claim(key)? {
            Claim::Sent(output) => {
                log::info(&format!("{key}: already sent, answering from the ledger"));
                return Ok(all(output));
            }
            Claim::Claimed => true,
            Claim::NoLedger => false,
        };
        let message_id = email::send(&message)?;
        let recipients: Vec<&String> = message
            .to
            .iter()
            .chain(&message.cc)
            .chain(&message.bcc)
            .collect();
        let output = json!({
            "message_id": message_id,
            "from": message.from,
            "recipients": recipients,
            "subject": message.subject,
        });
        if ledger
            && let Err(error) = database::execute(
                "UPDATE sent SET output = $2, sent_at = now() WHERE idempotency_key = $1",
                &[key.into(), (&output).into()],
            )
        {
            // The message is out: failing now would send it again on a retry.
            log::warn(&format!("{key}: sent, but recording it failed: {error}"));
        }
        Ok(all(output))
    }
}

fn all(output: Value) -> NodeOutput {
    NodeOutput {
        output,
        branches: Vec::new(),
    }
}

enum Claim {
    /// This run sends; the claim commits with the call.
    Claimed,
    /// An earlier attempt sent it; its output.
    Sent(Value),
    /// No database grant: send without the ledger.
    NoLedger,
}

fn claim(key: &str) -> Result<Claim, Error> {
    let claimed = database::execute(
        "INSERT INTO sent (idempotency_key) VALUES ($1) ON CONFLICT DO NOTHING",
        &[key.into()],
    );
    match claimed {
        Ok(0) => {}
        Ok(_) => return Ok(Claim::Claimed),
        Err(Error::Denied(why)) => {
            log::warn(&format!(
                "no database grant, sending without the once-per-run ledger: {why}"
            ));
            return Ok(Claim::NoLedger);
        }
        Err(error) => return Err(error),
    }
    let rows = database::query(
        "SELECT output FROM sent WHERE idempotency_key = $1",
        &[key.into()],
    )?;
    match rows.get(0, "output") {
        Some(output) if !output.is_null() => Ok(Claim::Sent(output.to_json())),
        // Claimed by a run that committed without recording (it could not write
        // after sending): the message most likely went out.
        _ => Err(Error::Internal(format!(
            "{key} was claimed by an earlier attempt that recorded no message id; \
             not sending again (delete its row from plugin_email.sent to resend)"
        ))),
    }
}

fn addresses(config: &Value, field: &str) -> Result<Vec<String>, Error> {
    let bad = || {
        Error::invalid(format!(
            "config.{field} must be an address or a list of addresses"
        ))
    };
    match config.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(address)) if address.trim().is_empty() => Ok(Vec::new()),
        Some(Value::String(address)) => Ok(vec![address.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_string).ok_or_else(bad))
            .collect(),
        Some(_) => Err(bad()),
    }
}

fn text(config: &Value, field: &str) -> Result<Option<String>, Error> {
    match config.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        // A template that rendered to a number or an object: send its JSON text.
        Some(other) if field != "from" && field != "reply_to" => Ok(Some(other.to_string())),
        Some(_) => Err(Error::invalid(format!("config.{field} must be a string"))),
    }
}

fn message(config: &Value) -> Result<Message, Error> {
    let from = text(config, "from")?
        .filter(|from| !from.is_empty())
        .ok_or_else(|| Error::invalid("config.from must be a sender address"))?;
    let message = Message {
        from,
        to: addresses(config, "to")?,
        cc: addresses(config, "cc")?,
        bcc: addresses(config, "bcc")?,
        reply_to: text(config, "reply_to")?,
        subject: text(config, "subject")?.unwrap_or_default(),
        text: text(config, "text")?,
        html: text(config, "html")?,
    };
    if message.to.is_empty() && message.cc.is_empty() && message.bcc.is_empty() {
        return Err(Error::invalid(
            "the message has no recipients (to, cc or bcc)",
        ));
    }
    if message.text.is_none() && message.html.is_none() {
        return Err(Error::invalid(
            "the message needs config.text or config.html",
        ));
    }
    Ok(message)
}

agenthost_sdk::export_node_plugin!(Email);

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::rc::Rc;

    use agenthost_sdk::database::{Rows, Value as Sql};
    use agenthost_sdk::testing::{self, TestHost};

    use super::*;

    fn ctx() -> CallContext {
        CallContext {
            request_id: "exec-1/mail".into(),
            ..CallContext::for_tests("ws")
        }
    }

    fn config() -> Value {
        json!({"from": "bot@acme.test", "to": "ada@example.test", "cc": ["bob@example.test"],
               "subject": "Report", "text": "All good."})
    }

    /// A TestHost whose database plays the `sent` ledger.
    fn ledger_host() -> TestHost {
        let ledger: Rc<RefCell<HashMap<String, Option<String>>>> = Rc::default();
        TestHost::new().database(move |sql, params| {
            let key = params[0].as_str().unwrap().to_string();
            let mut ledger = ledger.borrow_mut();
            if sql.starts_with("INSERT") {
                let fresh = !ledger.contains_key(&key);
                if fresh {
                    ledger.insert(key, None);
                }
                let rows = Rows::new(&["n"]);
                return Ok(if fresh {
                    rows.row(vec![Sql::Int(1)])
                } else {
                    rows
                });
            }
            if sql.starts_with("UPDATE") {
                ledger.insert(key, params[1].as_str().map(str::to_string));
                return Ok(Rows::new(&["n"]).row(vec![Sql::Int(1)]));
            }
            let output = ledger.get(&key).cloned().flatten();
            Ok(Rows::new(&["output"]).row(vec![output.map_or(Sql::Null, Sql::Json)]))
        })
    }

    #[test]
    fn sends_once_per_run_and_replays_the_output() {
        let _host = ledger_host().install();
        let first = Email::execute(&ctx(), "send", config(), json!({})).unwrap();
        assert_eq!(
            first.output["recipients"],
            json!(["ada@example.test", "bob@example.test"])
        );
        assert!(
            first.output["message_id"]
                .as_str()
                .unwrap()
                .starts_with('<')
        );
        // The same run again (a retry after success): no second message.
        let again = Email::execute(&ctx(), "send", config(), json!({})).unwrap();
        assert_eq!(again.output, first.output);
        assert_eq!(testing::sent_emails().len(), 1);
        // Another node run sends its own.
        let other = CallContext {
            request_id: "exec-1/other".into(),
            ..ctx()
        };
        Email::execute(&other, "send", config(), json!({})).unwrap();
        let sent = testing::sent_emails();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].to, ["ada@example.test"]);
        assert_eq!(sent[0].cc, ["bob@example.test"]);
        assert_eq!(sent[0].text.as_deref(), Some("All good."));
    }

    #[test]
    fn without_a_database_grant_it_still_sends() {
        let _host = TestHost::new().install();
        Email::execute(&ctx(), "send", config(), json!({})).unwrap();
        Email::execute(&ctx(), "send", config(), json!({})).unwrap();
        assert_eq!(testing::sent_emails().len(), 2);
        assert!(
            testing::logs()
                .iter()
                .any(|(_, line)| line.contains("without the once-per-run ledger"))
        );
    }

    #[test]
    fn incomplete_messages_are_invalid() {
        let _host = ledger_host().install();
        for (patch, needle) in [
            (json!({"to": null, "cc": null}), "no recipients"),
            (json!({"text": null}), "config.text or config.html"),
            (json!({"from": ""}), "config.from"),
            (json!({"to": [1]}), "config.to"),
        ] {
            let mut config = config();
            for (key, value) in patch.as_object().unwrap() {
                config[key] = value.clone();
            }
            let Err(Error::Invalid(message)) = Email::execute(&ctx(), "send", config, json!({}))
            else {
                panic!("{patch} was accepted");
            };
            assert!(message.contains(needle), "{patch}: {message}");
        }
        assert!(testing::sent_emails().is_empty());
    }
}
