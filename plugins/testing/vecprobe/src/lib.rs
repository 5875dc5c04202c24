//! Passes its input to the vector capability: `upsert` takes `{collection, documents}`,
//! `search` takes `{collection, query}`, `delete` takes `{collection, ids}` and `drop`
//! takes `{collection}`.

use agenthost_sdk::serde_json::{Value, json};
use agenthost_sdk::vector::{self, Document, Query};
use agenthost_sdk::{CallContext, Error, ToolPlugin, ToolSpec, typed};

struct VecProbe;

#[derive(agenthost_sdk::serde::Deserialize)]
#[serde(crate = "agenthost_sdk::serde")]
struct Upsert {
    collection: String,
    documents: Vec<Document>,
}

#[derive(agenthost_sdk::serde::Deserialize)]
#[serde(crate = "agenthost_sdk::serde")]
struct Search {
    collection: String,
    query: Query,
}

#[derive(agenthost_sdk::serde::Deserialize)]
#[serde(crate = "agenthost_sdk::serde")]
struct Delete {
    collection: String,
    #[serde(default)]
    ids: Vec<String>,
}

impl ToolPlugin for VecProbe {
    fn tools() -> Vec<ToolSpec> {
        let any = json!({"type": "object"});
        ["upsert", "search", "delete", "drop"]
            .into_iter()
            .map(|name| ToolSpec::new(name, "Vector capability probe.", any.clone(), any.clone()))
            .collect()
    }

    fn invoke(_: &CallContext, tool: &str, input: Value) -> Result<Value, Error> {
        match tool {
            "upsert" => typed(input, |u: Upsert| {
                Ok(json!({ "stored": vector::upsert(&u.collection, &u.documents)? }))
            }),
            "search" => typed(input, |s: Search| {
                Ok(json!({ "matches": vector::search(&s.collection, &s.query)? }))
            }),
            "delete" => typed(input, |d: Delete| {
                let ids: Vec<&str> = d.ids.iter().map(String::as_str).collect();
                Ok(json!({ "deleted": vector::delete(&d.collection, &ids)? }))
            }),
            "drop" => typed(input, |d: Delete| {
                Ok(json!({ "dropped": vector::drop_collection(&d.collection)? }))
            }),
            other => Err(Error::NotFound(format!("no tool named {other}"))),
        }
    }
}

agenthost_sdk::export_tool_plugin!(VecProbe);
