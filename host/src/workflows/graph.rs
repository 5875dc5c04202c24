//! Which nodes run next, decided from the definition and the state of each node. Pure,
//! so the rules (fan-in waits for every live predecessor, untaken branches are skipped,
//! skips propagate) are tested without a database.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::definition::{Definition, EdgeDef};

/// A node's latest state within an execution, as far as scheduling cares.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeState {
    /// Not yet started, or ready/running.
    Pending,
    /// Finished; `fired` are the branch names it follows (`None` = every edge without
    /// a branch name and every named branch of its type), `output` its output.
    Done {
        fired: Fired,
        output: Value,
    },
    Skipped,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Fired {
    /// The node succeeded and named no branches: every outgoing edge fires.
    All,
    /// Only edges with these branch names fire (an unnamed edge never does).
    Named(BTreeSet<String>),
}

impl Fired {
    fn fires(&self, edge: &EdgeDef) -> bool {
        match (self, &edge.branch) {
            (Fired::All, _) => true,
            (Fired::Named(names), Some(branch)) => names.contains(branch),
            (Fired::Named(_), None) => false,
        }
    }
}

/// What to do with nodes whose predecessors have all settled.
#[derive(Debug, Default, PartialEq)]
pub struct Decisions {
    /// Node id -> the outputs of the predecessors whose edges fired into it.
    pub ready: BTreeMap<String, BTreeMap<String, Value>>,
    pub skipped: BTreeSet<String>,
}

/// Nodes downstream of `changed` that can now be decided. Skips propagate: a skipped
/// node settles, which may decide its own successors.
pub fn decide(
    definition: &Definition,
    states: &BTreeMap<String, NodeState>,
    changed: &[String],
) -> Decisions {
    let mut states = states.clone();
    let mut decisions = Decisions::default();
    let mut work: Vec<String> = changed.to_vec();
    while let Some(id) = work.pop() {
        for edge in definition.outgoing(&id) {
            let target = edge.to.as_str();
            if !matches!(states.get(target), None | Some(NodeState::Pending))
                || decisions.ready.contains_key(target)
            {
                continue;
            }
            let mut inputs = BTreeMap::new();
            let mut settled = true;
            for incoming in definition.incoming(target) {
                match states.get(&incoming.from) {
                    None | Some(NodeState::Pending) => settled = false,
                    Some(NodeState::Skipped) => {}
                    Some(NodeState::Done { fired, output }) => {
                        if fired.fires(incoming) {
                            inputs.insert(incoming.from.clone(), output.clone());
                        }
                    }
                }
            }
            if !settled {
                continue;
            }
            if inputs.is_empty() {
                states.insert(target.to_string(), NodeState::Skipped);
                decisions.skipped.insert(target.to_string());
                work.push(target.to_string());
            } else {
                decisions.ready.insert(target.to_string(), inputs);
            }
        }
    }
    decisions
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn definition(edges: Value) -> Definition {
        let mut ids = BTreeSet::new();
        for edge in edges.as_array().unwrap() {
            ids.insert(edge["from"].as_str().unwrap().to_string());
            ids.insert(edge["to"].as_str().unwrap().to_string());
        }
        let nodes: Vec<Value> = ids
            .iter()
            .map(|id| json!({"id": id, "type": "core/transform"}))
            .collect();
        serde_json::from_value(json!({"nodes": nodes, "edges": edges})).unwrap()
    }

    fn done(output: Value) -> NodeState {
        NodeState::Done {
            fired: Fired::All,
            output,
        }
    }

    #[test]
    fn fan_in_waits_for_every_predecessor() {
        let d = definition(json!([
            {"from": "a", "to": "m"}, {"from": "b", "to": "m"}
        ]));
        let mut states = BTreeMap::from([("a".to_string(), done(json!(1)))]);
        states.insert("b".into(), NodeState::Pending);
        assert_eq!(decide(&d, &states, &["a".into()]), Decisions::default());
        states.insert("b".into(), done(json!(2)));
        let decided = decide(&d, &states, &["b".into()]);
        assert_eq!(
            decided.ready["m"],
            BTreeMap::from([("a".into(), json!(1)), ("b".into(), json!(2))])
        );
    }

    #[test]
    fn untaken_branches_are_skipped_and_skips_propagate_to_a_join() {
        // c -> (true) t -> j ; c -> (false) f -> f2 -> j
        let d = definition(json!([
            {"from": "c", "to": "t", "branch": "true"},
            {"from": "c", "to": "f", "branch": "false"},
            {"from": "f", "to": "f2"},
            {"from": "t", "to": "j"},
            {"from": "f2", "to": "j"},
        ]));
        let states = BTreeMap::from([(
            "c".to_string(),
            NodeState::Done {
                fired: Fired::Named(BTreeSet::from(["true".to_string()])),
                output: json!("yes"),
            },
        )]);
        let decided = decide(&d, &states, &["c".into()]);
        assert_eq!(decided.ready.keys().collect::<Vec<_>>(), ["t"]);
        assert_eq!(
            decided.skipped,
            BTreeSet::from(["f".to_string(), "f2".to_string()])
        );
        // The join runs once t is done, with only t's output.
        let mut states = states;
        states.insert("t".into(), done(json!("from t")));
        states.insert("f".into(), NodeState::Skipped);
        states.insert("f2".into(), NodeState::Skipped);
        let decided = decide(&d, &states, &["t".into()]);
        assert_eq!(
            decided.ready["j"],
            BTreeMap::from([("t".into(), json!("from t"))])
        );
    }
}
