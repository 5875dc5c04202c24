//! A workflow version's definition and its validation. Saving validates everything at
//! once and reports every problem with where it is, like the data import does.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::template;
use crate::config::parse_duration;

/// Most nodes one workflow version may have.
pub const MAX_NODES: usize = 200;

/// A workflow version's graph: nodes, and edges from a node (or one of its branches) to
/// the next (docs/workflows.md).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WorkflowDefinition)]
pub struct Definition {
    /// 1 to 200 nodes.
    pub nodes: Vec<NodeDef>,
    #[serde(default)]
    pub edges: Vec<EdgeDef>,
    /// JSON Schema the execution input must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub input_schema: Option<Value>,
    #[serde(default)]
    pub settings: Settings,
    /// What starts it by itself (besides `POST …/executions`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<super::trigger::TriggerDef>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WorkflowSettings)]
pub struct Settings {
    /// The whole execution's time limit (`30s`, `5m`); default `--workflow-execution-timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_timeout: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WorkflowNode)]
pub struct NodeDef {
    pub id: String,
    /// `plugin/node_type`.
    #[serde(rename = "type")]
    pub node_type: String,
    /// Checked against the node type's config schema; `{{ }}` templates may refer to
    /// the input and earlier nodes' outputs.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub config: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// One attempt's time limit (`500ms`, `30s`); default `--workflow-node-timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default)]
    pub on_error: OnError,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WorkflowEdge)]
pub struct EdgeDef {
    pub from: String,
    pub to: String,
    /// A named branch of `from` (`true`/`false` of a condition, a switch case, or
    /// `error` for the error branch); none = the node's single unnamed branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
}

/// What a node's failure (after its retries) does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// The execution fails.
    #[default]
    Fail,
    /// The node counts as done; downstream gets `{"error": ...}` as its output.
    Continue,
    /// Only the node's `error` branch fires, with the error as output.
    ErrorBranch,
}

/// Temporal's field names and defaults (docs/workflows.md).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_initial")]
    pub initial_interval: String,
    #[serde(default = "default_coefficient")]
    pub backoff_coefficient: f64,
    /// Default 100 times the initial interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_interval: Option<String>,
    /// Spread each delay by up to this fraction either way (0 to 1).
    #[serde(default = "default_jitter")]
    pub jitter: f64,
    /// Error kinds that retry (`unavailable`, `timeout`, `fault`, `internal`,
    /// `invalid`, `denied`, `not_found`).
    #[serde(default = "default_retry_on")]
    pub retry_on: Vec<String>,
}

fn default_attempts() -> u32 {
    3
}
fn default_initial() -> String {
    "1s".into()
}
fn default_coefficient() -> f64 {
    2.0
}
fn default_jitter() -> f64 {
    0.2
}
fn default_retry_on() -> Vec<String> {
    ["unavailable", "timeout", "fault", "internal"]
        .map(String::from)
        .to_vec()
}

pub const ERROR_KINDS: &[&str] = &[
    "unavailable",
    "timeout",
    "fault",
    "internal",
    "invalid",
    "denied",
    "not_found",
];

impl RetryPolicy {
    /// The delay before attempt `next` (2 = the first retry), without jitter.
    pub fn base_delay(&self, next: u32) -> Duration {
        let initial = parse_duration(&self.initial_interval).unwrap_or(Duration::from_secs(1));
        let max = self
            .max_interval
            .as_deref()
            .and_then(|text| parse_duration(text).ok())
            .unwrap_or(initial * 100);
        let exponent = i32::try_from(next.saturating_sub(2)).unwrap_or(i32::MAX);
        let delay = initial.as_secs_f64() * self.backoff_coefficient.powi(exponent);
        Duration::from_secs_f64(delay.min(max.as_secs_f64()))
    }

    /// The delay with jitter applied (`unit` in [0, 1) picks where in the spread).
    pub fn delay(&self, next: u32, unit: f64) -> Duration {
        let base = self.base_delay(next).as_secs_f64();
        let spread = base * self.jitter * (2.0 * unit - 1.0);
        Duration::from_secs_f64((base + spread).max(0.0))
    }

