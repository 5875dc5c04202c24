//! The plugin manifest: what an author declares next to the component. The component
//! itself describes its tools (so descriptions can't drift from code); the manifest
//! names the plugin, its version and kind, what it asks to be granted, its settings
//! schema and optional limits. See docs/plugins.md for the format.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::runtime::{Limits, PluginKind};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Lowercase letters, digits, `_` and `-`, starting with a letter; at most 63.
    pub name: String,
    /// Semantic version, unique per plugin.
    pub version: String,
    pub kind: PluginKind,
    #[serde(default)]
    pub description: String,
    /// What the plugin asks to be granted. Nothing is granted until an admin says so.
    #[serde(default)]
    pub capabilities: Capabilities,
    /// JSON Schema of the plugin's settings; `{}` accepts anything.
    #[serde(default = "any_schema")]
    pub config_schema: Value,
    /// Per-call limits; anything left out gets the host's defaults.
    #[serde(default)]
    pub limits: RequestedLimits,
    /// SQL run, in order, in the plugin's own schema when its database capability is
    /// granted. Append-only: a migration that ran may not change (docs/plugins.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub migrations: Vec<String>,
}

/// Requested (in a manifest) or granted (by an admin) capabilities.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Names of instance secrets the plugin may read through `config.secret`.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Sending email through the `email` interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailCapability>,
    /// SQL through the `database` interface: the plugin's own schema, plus the shared
    /// tables named here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseCapability>,
    /// Chat completions and embeddings through the `llm` interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmCapability>,
    /// Semantic search through the `vector` interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<VectorCapability>,
    /// Outbound requests through `wasi:http/outgoing-handler`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCapability>,
    /// Turns of the workspace's agents through the `agents` interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents: Option<AgentsCapability>,
    /// Events of the plugin's own types through the `events` interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<EventsCapability>,
    /// Executions of the workspace's workflows through the `workflows` interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflows: Option<WorkflowsCapability>,
    /// Building, testing, running and scheduling workflows through the `automation`
    /// interface, by scope (`read`, `draft`, `run`, `publish`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automation: Option<AutomationCapability>,
}

/// What a plugin may do with the workspace's automation (wit/automation.wit): `read`,
/// `draft`, `run`, `publish`. Each scope beyond `read` also needs the person behind
/// the call to hold the role the REST API asks for the same change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutomationCapability {
    pub scopes: Vec<String>,
}

/// Event types a plugin may emit: a type (`acme.invoice.paid`), a prefix of whole
/// segments (`acme`, `custom.*`), or `*` for any type. Types in the host's own
/// namespaces (`ticket.*`, `workflow.*`, ...) are refused whatever the grant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsCapability {
    pub types: Vec<String>,
}

/// Workflows a plugin may start, by slug (in the calling workspace); `*` is every
/// workflow of the workspace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowsCapability {
    pub workflows: Vec<String>,
}

/// Agents a plugin may run turns of, by slug (in the calling workspace); `*` is every
/// agent of the workspace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentsCapability {
    pub agents: Vec<String>,
}

/// Vector collections: the plugin's own (always, once granted) plus shared ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VectorCapability {
    /// Collection names shared between every plugin granted them (in the calling
    /// workspace); other names are private to the plugin.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared: Vec<String>,
}

/// Where a plugin may send HTTP requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpCapability {
    /// Origin patterns: `https://api.example.com`, `*.example.com:443`,
    /// `http://10.0.0.5:8080` (docs/plugins.md has the matching rules).
    pub origins: Vec<String>,
    /// Networks (CIDR) that are not public but may be reached anyway, such as
    /// `10.0.0.0/8` or `127.0.0.1/32`. Loopback, private, link-local, CGNAT and
    /// metadata addresses are refused unless listed here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub private_networks: Vec<String>,
}

impl HttpCapability {
    fn validate(&self) -> Result<(), String> {
        for origin in &self.origins {
            crate::capabilities::http::OriginPattern::parse(origin)?;
        }
        for network in &self.private_networks {
            crate::capabilities::http::Network::parse(network)?;
        }
        Ok(())
    }
}

/// Which models a plugin may use, and how many tokens a day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LlmCapability {
    /// Model names, exactly as the provider knows them.
    pub models: Vec<String>,
    /// Prompt + completion tokens per UTC day (all workspaces). Set by the admin when
    /// granting; none means no budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_token_budget: Option<u64>,
}

// The database grant is the sandbox's own type: the layer that enforces it defines it.
pub use crate::db::sandbox::{DatabaseCapability, TableAccess};

/// Who a plugin may send email as, and how much.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailCapability {
    /// Allowed sender addresses: exact (`bot@acme.com`) or a whole domain (`*@acme.com`).
    pub senders: Vec<String>,
    /// Messages per hour (per host). Set by the admin when granting; a manifest may
    /// leave it out. Default when granted without one: 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hourly_limit: Option<u32>,
}

