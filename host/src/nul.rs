//! PostgreSQL can store U+0000 in neither `text` nor `jsonb`. This is the one place
//! that decides what happens to a NUL, so no statement fails on one by surprise:
//!
//! - **from clients**: refused at extraction with a 422 naming where it is
//!   (`http::extract`, using [`path_of_first`]);
//! - **data a plugin produces for other steps** (a workflow node's output): refused, the
//!   node fails with kind `invalid` naming the path ([`path_of_first`]), so `on_error`
//!   and retries apply and nothing downstream reads silently changed data;
//! - **text read by people and models** (agent messages, tool calls' input and output,
//!   plugin log lines): each NUL becomes U+FFFD ([`replace_in_json`], [`replace`]), since
//!   a lost control character harms nobody while a failed turn or log batch would.
//!
//! docs/decisions.md, "NUL from plugins and models".

use serde_json::Value;

const NUL: char = '\0';

/// What a NUL is replaced with where it is replaced.
const REPLACEMENT: &str = "\u{FFFD}";

/// The path (`items[0].name`, `[2]`, empty for the document itself) of the first string
/// or object key that holds a NUL, and whether it is a key (its NUL shown as `\u0000`).
pub fn path_of_first(value: &Value) -> Option<(String, bool)> {
    first_in(value, String::new())
}

fn first_in(value: &Value, path: String) -> Option<(String, bool)> {
    match value {
        Value::String(s) => s.contains(NUL).then_some((path, false)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| first_in(item, format!("{path}[{i}]"))),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let shown = key.replace(NUL, "\\u0000");
            let path = if path.is_empty() {
                shown
            } else {
                format!("{path}.{shown}")
            };
            if key.contains(NUL) {
                return Some((path, true));
            }
            first_in(item, path)
        }),
        _ => None,
    }
}

/// Text with every NUL replaced by U+FFFD.
pub fn replace(text: &str) -> String {
    if text.contains(NUL) {
        text.replace(NUL, REPLACEMENT)
    } else {
        text.to_string()
    }
}

/// A JSON value with every NUL in its strings and keys replaced by U+FFFD.
pub fn replace_in_json(value: Value) -> Value {
    match value {
        Value::String(s) if s.contains(NUL) => Value::String(s.replace(NUL, REPLACEMENT)),
        Value::Array(items) => Value::Array(items.into_iter().map(replace_in_json).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(key, item)| (replace(&key), replace_in_json(item)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_first_nul_is_found_with_its_path() {
        let value = json!({ "a": [1, "ok", { "b": "x\u{0}y" }], "c": "z\u{0}" });
        assert_eq!(path_of_first(&value), Some(("a[2].b".to_string(), false)));
        assert_eq!(
            path_of_first(&json!({ "k\u{0}": 1 })),
            Some(("k\\u0000".to_string(), true))
        );
        assert_eq!(path_of_first(&json!("\u{0}")), Some((String::new(), false)));
        assert_eq!(path_of_first(&json!({ "a": ["fine"] })), None);
    }

    #[test]
    fn replacing_leaves_no_nul_and_keeps_the_rest() {
        let value = json!({ "k\u{0}": ["a\u{0}b", 2, null], "n": 1.5 });
        let replaced = replace_in_json(value);
        assert_eq!(
            replaced,
            json!({ "k\u{FFFD}": ["a\u{FFFD}b", 2, null], "n": 1.5 })
        );
        assert_eq!(path_of_first(&replaced), None);
    }
}