    pub fn retries(&self, kind: &str) -> bool {
        self.retry_on.iter().any(|k| k == kind)
    }
}

/// What the validator needs to know about a node type.
#[derive(Debug, Clone)]
pub struct NodeTypeInfo {
    pub config_schema: Value,
    pub branches: Vec<String>,
}

/// One thing wrong with a definition.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = DefinitionProblem)]
pub struct Problem {
    /// Where: `nodes[2].config.url`, `edges[0].to`, `input_schema`...
    pub path: String,
    pub message: String,
}

fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        message: message.into(),
    }
}

impl Problem {
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> Problem {
        problem(path, message)
    }
}

/// Parse and check a definition against the node types that exist now. Every problem
/// is reported, not just the first.
pub fn validate(
    raw: &Value,
    node_types: &dyn Fn(&str) -> Option<NodeTypeInfo>,
) -> Result<Definition, Vec<Problem>> {
    let definition: Definition = match serde_json::from_value(raw.clone()) {
        Ok(definition) => definition,
        Err(error) => return Err(vec![problem("", error.to_string())]),
    };
    let mut problems = Vec::new();
    if definition.nodes.is_empty() {
        problems.push(problem("nodes", "a workflow needs at least one node"));
    }
    if definition.nodes.len() > MAX_NODES {
        problems.push(problem(
            "nodes",
            format!(
                "{} nodes is more than the {MAX_NODES} a workflow may have",
                definition.nodes.len()
            ),
        ));
    }
    let mut types: HashMap<&str, NodeTypeInfo> = HashMap::new();
    let mut seen = HashSet::new();
    for (i, node) in definition.nodes.iter().enumerate() {
        let at = |field: &str| format!("nodes[{i}].{field}");
        if !valid_node_id(&node.id) {
            problems.push(problem(
                at("id"),
                format!(
                    "{:?} is not a node id: use letters, digits and `_` (starting with a letter), at most 64",
                    node.id
                ),
            ));
        } else if !seen.insert(node.id.as_str()) {
            problems.push(problem(
                at("id"),
                format!("node id {:?} is used twice", node.id),
            ));
        }
        match node_types(&node.node_type) {
            None => problems.push(problem(
                at("type"),
                format!(
                    "unknown node type {:?}: it must be `plugin/node_type` of an active node plugin",
                    node.node_type
                ),
            )),
            Some(info) => {
                check_config(&info.config_schema, &node.config, &at("config"), &mut problems);
                types.insert(node.id.as_str(), info);
            }
        }
        for (path, text) in template::strings(&node.config, &at("config")) {
            if let Err(why) = template::check(text) {
                problems.push(problem(path, why));
            }
        }
        if let Some(timeout) = &node.timeout {
            check_duration(timeout, &at("timeout"), &mut problems);
        }
        if let Some(retry) = &node.retry {
            check_retry(retry, &at("retry"), &mut problems);
        }
    }
    if let Some(timeout) = &definition.settings.execution_timeout {
        check_duration(timeout, "settings.execution_timeout", &mut problems);
    }
    if let Some(schema) = &definition.input_schema
        && let Err(error) = jsonschema::validator_for(schema)
    {
        problems.push(problem(
            "input_schema",
            format!("not a valid JSON Schema: {error}"),
        ));
    }
    let ids: HashSet<&str> = definition.nodes.iter().map(|n| n.id.as_str()).collect();
    let mut edge_set = HashSet::new();
    for (i, edge) in definition.edges.iter().enumerate() {
        for (field, id) in [("from", &edge.from), ("to", &edge.to)] {
            if !ids.contains(id.as_str()) {
                problems.push(problem(
                    format!("edges[{i}].{field}"),
                    format!("there is no node {id:?}"),
                ));
            }
        }
        if edge.from == edge.to {
            problems.push(problem(
                format!("edges[{i}]"),
                format!("node {:?} points at itself", edge.from),
            ));
        }
        if !edge_set.insert((&edge.from, &edge.to, &edge.branch)) {
            problems.push(problem(
                format!("edges[{i}]"),
                "the same edge is listed twice",
            ));
        }
        if let (Some(branch), Some(info)) = (&edge.branch, types.get(edge.from.as_str())) {
            let from = definition.nodes.iter().find(|n| n.id == edge.from);
            let on_error = from.map(|n| n.on_error);
            let branches = from.map_or_else(Vec::new, |n| n.branches(info));
            let known = branches.iter().any(|b| b == branch)
                || (branch == "error" && on_error == Some(OnError::ErrorBranch));
            if !known {
                let mut names = branches;
                if on_error == Some(OnError::ErrorBranch) {
                    names.push("error".into());
                }
                let hint = if branch == "error" {
                    " (an `error` branch needs `on_error: \"error_branch\"` on the node)"
                        .to_string()
                } else if names.is_empty() {
                    " (it has one unnamed branch: leave `branch` out)".to_string()
                } else {
                    format!(" (its branches: {})", names.join(", "))
                };
                problems.push(problem(
                    format!("edges[{i}].branch"),
                    format!("node {:?} has no branch {branch:?}{hint}", edge.from),
                ));
            }
        }
    }
    problems.extend(super::trigger::check(&definition.triggers));
    if let Some(cycle) = find_cycle(&definition) {
        problems.push(problem(
            "edges",
            format!("the edges form a cycle: {}", cycle.join(" -> ")),
        ));
    }
    if problems.is_empty() {
        Ok(definition)
    } else {
        Err(problems)
    }
}

