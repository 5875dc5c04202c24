//! Aura's tools as a model sees them: names that say what happens, descriptions written
//! for a new colleague (what it does, when to use it, what comes back), and input
//! schemas that leave little room for a wrong call (required fields, patterns, enums).

use agenthost_sdk::ToolSpec;
use agenthost_sdk::serde_json::{Value, json};

const SLUG: &str = "^[a-z0-9][a-z0-9-]{0,62}$";

fn workflow_field() -> Value {
    json!({"type": "string", "pattern": SLUG,
           "description": "The workflow's slug: lowercase letters, digits and -, e.g. daily-revenue-report"})
}

fn answer() -> Value {
    json!({"type": "object"})
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required,
           "additionalProperties": false})
}

pub fn tools() -> Vec<ToolSpec> {
    vec![
        ToolSpec::new(
            "find_node_types",
            "Find the node types a workflow step can use, by a few words of what the step does \
             (\"send email\", \"ask an agent\", \"http request\", \"wait for approval\"). Returns \
             each type's exact name (use it as the node's `type`), what it does and the JSON \
             Schema of its `config`. Call it before writing a definition; never guess a type.",
            object(
                json!({
                    "query": {"type": "string", "minLength": 1, "maxLength": 200,
                              "description": "Words describing one step"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 20, "default": 5}
                }),
                &["query"],
            ),
            answer(),
        ),
        ToolSpec::new(
            "show_workflow",
            "Show a workflow: its unpublished draft and its live version side by side, with a \
             summary. Without `workflow`, lists every workflow and draft of the workspace.",
            object(json!({"workflow": workflow_field()}), &[]),
            answer(),
        ),
        ToolSpec::new(
            "save_draft",
            "Save a workflow definition as a draft (nothing goes live). The definition is \
             checked first: if it has problems, nothing is saved and the answer has `ok: false` \
             and one problem per line with its path (e.g. `nodes[1].config.subject: is \
             required`); fix each and call again with the whole corrected definition. A \
             definition is {\"nodes\": [{\"id\", \"type\", \"config\"}], \"edges\": [{\"from\", \
             \"to\"}], \"triggers\"?: [{\"type\": \"schedule\", \"cron\", \"timezone\"}]}; configs \
             may use {{ input.x }} and {{ nodes.<id>.output.<field> }}.",
            object(
                json!({
                    "workflow": workflow_field(),
                    "name": {"type": "string", "minLength": 1, "maxLength": 200,
                             "description": "A human name, e.g. Daily revenue report"},
                    "description": {"type": "string", "maxLength": 2000},
                    "definition": {"type": "object", "required": ["nodes"],
                        "properties": {"nodes": {"type": "array", "minItems": 1},
                                       "edges": {"type": "array"}, "triggers": {"type": "array"}}}
                }),
                &["workflow", "name", "definition"],
            ),
            answer(),
        ),
        ToolSpec::new(
            "test_draft",
            "Run the saved draft once with an input, as a test: its steps run for real (an \
             email step sends its email) but its triggers are left out and the live workflow \
             is untouched. Returns the run's status and each step's output or error.",
            object(
                json!({
                    "workflow": workflow_field(),
                    "input": {"type": "object", "description": "The execution input, default {}"}
                }),
                &["workflow"],
            ),
            answer(),
        ),
        ToolSpec::new(
            "publish_workflow",
            "Make the saved draft live as the workflow's next version (its schedule or event \
             triggers start working). The person is asked to approve first; only an admin may \
             publish. Returns the version, when it next runs and a link.",
            object(json!({"workflow": workflow_field()}), &["workflow"]),
            answer(),
        ),
        ToolSpec::new(
            "run_workflow",
            "Run a published workflow now with an input and wait up to 15 s for it. Returns the \
             run's status, each step's result and a link.",
            object(
                json!({
                    "workflow": workflow_field(),
                    "input": {"type": "object", "description": "The execution input, default {}"}
                }),
                &["workflow"],
            ),
            answer(),
        ),
        ToolSpec::new(
            "explain_execution",
            "Explain a run (an execution id from run_workflow, test_draft or a schedule): its \
             status, which step failed and why, and each step's output.",
            object(
                json!({"execution_id": {"type": "string", "format": "uuid"}}),
                &["execution_id"],
            ),
            answer(),
        ),
        ToolSpec::new(
            "schedule_workflow",
            "Run a published workflow on a schedule: `cron` (5 fields, e.g. \"0 8 * * MON-FRI\" \
             for weekdays at 08:00) in `timezone` (IANA, e.g. Europe/Berlin: use the person's), \
             or `every` (\"15m\", \"1h\", \"1d\"). The person is asked to approve first. Returns \
             the next runs in that time zone.",
            object(
                json!({
                    "workflow": workflow_field(),
                    "name": {"type": "string", "minLength": 1, "maxLength": 200},
                    "cron": {"type": "string", "maxLength": 200},
                    "every": {"type": "string", "maxLength": 32},
                    "timezone": {"type": "string", "maxLength": 64},
                    "input": {"type": "object"}
                }),
                &["workflow"],
            ),
            answer(),
        ),
        ToolSpec::new(
            "pause_schedule",
            "Pause a schedule (by id, from list_automations), or resume it with resume: true.",
            object(
                json!({
                    "schedule_id": {"type": "string", "format": "uuid"},
                    "resume": {"type": "boolean", "default": false}
                }),
                &["schedule_id"],
            ),
            answer(),
        ),
        ToolSpec::new(
            "create_rule",
            "When an event happens (\"deal.won\", \"ticket.created\", \
             \"workflow.execution.failed\"), do actions: [{\"type\": \"send_email\" | \
             \"call_webhook\" | \"trigger_workflow\" | \"invoke_agent\" | \"create_ticket\" | \
             ..., with that step's fields}]. `filter` is an expression over `event` (e.g. \
             event.payload.amount > 1000). The person is asked to approve first.",
            object(
                json!({
                    "name": {"type": "string", "minLength": 1, "maxLength": 200},
                    "event": {"type": "string", "minLength": 1, "maxLength": 200},
                    "filter": {"type": "string", "maxLength": 2000},
                    "actions": {"type": "array", "minItems": 1, "maxItems": 20,
                                "items": {"type": "object", "required": ["type"]}},
                    "cooldown": {"type": "string", "maxLength": 32},
                    "max_per_hour": {"type": "integer", "minimum": 1}
                }),
                &["name", "event", "actions"],
            ),
            answer(),
        ),
        ToolSpec::new(
            "list_automations",
            "List what exists: workflows and drafts, schedules with their next run, rules, and \
             approvals waiting for a person.",
            object(json!({}), &[]),
            answer(),
        ),
    ]
}
