//! `agenthost:plugin/events`: events of a plugin's own types into the calling
//! workspace's feed, so event triggers, automation rules and outbound webhooks react to
//! them like to the host's. Deny by default: the grant names types or prefixes, and the
//! host's own namespaces (those of `events::types::CATALOGUE`, plus [`RESERVED`]) are
//! refused whatever the grant says, so no plugin can pass for the host.

use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;
use wasmtime::component::{HasSelf, Linker};

use crate::events::{self, NewEvent};
use crate::registry::manifest::EventsCapability;
use crate::runtime::bindings::Error;
use crate::runtime::bindings::agenthost::plugin::events as wit;

/// Largest payload, as JSON text: an event is a notification, not a document (the
/// Standard Webhooks advice is under 20 kB; this leaves room for a rich one).
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// Longest subject (an id or a name, never a document).
pub const MAX_SUBJECT_CHARS: usize = 500;
/// Events one call may emit: a plugin in a loop can't flood the workspace's feed.
pub const MAX_EMITS_PER_CALL: u32 = 100;

/// First segments kept for the host beyond those its catalogue uses today: areas the
/// host emits in or is about to (plugins, schedules, rules, webhooks, budgets), and
/// names that would read as the host's own.
pub const RESERVED: &[&str] = &[
    "agenthost",
    "automation",
    "event",
    "events",
    "host",
    "llm",
    "plugin",
    "rule",
    "schedule",
    "system",
    "webhook",
];

#[derive(Debug, Clone, Default)]
pub struct EventsCtx {
    pub plugin: String,
    pub workspace: Option<Uuid>,
    pub grant: Option<EventsCapability>,
    pub pool: Option<PgPool>,
    /// Whether the plugin is a node plugin (its calls are node runs).
    pub node: bool,
    /// For a workflow node's call: the node run's idempotency key. Event ids derive
    /// from it, so a node run that runs again writes the same ids, which the outbox
    /// keeps once.
    pub node_run: Option<String>,
    /// Events emitted (or attempted past the checks) in this call so far.
    pub emitted: u32,
}

pub trait EventsView {
    fn events(&mut self) -> &mut EventsCtx;
}

pub fn add_to_linker<T: EventsView + Send + 'static>(linker: &mut Linker<T>) -> anyhow::Result<()> {
    wit::add_to_linker::<T, HasSelf<EventsCtx>>(linker, |state| state.events())?;
    Ok(())
}

/// The host namespace `kind` is in (its first segment), if any.
pub fn host_namespace(kind: &str) -> Option<&str> {
    let root = kind.split('.').next().unwrap_or(kind);
    let catalogue = events::types::CATALOGUE
        .iter()
        .any(|t| t.name.split('.').next() == Some(root));
    (catalogue || RESERVED.contains(&root)).then_some(root)
}

/// Whether `text` is a whole event type a plugin may write: a type the feed accepts
/// (`events::types::is_type_or_prefix`) without `.*`, with at least two segments (the
/// table's rule).
pub fn is_event_type(text: &str) -> bool {
    !text.ends_with(".*") && text.contains('.') && events::types::is_type_or_prefix(text)
}

/// Whether a grant or request entry is well formed: `*`, a type, or a prefix.
pub fn is_type_pattern(text: &str) -> bool {
    text == "*" || events::types::is_type_or_prefix(text)
}

impl EventsCapability {
    /// Whether this grant lets the plugin emit `kind` (host namespaces aside).
    pub fn allows(&self, kind: &str) -> bool {
        self.types
            .iter()
            .any(|t| t == "*" || events::types::selects(t, kind))
    }

    /// Whether `pattern` (a type, prefix or `*`) asks for nothing beyond this grant.
    pub fn covers(&self, pattern: &str) -> bool {
        let bare = pattern.strip_suffix(".*").unwrap_or(pattern);
        self.types.iter().any(|t| t == "*") || (pattern != "*" && self.allows(bare))
    }
}

/// The payload as a JSON object, or why not.
pub fn parse_payload(payload: &str) -> Result<serde_json::Value, Error> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(Error::Invalid(format!(
            "the payload is {} bytes of JSON, more than the {MAX_PAYLOAD_BYTES} an event may carry",
            payload.len()
        )));
    }
    match serde_json::from_str(payload) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value),
        Ok(_) => Err(Error::Invalid("the payload must be a JSON object".into())),
        Err(e) => Err(Error::Invalid(format!("the payload is not JSON: {e}"))),
    }
}

fn check_subject(subject: Option<&str>) -> Result<(), Error> {
    match subject {
        Some(s) if s.chars().count() > MAX_SUBJECT_CHARS => Err(Error::Invalid(format!(
            "the subject is longer than {MAX_SUBJECT_CHARS} characters"
        ))),
        Some(s) if s.contains('\0') => Err(Error::Invalid(
            "the subject holds a NUL character (\\u0000), which the database can't store".into(),
        )),
        _ => Ok(()),
    }
}