fn valid_node_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && id.len() <= 64
}

fn check_duration(text: &str, path: &str, problems: &mut Vec<Problem>) {
    match parse_duration(text) {
        Ok(d) if d.is_zero() => problems.push(problem(path, "must be longer than zero")),
        Ok(_) => {}
        Err(why) => problems.push(problem(path, why)),
    }
}

fn check_retry(retry: &RetryPolicy, path: &str, problems: &mut Vec<Problem>) {
    if !(1..=100).contains(&retry.max_attempts) {
        problems.push(problem(
            format!("{path}.max_attempts"),
            "must be between 1 and 100",
        ));
    }
    check_duration(
        &retry.initial_interval,
        &format!("{path}.initial_interval"),
        problems,
    );
    if let Some(max) = &retry.max_interval {
        check_duration(max, &format!("{path}.max_interval"), problems);
    }
    if !(1.0..=100.0).contains(&retry.backoff_coefficient) {
        problems.push(problem(
            format!("{path}.backoff_coefficient"),
            "must be between 1 and 100",
        ));
    }
    if !(0.0..=1.0).contains(&retry.jitter) {
        problems.push(problem(format!("{path}.jitter"), "must be between 0 and 1"));
    }
    for kind in &retry.retry_on {
        if !ERROR_KINDS.contains(&kind.as_str()) {
            problems.push(problem(
                format!("{path}.retry_on"),
                format!(
                    "unknown error kind {kind:?} (kinds: {})",
                    ERROR_KINDS.join(", ")
                ),
            ));
        }
    }
}

/// Validate a node's config against its schema. A string holding a template stands for
/// a value that only exists at run time, so schema errors at such a string are not
/// errors yet.
fn check_config(schema: &Value, config: &Value, path: &str, problems: &mut Vec<Problem>) {
    let validator = match jsonschema::validator_for(schema) {
        Ok(validator) => validator,
        Err(error) => {
            problems.push(problem(
                path,
                format!("the node type's config schema is broken: {error}"),
            ));
            return;
        }
    };
    for error in validator.iter_errors(config) {
        let pointer = error.instance_path().to_string();
        let value = config.pointer(&pointer);
        if value.is_some_and(|v| v.as_str().is_some_and(template::is_template)) {
            continue;
        }
        let at = if pointer.is_empty() {
            path.to_string()
        } else {
            format!("{path}{}", pointer.replace('/', "."))
        };
        problems.push(problem(at, error.to_string()));
    }
}