impl Capabilities {
    /// The parts of `self` not covered by `allowed`, for error messages.
    pub fn not_within(&self, allowed: &Capabilities) -> Vec<String> {
        let mut beyond: Vec<String> = self
            .secrets
            .iter()
            .filter(|secret| !allowed.secrets.contains(secret))
            .map(|secret| format!("secret {secret:?}"))
            .collect();
        match (&self.email, &allowed.email) {
            (None, _) => {}
            (Some(_), None) => beyond.push("email".into()),
            (Some(email), Some(allowed)) => beyond.extend(
                email
                    .senders
                    .iter()
                    .filter(|sender| !allowed.senders.contains(sender))
                    .map(|sender| format!("email sender {sender:?}")),
            ),
        }
        match (&self.database, &allowed.database) {
            (None, _) => {}
            (Some(_), None) => beyond.push("database".into()),
            (Some(database), Some(allowed)) => beyond.extend(
                database
                    .tables
                    .iter()
                    .filter(|(table, access)| allowed.tables.get(*table) < Some(access))
                    .map(|(table, access)| format!("{access:?} access to table {table:?}")),
            ),
        }
        match (&self.vector, &allowed.vector) {
            (None, _) => {}
            (Some(_), None) => beyond.push("vector".into()),
            (Some(vector), Some(allowed)) => beyond.extend(
                vector
                    .shared
                    .iter()
                    .filter(|name| !allowed.shared.contains(name))
                    .map(|name| format!("shared vector collection {name:?}")),
            ),
        }
        match (&self.http, &allowed.http) {
            (None, _) => {}
            (Some(_), None) => beyond.push("http".into()),
            (Some(http), Some(allowed)) => {
                beyond.extend(
                    http.origins
                        .iter()
                        .filter(|origin| !allowed.origins.contains(origin))
                        .map(|origin| format!("http origin {origin:?}")),
                );
                beyond.extend(
                    http.private_networks
                        .iter()
                        .filter(|network| !allowed.private_networks.contains(network))
                        .map(|network| format!("http private network {network:?}")),
                );
            }
        }
        match (&self.agents, &allowed.agents) {
            (None, _) => {}
            (Some(_), None) => beyond.push("agents".into()),
            (Some(agents), Some(allowed)) => beyond.extend(
                agents
                    .agents
                    .iter()
                    .filter(|agent| {
                        !allowed.agents.contains(agent) && !allowed.agents.iter().any(|a| a == "*")
                    })
                    .map(|agent| format!("agent {agent:?}")),
            ),
        }
        match (&self.events, &allowed.events) {
            (None, _) => {}
            (Some(_), None) => beyond.push("events".into()),
            (Some(events), Some(allowed)) => beyond.extend(
                events
                    .types
                    .iter()
                    .filter(|kind| !allowed.covers(kind))
                    .map(|kind| format!("event type {kind:?}")),
            ),
        }
        match (&self.workflows, &allowed.workflows) {
            (None, _) => {}
            (Some(_), None) => beyond.push("workflows".into()),
            (Some(workflows), Some(allowed)) => beyond.extend(
                workflows
                    .workflows
                    .iter()
                    .filter(|slug| !allowed.allows(slug))
                    .map(|slug| format!("workflow {slug:?}")),
            ),
        }
        match (&self.automation, &allowed.automation) {
            (None, _) => {}
            (Some(_), None) => beyond.push("automation".into()),
            (Some(automation), Some(allowed)) => beyond.extend(
                automation
                    .scopes
                    .iter()
                    .filter(|scope| !allowed.scopes.contains(scope))
                    .map(|scope| format!("automation scope {scope:?}")),
            ),
        }
        match (&self.llm, &allowed.llm) {
            (None, _) => {}
            (Some(_), None) => beyond.push("llm".into()),
            (Some(llm), Some(allowed)) => beyond.extend(
                llm.models
                    .iter()
                    .filter(|model| !allowed.models.contains(model))
                    .map(|model| format!("llm model {model:?}")),
            ),
        }
        beyond
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestedLimits {
    pub memory_mb: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub fuel: Option<u64>,
}

fn any_schema() -> Value {
    Value::Object(Default::default())
}

impl Manifest {
    /// Check names, version and limits; returns the effective limits.
    pub fn validate(&self, defaults: &Limits, max_memory_bytes: usize) -> Result<Limits, String> {
        let name_ok = (1..=63).contains(&self.name.len())
            && self.name.starts_with(|c: char| c.is_ascii_lowercase())
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !name_ok {
            return Err(format!(
                "name {:?} must be 1-63 lowercase letters, digits, '_' or '-', starting with a letter",
                self.name
            ));
        }
        semver::Version::parse(&self.version)
            .map_err(|e| format!("version {:?} is not semantic versioning: {e}", self.version))?;
        jsonschema::validator_for(&self.config_schema)
            .map_err(|e| format!("config_schema is not a valid JSON Schema: {e}"))?;
        if let Some(vector) = &self.capabilities.vector
            && let Some(bad) = vector
                .shared
                .iter()
                .find(|name| !crate::capabilities::vector::valid_collection_name(name))
        {
            return Err(format!(
                "capabilities.vector.shared: {bad:?} must be 1-63 lowercase letters, digits, '_' or '-'"
            ));
        }
        if let Some(http) = &self.capabilities.http {
            http.validate()
                .map_err(|e| format!("capabilities.http: {e}"))?;
        }
        if let Some(events) = &self.capabilities.events {
            for kind in &events.types {
                if !crate::capabilities::events::is_type_pattern(kind) {
                    return Err(format!(
                        "capabilities.events.types: {kind:?} must be `*`, an event type or a prefix \
                         (lower-case dotted segments, such as \"acme.invoice\" or \"custom.*\")"
                    ));
                }
                if let Some(root) = crate::capabilities::events::host_namespace(kind) {
                    return Err(format!(
                        "capabilities.events.types: {kind:?} is in the host's own namespace {root:?}; \
                         plugins emit types of their own"
                    ));
                }
            }
        }
        if let Some(bad) = self
            .capabilities
            .workflows
            .iter()
            .flat_map(|w| &w.workflows)
            .find(|slug| !crate::capabilities::workflows::is_workflow_pattern(slug))
        {
            return Err(format!(
                "capabilities.workflows.workflows: {bad:?} must be `*` or a workflow slug"
            ));
        }
        if let Some(bad) = self
            .capabilities
            .automation
            .iter()
            .flat_map(|a| &a.scopes)
            .find(|scope| crate::capabilities::automation::Scope::parse(scope).is_none())
        {
            return Err(format!(
                "capabilities.automation.scopes: {bad:?} is not a scope (read, draft, run, publish)"
            ));
        }
        let memory_bytes = match self.limits.memory_mb {
            Some(mb) => usize::try_from(mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
            None => defaults.memory_bytes,
        };
        if memory_bytes > max_memory_bytes || memory_bytes < (1 << 20) {
            return Err(format!(
                "limits.memory_mb must be between 1 and {}",
                max_memory_bytes >> 20
            ));
        }
        let timeout_ms = self.limits.timeout_ms.unwrap_or(defaults.timeout_ms);
        if !(1..=15 * 60 * 1000).contains(&timeout_ms) {
            return Err("limits.timeout_ms must be between 1 and 900000".into());
        }
        Ok(Limits {
            memory_bytes,
            timeout_ms,
            fuel: self.limits.fuel.or(defaults.fuel),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(value: Value) -> Result<Manifest, serde_json::Error> {
        serde_json::from_value(value)
    }

    #[test]
    fn a_minimal_manifest_gets_default_limits() {
        let m = manifest(json!({"name": "hello", "version": "1.0.0", "kind": "tool"})).unwrap();
        let limits = m.validate(&Limits::default(), 512 << 20).unwrap();
        assert_eq!(limits, Limits::default());
    }

    #[test]
    fn bad_names_versions_limits_and_fields_are_refused() {
        let base = json!({"name": "hello", "version": "1.0.0", "kind": "tool"});
        let check = |patch: Value| {
            let mut value = base.clone();
            for (k, v) in patch.as_object().unwrap() {
                value[k] = v.clone();
            }
            manifest(value)
                .map_err(|e| e.to_string())
                .and_then(|m| m.validate(&Limits::default(), 512 << 20).map(|_| ()))
        };
        assert!(
            check(json!({"name": "Hello"}))
                .unwrap_err()
                .contains("lowercase")
        );
        assert!(
            check(json!({"version": "1.0"}))
                .unwrap_err()
                .contains("semantic")
        );
        assert!(check(json!({"kind": "agent"})).is_err());
        assert!(
            check(json!({"limits": {"memory_mb": 4096}}))
                .unwrap_err()
                .contains("memory_mb")
        );
        assert!(
            check(json!({"config_schema": {"type": 5}}))
                .unwrap_err()
                .contains("config_schema")
        );
        assert!(check(json!({"extra": true})).unwrap_err().contains("extra"));
        for timeout in [0, 900_001] {
            let err = check(json!({"limits": {"timeout_ms": timeout}})).unwrap_err();
            assert!(err.contains("timeout_ms"), "{timeout}: {err}");
        }
        assert!(check(json!({"limits": {"timeout_ms": 900_000, "memory_mb": 512}})).is_ok());
    }

    #[test]
    fn grants_must_stay_within_the_request() {
        let email = |senders: &[&str]| {
            Some(EmailCapability {
                senders: senders.iter().map(|s| s.to_string()).collect(),
                hourly_limit: None,
            })
        };
        let database = |tables: &[(&str, TableAccess)]| {
            Some(DatabaseCapability {
                tables: tables.iter().map(|(t, a)| (t.to_string(), *a)).collect(),
            })
        };
        let requested = Capabilities {
            secrets: vec!["a".into()],
            email: email(&["bot@acme.com"]),
            database: database(&[("deals", TableAccess::Read)]),
            llm: None,
            http: None,
            vector: None,
            agents: Some(AgentsCapability {
                agents: vec!["cassie".into()],
            }),
            ..Capabilities::default()
        };
        let granted = Capabilities {
            secrets: vec!["a".into(), "b".into()],
            email: email(&["bot@acme.com", "*@acme.com"]),
            llm: Some(LlmCapability {
                models: vec!["gpt-x".into()],
                daily_token_budget: None,
            }),
            database: database(&[
                ("deals", TableAccess::Write),
                ("customers", TableAccess::Read),
            ]),
            vector: None,
            http: Some(HttpCapability {
                origins: vec!["https://api.example.com".into()],
                private_networks: vec!["10.0.0.0/8".into()],
            }),
            agents: Some(AgentsCapability {
                agents: vec!["cassie".into(), "dexter".into()],
            }),
            ..Capabilities::default()
        };
        assert_eq!(
            granted.not_within(&requested),
            [
                "secret \"b\"",
                "email sender \"*@acme.com\"",
                "Read access to table \"customers\"",
                "Write access to table \"deals\"",
                "http",
                "agent \"dexter\"",
                "llm",
            ]
        );
        assert!(requested.not_within(&requested).is_empty());
        // `*` asks for every agent, so any list of agents is within it.
        let every = Capabilities {
            agents: Some(AgentsCapability {
                agents: vec!["*".into()],
            }),
            ..Capabilities::default()
        };
        let some = Capabilities {
            agents: granted.agents.clone(),
            ..Capabilities::default()
        };
        assert!(some.not_within(&every).is_empty());
        assert_eq!(every.not_within(&some), ["agent \"*\""]);
        let no_email = Capabilities {
            email: None,
            ..requested.clone()
        };
        assert_eq!(requested.not_within(&no_email), ["email"]);
    }

    #[test]
    fn event_and_workflow_grants_stay_within_the_request_and_off_the_hosts_types() {
        let caps = |events: &[&str], workflows: &[&str]| Capabilities {
            events: Some(EventsCapability {
                types: events.iter().map(|t| t.to_string()).collect(),
            }),
            workflows: Some(WorkflowsCapability {
                workflows: workflows.iter().map(|t| t.to_string()).collect(),
            }),
            ..Capabilities::default()
        };
        let requested = caps(&["custom", "acme.invoice.*"], &["billing"]);
        let narrower = caps(
            &["custom.*", "custom.a.b", "acme.invoice.paid"],
            &["billing"],
        );
        assert!(narrower.not_within(&requested).is_empty());
        assert_eq!(
            caps(&["*", "acme"], &["*", "payroll"]).not_within(&requested),
            [
                "event type \"*\"",
                "event type \"acme\"",
                "workflow \"*\"",
                "workflow \"payroll\""
            ]
        );
        assert!(
            caps(&["acme", "x.y"], &["a", "b"])
                .not_within(&caps(&["*"], &["*"]))
                .is_empty()
        );
        assert_eq!(
            caps(&["x"], &["a"]).not_within(&Capabilities::default()),
            ["events", "workflows"]
        );

        let check = |capabilities: Value| {
            manifest(json!({"name": "n", "version": "1.0.0", "kind": "node",
                            "capabilities": capabilities}))
            .unwrap()
            .validate(&Limits::default(), 512 << 20)
            .map(|_| ())
        };
        assert!(check(json!({"events": {"types": ["*", "custom", "acme.invoice.*"]}})).is_ok());
        for (bad, why) in [
            ("ticket", "host's own namespace"),
            ("workflow.execution.*", "host's own namespace"),
            ("Acme", "must be"),
            ("acme.*.x", "must be"),
        ] {
            let error = check(json!({"events": {"types": [bad]}})).unwrap_err();
            assert!(
                error.contains("capabilities.events.types") && error.contains(why),
                "{bad}: {error}"
            );
        }
        assert!(check(json!({"workflows": {"workflows": ["*", "billing-run"]}})).is_ok());
        let error = check(json!({"workflows": {"workflows": ["Billing"]}})).unwrap_err();
        assert!(
            error.contains("capabilities.workflows.workflows"),
            "{error}"
        );
    }
}