/// The id of the `n`th event of a node run: the same on every run of that node run.
fn event_id(workspace: Uuid, plugin: &str, node_run: &str, n: u32) -> Uuid {
    let digest = Sha256::new()
        .chain_update(b"agenthost.plugin-event\n")
        .chain_update(workspace.as_bytes())
        .chain_update(plugin.as_bytes())
        .chain_update(b"\n")
        .chain_update(node_run.as_bytes())
        .chain_update(b"\n")
        .chain_update(n.to_be_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

impl EventsCtx {
    /// Everything but the write: the grant, the type, the payload and the subject.
    fn check(
        &self,
        kind: &str,
        payload: &str,
        subject: Option<&str>,
    ) -> Result<serde_json::Value, Error> {
        let grant = self.grant.as_ref().ok_or_else(|| {
            Error::Denied("the events capability is not granted to this plugin version".into())
        })?;
        if !is_event_type(kind) {
            return Err(Error::Invalid(format!(
                "event type {kind:?} must be at least two dot-separated segments of lower-case \
                 letters, digits and '_', each starting with a letter (such as \"acme.invoice.paid\"), \
                 at most 200 characters"
            )));
        }
        if let Some(root) = host_namespace(kind) {
            return Err(Error::Denied(format!(
                "event type {kind:?} is in the host's own namespace {root:?}; plugins emit types \
                 of their own (such as \"custom.{}\")",
                kind.split_once('.').map_or(kind, |(_, rest)| rest)
            )));
        }
        if !grant.allows(kind) {
            return Err(Error::Denied(format!(
                "event type {kind:?} is not granted to this plugin version (granted: {})",
                grant.types.join(", ")
            )));
        }
        let payload = parse_payload(payload)?;
        check_subject(subject)?;
        if self.emitted >= MAX_EMITS_PER_CALL {
            return Err(Error::Invalid(format!(
                "a call may emit at most {MAX_EMITS_PER_CALL} events"
            )));
        }
        Ok(payload)
    }
}

impl wit::Host for EventsCtx {
    async fn emit(
        &mut self,
        event_type: String,
        payload: String,
        subject: Option<String>,
    ) -> Result<(), Error> {
        let payload = self.check(&event_type, &payload, subject.as_deref())?;
        let workspace = self
            .workspace
            .ok_or_else(|| Error::Invalid("this call has no workspace to emit events in".into()))?;
        let pool = self
            .pool
            .clone()
            .ok_or_else(|| Error::Unavailable("events are not available on this host".into()))?;
        let id = self
            .node_run
            .as_deref()
            .map(|key| event_id(workspace, &self.plugin, key, self.emitted));
        self.emitted += 1;
        // A node run's key is `<execution>/<node>`: the event's cause, so the triggers
        // and rules that run this execution are not set off by it.
        let execution = self
            .node_run
            .as_deref()
            .and_then(|key| key.split_once('/'))
            .and_then(|(execution, _)| Uuid::parse_str(execution).ok());
        let actor = format!("plugin:{}", self.plugin);
        let event = NewEvent {
            workspace,
            kind: &event_type,
            subject,
            payload,
            actor: &actor,
        };
        let written = async {
            let mut tx = pool.begin().await?;
            let new = events::emit_plugin_event(&mut tx, id, execution, event).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(new)
        }
        .await;
        match written {
            Ok(new) => {
                if !new {
                    tracing::debug!(plugin = %self.plugin, event_type, "event already written by an earlier run of this node run");
                }
                Ok(())
            }
            Err(error) => {
                tracing::warn!(plugin = %self.plugin, event_type, %error, "writing a plugin's event failed");
                Err(Error::Unavailable(
                    "the event could not be written; retrying later may succeed".into(),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn granted(types: &[&str]) -> EventsCtx {
        EventsCtx {
            plugin: "acme".into(),
            grant: Some(EventsCapability {
                types: types.iter().map(|t| t.to_string()).collect(),
            }),
            ..EventsCtx::default()
        }
    }

    #[test]
    fn the_grant_names_types_and_prefixes() {
        let ctx = granted(&["acme.invoice", "custom.*"]);
        assert!(ctx.check("acme.invoice", "{}", None).is_ok());
        assert!(ctx.check("acme.invoice.paid", "{}", None).is_ok());
        assert!(ctx.check("custom.anything.at_all", "{}", None).is_ok());
        for refused in ["acme.invoices", "acme.order", "customer.signed_up"] {
            let error = ctx.check(refused, "{}", None).unwrap_err();
            assert!(matches!(error, Error::Denied(_)), "{refused}: {error:?}");
        }
        let error = EventsCtx::default()
            .check("custom.x", "{}", None)
            .unwrap_err();
        assert!(
            matches!(&error, Error::Denied(m) if m.contains("not granted")),
            "{error:?}"
        );
    }

    #[test]
    fn the_hosts_namespaces_are_refused_whatever_the_grant() {
        let ctx = granted(&["*"]);
        assert!(ctx.check("acme.thing", "{}", None).is_ok());
        for kind in [
            "ticket.created",
            "ticket.something_new",
            "workflow.execution.started",
            "deal.won",
            "kb.gap.logged",
            "agent.turn.completed",
            "schedule.run.failed",
            "plugin.version.activated",
            "system.alert",
        ] {
            let error = ctx.check(kind, "{}", None).unwrap_err();
            assert!(
                matches!(&error, Error::Denied(m) if m.contains("host's own namespace")),
                "{kind}: {error:?}"
            );
        }
        // Every catalogue type, today's and tomorrow's.
        for event in events::types::CATALOGUE.iter() {
            assert!(host_namespace(event.name).is_some(), "{}", event.name);
        }
    }

    #[test]
    fn types_payloads_and_subjects_are_checked() {
        let ctx = granted(&["*"]);
        for bad in [
            "acme", "Acme.x", "acme.", "acme..x", "acme.*", "acme.x-y", "1acme.x",
        ] {
            let error = ctx.check(bad, "{}", None).unwrap_err();
            assert!(matches!(error, Error::Invalid(_)), "{bad}: {error:?}");
        }
        let long = format!("acme.{}", "x".repeat(200));
        assert!(matches!(
            ctx.check(&long, "{}", None),
            Err(Error::Invalid(_))
        ));
        for bad in ["[]", "3", "\"x\"", "{", ""] {
            let error = ctx.check("acme.x", bad, None).unwrap_err();
            assert!(matches!(error, Error::Invalid(_)), "{bad}: {error:?}");
        }
        let error = ctx
            .check("acme.x", "{}", Some(&"s".repeat(MAX_SUBJECT_CHARS + 1)))
            .unwrap_err();
        assert!(matches!(error, Error::Invalid(_)));
        assert!(
            ctx.check("acme.x", "{}", Some(&"s".repeat(MAX_SUBJECT_CHARS)))
                .is_ok()
        );
        assert!(ctx.check("acme.x", "{}", Some("a\0b")).is_err());
    }

    #[test]
    fn the_payload_limit_holds_at_the_byte() {
        let pad = |n: usize| format!(r#"{{"p":"{}"}}"#, "x".repeat(n - 8));
        assert_eq!(pad(MAX_PAYLOAD_BYTES).len(), MAX_PAYLOAD_BYTES);
        assert!(parse_payload(&pad(MAX_PAYLOAD_BYTES)).is_ok());
        let error = parse_payload(&pad(MAX_PAYLOAD_BYTES + 1)).unwrap_err();
        assert!(
            matches!(&error, Error::Invalid(m) if m.contains("65536")),
            "{error:?}"
        );
    }

    #[test]
    fn a_call_emits_at_most_the_cap() {
        let mut ctx = granted(&["acme"]);
        ctx.emitted = MAX_EMITS_PER_CALL - 1;
        assert!(ctx.check("acme.x", "{}", None).is_ok());
        ctx.emitted = MAX_EMITS_PER_CALL;
        let error = ctx.check("acme.x", "{}", None).unwrap_err();
        assert!(
            matches!(&error, Error::Invalid(m) if m.contains("at most 100")),
            "{error:?}"
        );
    }

    #[test]
    fn a_node_runs_event_ids_repeat_per_run_and_position() {
        let ws = Uuid::new_v4();
        let a = event_id(ws, "events", "exec/emit", 0);
        assert_eq!(a, event_id(ws, "events", "exec/emit", 0));
        assert_eq!(a.get_version_num(), 8);
        for other in [
            event_id(ws, "events", "exec/emit", 1),
            event_id(ws, "events", "exec/other", 0),
            event_id(ws, "other", "exec/emit", 0),
            event_id(Uuid::new_v4(), "events", "exec/emit", 0),
        ] {
            assert_ne!(a, other);
        }
    }

    #[test]
    fn grants_cover_narrower_patterns() {
        let grant = EventsCapability {
            types: vec!["acme".into(), "custom.billing.*".into()],
        };
        assert!(grant.covers("acme.invoice"));
        assert!(grant.covers("acme.*"));
        assert!(grant.covers("custom.billing.paid"));
        assert!(!grant.covers("custom"));
        assert!(!grant.covers("*"));
        let every = EventsCapability {
            types: vec!["*".into()],
        };
        assert!(every.covers("*") && every.covers("x.y"));
        assert!(is_type_pattern("*") && is_type_pattern("acme") && is_type_pattern("a.b.*"));
        assert!(!is_type_pattern("a*") && !is_type_pattern(""));
    }
}