/// A cycle through the edges, as node ids, if there is one (Kahn's algorithm; the
/// nodes left over all sit on or behind a cycle, and walking them finds one).
fn find_cycle(definition: &Definition) -> Option<Vec<String>> {
    let mut successors: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut indegree: BTreeMap<&str, usize> = BTreeMap::new();
    for node in &definition.nodes {
        indegree.entry(node.id.as_str()).or_default();
    }
    for edge in &definition.edges {
        if !indegree.contains_key(edge.from.as_str()) || !indegree.contains_key(edge.to.as_str()) {
            continue;
        }
        successors
            .entry(edge.from.as_str())
            .or_default()
            .push(edge.to.as_str());
        *indegree.entry(edge.to.as_str()).or_default() += 1;
    }
    let mut queue: VecDeque<&str> = indegree
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(id, _)| *id)
        .collect();
    while let Some(id) = queue.pop_front() {
        for next in successors.get(id).into_iter().flatten() {
            let degree = indegree.entry(next).or_default();
            *degree -= 1;
            if *degree == 0 {
                queue.push_back(next);
            }
        }
        indegree.remove(id);
    }
    let start = *indegree.keys().next()?;
    // Follow successors that are still in the leftover set until one repeats.
    let mut path = vec![start];
    let mut current = start;
    loop {
        let next = successors
            .get(current)?
            .iter()
            .find(|n| indegree.contains_key(**n))?;
        if let Some(at) = path.iter().position(|n| n == next) {
            let mut cycle: Vec<String> = path[at..].iter().map(|s| s.to_string()).collect();
            cycle.push(next.to_string());
            return Some(cycle);
        }
        path.push(next);
        current = next;
    }
}

impl Definition {
    pub fn node(&self, id: &str) -> Option<&NodeDef> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Edges into `id`.
    pub fn incoming<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a EdgeDef> + 'a {
        self.edges.iter().filter(move |e| e.to == id)
    }

    /// Edges out of `id`.
    pub fn outgoing<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a EdgeDef> + 'a {
        self.edges.iter().filter(move |e| e.from == id)
    }

    /// The nodes whose outputs deciding after `changed` settles may use: the
    /// predecessors of every node downstream of it (skips propagate, so a join far down
    /// can become ready on an output from elsewhere), and the nodes that make up the
    /// execution's output (`core/output` nodes and nodes nothing follows).
    pub fn outputs_needed_after(&self, changed: &str) -> Vec<String> {
        let mut downstream = BTreeSet::new();
        let mut work = vec![changed];
        while let Some(id) = work.pop() {
            for edge in self.outgoing(id) {
                if downstream.insert(edge.to.as_str()) {
                    work.push(edge.to.as_str());
                }
            }
        }
        let mut needed: BTreeSet<&str> = downstream
            .iter()
            .flat_map(|id| self.incoming(id).map(|edge| edge.from.as_str()))
            .collect();
        needed.extend(
            self.nodes
                .iter()
                .filter(|n| n.node_type == "core/output" || self.outgoing(&n.id).next().is_none())
                .map(|n| n.id.as_str()),
        );
        needed.into_iter().map(String::from).collect()
    }

    /// Nodes without incoming edges: where an execution starts.
    pub fn roots(&self) -> Vec<&NodeDef> {
        self.nodes
            .iter()
            .filter(|n| self.incoming(&n.id).next().is_none())
            .collect()
    }

    pub fn execution_timeout(&self) -> Option<Duration> {
        self.settings
            .execution_timeout
            .as_deref()
            .and_then(|t| parse_duration(t).ok())
    }
}

impl NodeDef {
    /// The branch names of this node: its type's, or for a type whose branches are
    /// `*` (a switch), the `cases` of its config plus `default`.
    pub fn branches(&self, info: &NodeTypeInfo) -> Vec<String> {
        if info.branches != ["*"] {
            return info.branches.clone();
        }
        let mut names: Vec<String> = self.config["cases"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|case| case.as_str().map(String::from))
            .collect();
        names.push("default".into());
        names
    }

