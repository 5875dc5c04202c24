//! What a workspace offers over MCP, and by which names: every active plugin tool as
//! `plugin__tool` and every enabled agent as `agent__<slug>`.
//!
//! MCP tool names are one flat namespace, so plugin and tool are joined with `__`. A
//! called name is looked up in the listing, never split at `__`, so a plugin or tool
//! whose own name has `__` in it still resolves. A plugin tool wins over an agent of
//! the same name (a plugin called `agent`): that agent is not listed.

use std::collections::HashSet;
use std::sync::Arc;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};

use crate::agents::Agent;
use crate::registry::ToolInfo;

pub const AGENT_PREFIX: &str = "agent__";

/// One MCP tool and what it runs.
#[derive(Debug, Clone)]
pub enum Entry {
    Plugin(ToolInfo),
    Agent(Agent),
}

impl Entry {
    pub fn name(&self) -> String {
        match self {
            Entry::Plugin(info) => plugin_tool_name(&info.plugin, &info.name),
            Entry::Agent(agent) => format!("{AGENT_PREFIX}{}", agent.slug),
        }
    }

    /// The tool as `tools/list` shows it.
    pub fn to_tool(&self) -> Tool {
        match self {
            Entry::Plugin(info) => {
                let mut tool = Tool::new(
                    self.name(),
                    info.description.clone(),
                    input_schema(&info.input_schema),
                );
                tool.title = Some(format!("{} {} ({})", info.plugin, info.name, info.version));
                tool.output_schema = output_schema(&info.output_schema);
                tool
            }
            Entry::Agent(agent) => {
                let description = if agent.role.is_empty() {
                    format!("Ask the agent {} one question (one chat turn).", agent.name)
                } else {
                    format!(
                        "Ask the agent {} ({}) one question (one chat turn).",
                        agent.name, agent.role
                    )
                };
                let mut tool = Tool::new(self.name(), description, object(agent_input_schema()));
                tool.title = Some(agent.name.clone());
                tool.output_schema = Some(Arc::new(object(agent_output_schema())));
                // A turn calls the agent's own tools, which may change things.
                tool.annotations = Some(ToolAnnotations::new().read_only(false).open_world(true));
                tool
            }
        }
    }
}

pub fn plugin_tool_name(plugin: &str, tool: &str) -> String {
    format!("{plugin}__{tool}")
}

/// The listing: plugin tools (sorted by plugin and tool), then enabled agents by slug.
pub fn entries(tools: Vec<ToolInfo>, agents: Vec<Agent>) -> Vec<Entry> {
    let mut entries: Vec<Entry> = tools.into_iter().map(Entry::Plugin).collect();
    let taken: HashSet<String> = entries.iter().map(Entry::name).collect();
    let mut agents: Vec<Agent> = agents.into_iter().filter(|a| a.enabled).collect();
    agents.sort_by(|a, b| a.slug.cmp(&b.slug));
    entries.extend(
        agents
            .into_iter()
            .map(Entry::Agent)
            .filter(|entry| !taken.contains(&entry.name())),
    );
    entries
}

/// An MCP input schema must be an object schema: a plugin's is passed on as written
/// (2020-12 keywords included) when it is a JSON object, else any object is accepted
/// and the registry's own validation has the last word.
fn input_schema(schema: &Value) -> JsonObject {
    match schema {
        Value::Object(map) if !map.is_empty() => map.clone(),
        _ => object(json!({ "type": "object" })),
    }
}

/// MCP output schemas describe `structuredContent`, which is a JSON object: a plugin
/// schema that does not say `type: object` is not advertised (its output still comes
/// back as text, and as `structuredContent` when it is an object).
fn output_schema(schema: &Value) -> Option<Arc<JsonObject>> {
    match schema {
        Value::Object(map) if map.get("type") == Some(&json!("object")) => {
            Some(Arc::new(map.clone()))
        }
        _ => None,
    }
}

fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

/// What an agent tool takes: the chat API's body.
fn agent_input_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "message": { "type": "string", "minLength": 1,
                         "description": "What to ask or tell the agent." },
            "conversation_id": { "type": "string", "format": "uuid",
                                 "description": "Continue this conversation (from an earlier answer)." }
        },
        "required": ["message"],
        "additionalProperties": false
    })
}

/// What an agent tool returns: the answer and how to continue the conversation.
fn agent_output_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "answer": { "type": "string" },
            "conversation_id": { "type": "string", "format": "uuid" },
            "turn_id": { "type": "string", "format": "uuid" },
            "status": { "type": "string" },
            "steps": { "type": "integer" },
            "tool_calls": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "plugin": { "type": ["string", "null"] },
                        "tool": { "type": "string" },
                        "outcome": { "type": "string" }
                    }
                }
            }
        },
        "required": ["answer", "conversation_id", "turn_id", "status"]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(plugin: &str, name: &str, output: Value) -> ToolInfo {
        ToolInfo {
            plugin: plugin.into(),
            version: "1.0.0".into(),
            name: name.into(),
            description: format!("{name} of {plugin}"),
            input_schema: json!({ "type": "object", "$defs": { "a": {} },
                                  "additionalProperties": false }),
            output_schema: output,
        }
    }

    fn agent(slug: &str, enabled: bool) -> Agent {
        Agent {
            id: uuid::Uuid::new_v4(),
            workspace_id: uuid::Uuid::nil(),
            slug: slug.into(),
            name: slug.to_uppercase(),
            role: String::new(),
            system_prompt: String::new(),
            model: None,
            temperature: None,
            tools: sqlx::types::Json(vec![]),
            max_steps: None,
            enabled,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn plugin_tools_keep_their_schemas_and_agents_follow() {
        let tools = vec![
            info("hello", "greet", json!({ "type": "object" })),
            info("faults", "ok", json!({})),
        ];
        let entries = entries(tools, vec![agent("zed", true), agent("off", false)]);
        let names: Vec<String> = entries.iter().map(Entry::name).collect();
        assert_eq!(names, ["hello__greet", "faults__ok", "agent__zed"]);
        let greet = entries[0].to_tool();
        assert_eq!(greet.input_schema["$defs"], json!({ "a": {} }));
        assert_eq!(greet.input_schema["additionalProperties"], json!(false));
        assert!(greet.output_schema.is_some());
        // `{}` describes no object: no output schema.
        assert!(entries[1].to_tool().output_schema.is_none());
        let zed = entries[2].to_tool();
        assert_eq!(zed.input_schema["required"], json!(["message"]));
    }

    #[test]
    fn a_plugin_tool_hides_an_agent_of_the_same_name() {
        let tools = vec![info("agent", "dexter", json!({}))];
        let entries = entries(tools, vec![agent("dexter", true)]);
        assert_eq!(entries.len(), 1);
        assert!(matches!(entries[0], Entry::Plugin(_)));
    }
}
