//! The `workflow/start` node (what an automation rule's `trigger_workflow` action
//! runs): starts an execution of one of the workspace's workflows through the host's
//! `workflows` interface, recorded as started by `plugin:workflow`. The idempotency key
//! is the node run's own (`<execution>/<node>`), so a node run that runs again (its host
//! died, or a retry after a later failure) returns the execution it started the first
//! time and starts nothing. It does not wait for the execution to finish.
//!
//! The bundled manifest asks for every workflow (`*`); an admin can grant fewer.

use agenthost_sdk::{CallContext, Error, NodeOutput, NodePlugin, NodeSpec, workflows};
use serde_json::{Value, json};

struct Workflow;

impl NodePlugin for Workflow {
    fn nodes() -> Vec<NodeSpec> {
        vec![NodeSpec {
            node_type: "start".into(),
            description: "Starts `config.workflow` (slug or id) with `config.input` (default {}), \
                          once per node run; outputs `{execution_id, status, new}` without waiting \
                          for it to finish."
                .into(),
            config_schema: json!({"type": "object", "properties": {
                "workflow": {"type": "string", "minLength": 1},
                "input": {}
            }, "required": ["workflow"], "additionalProperties": false}),
            input_schema: json!({"type": "object"}),
            output_schema: json!({"type": "object", "properties": {
                "execution_id": {"type": "string"}, "status": {"type": "string"},
                "new": {"type": "boolean"}
            }, "required": ["execution_id", "status"]}),
            branches: Vec::new(),
        }]
    }

    fn execute(
        ctx: &CallContext,
        node_type: &str,
        config: Value,
        _input: Value,
    ) -> Result<NodeOutput, Error> {
        if node_type != "start" {
            return Err(Error::NotFound(format!(
                "workflow has no node type {node_type}"
            )));
        }
        let workflow = config["workflow"]
            .as_str()
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .ok_or_else(|| Error::invalid("config.workflow must be a workflow's slug or id"))?;
        let input = match config.get("input") {
            None | Some(Value::Null) => json!({}),
            Some(input) => input.clone(),
        };
        let started = workflows::start(workflow, &input, Some(&ctx.request_id))?;
        Ok(NodeOutput {
            output: json!({
                "execution_id": started.execution_id,
                "status": started.status,
                "new": started.new,
            }),
            branches: Vec::new(),
        })
    }
}

agenthost_sdk::export_node_plugin!(Workflow);

#[cfg(test)]
mod tests {
    use agenthost_sdk::testing::{self, TestHost};

    use super::*;

    fn ctx() -> CallContext {
        CallContext {
            request_id: "exec-1/kick".into(),
            ..CallContext::for_tests("ws")
        }
    }

    #[test]
    fn a_node_run_starts_its_workflow_once() {
        let _host = TestHost::new().workflows(&["*"]).install();
        let config = json!({"workflow": "invoice-approval", "input": {"invoice": 7}});
        let first = Workflow::execute(&ctx(), "start", config.clone(), json!({})).unwrap();
        assert_eq!(first.output["new"], true);
        assert_eq!(first.output["status"], "running");
        // The same node run again (a re-run): the same execution, nothing started.
        let again = Workflow::execute(&ctx(), "start", config.clone(), json!({})).unwrap();
        assert_eq!(again.output["execution_id"], first.output["execution_id"]);
        assert_eq!(again.output["new"], false);
        let started = testing::started_workflows();
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].input, json!({"invoice": 7}));
        assert_eq!(started[0].idempotency_key.as_deref(), Some("exec-1/kick"));
        // Another node run starts another.
        let other = CallContext {
            request_id: "exec-2/kick".into(),
            ..ctx()
        };
        let second = Workflow::execute(&other, "start", config, json!({})).unwrap();
        assert_ne!(second.output["execution_id"], first.output["execution_id"]);
        // No input is an empty object.
        Workflow::execute(&ctx(), "start", json!({"workflow": "other"}), json!({})).unwrap();
        assert_eq!(testing::started_workflows()[2].input, json!({}));
    }

    #[test]
    fn an_ungranted_workflow_or_a_missing_name_is_refused() {
        let _host = TestHost::new().workflows(&["invoice-approval"]).install();
        let error = Workflow::execute(&ctx(), "start", json!({"workflow": "payroll"}), json!({}))
            .unwrap_err();
        assert!(matches!(error, Error::Denied(_)), "{error:?}");
        let Err(Error::Invalid(message)) =
            Workflow::execute(&ctx(), "start", json!({"workflow": " "}), json!({}))
        else {
            panic!("a blank workflow was accepted");
        };
        assert!(message.contains("config.workflow"), "{message}");
        assert!(testing::started_workflows().is_empty());
    }
}