    pub fn timeout(&self) -> Option<Duration> {
        self.timeout.as_deref().and_then(|t| parse_duration(t).ok())
    }

    /// `(plugin, node_type)`.
    pub fn plugin_and_type(&self) -> (&str, &str) {
        self.node_type
            .split_once('/')
            .unwrap_or((self.node_type.as_str(), ""))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn catalog(name: &str) -> Option<NodeTypeInfo> {
        match name {
            "core/transform" => Some(NodeTypeInfo {
                config_schema: json!({"type": "object", "properties": {"value": {}}, "required": ["value"]}),
                branches: vec![],
            }),
            "core/condition" => Some(NodeTypeInfo {
                config_schema: json!({"type": "object", "properties": {"if": {"type": "boolean"}}}),
                branches: vec!["true".into(), "false".into()],
            }),
            _ => None,
        }
    }

    #[test]
    fn every_problem_is_reported_with_where_it_is() {
        let raw = json!({
            "nodes": [
                {"id": "a", "type": "core/transform", "config": {"value": "{{ input.x }}"}},
                {"id": "b", "type": "nope/missing"},
                {"id": "c", "type": "core/transform", "config": {}},
                {"id": "d", "type": "core/condition", "config": {"if": "{{ broken"}},
                {"id": "a", "type": "core/transform", "config": {"value": 1}},
                {"id": "e", "type": "core/transform", "config": {"value": 1}},
                {"id": "f", "type": "core/transform", "config": {"value": 1}},
            ],
            "edges": [
                {"from": "a", "to": "ghost"},
                {"from": "d", "to": "c", "branch": "maybe"},
                {"from": "e", "to": "f"},
                {"from": "f", "to": "e"},
            ],
            "input_schema": {"type": "bogus"},
        });
        let problems = validate(&raw, &catalog).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        for expected in [
            "nodes[1].type",
            "nodes[2].config",
            "nodes[3].config.if",
            "nodes[4].id",
            "edges[0].to",
            "edges[1].branch",
            "edges",
            "input_schema",
        ] {
            assert!(
                paths.contains(&expected),
                "{expected} missing from {problems:#?}"
            );
        }
        let cycle = problems.iter().find(|p| p.path == "edges").unwrap();
        assert!(cycle.message.contains("e -> f -> e") || cycle.message.contains("f -> e -> f"));
    }

    #[test]
    fn outputs_needed_after_a_node_reach_joins_behind_skips() {
        // a -> j ; c -> x -> j ; j -> out ; a and c are roots.
        let definition: Definition = serde_json::from_value(json!({
            "nodes": [
                {"id": "a", "type": "core/transform"}, {"id": "c", "type": "core/condition"},
                {"id": "x", "type": "core/transform"}, {"id": "j", "type": "core/merge"},
                {"id": "out", "type": "core/output"}
            ],
            "edges": [
                {"from": "a", "to": "j"}, {"from": "c", "to": "x", "branch": "true"},
                {"from": "x", "to": "j"}, {"from": "j", "to": "out"}
            ]
        }))
        .unwrap();
        // When c settles and x is skipped, j may become ready on a's output.
        assert_eq!(
            definition.outputs_needed_after("c"),
            ["a", "c", "j", "out", "x"]
        );
        assert_eq!(definition.outputs_needed_after("j"), ["j", "out"]);
    }

    #[test]
    fn retry_delays_grow_by_the_coefficient_up_to_the_max() {
        let policy: RetryPolicy = serde_json::from_value(json!({
            "initial_interval": "100ms", "max_interval": "350ms", "jitter": 0.0
        }))
        .unwrap();
        let delays: Vec<u128> = (2..=5).map(|n| policy.base_delay(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 350, 350]);
        assert!(policy.retries("unavailable") && !policy.retries("invalid"));
    }
}
