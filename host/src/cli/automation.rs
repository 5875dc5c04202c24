//! What the automation commands (`schedule`, `webhook`, `rule`, `events`) share: a
//! request body from a file or standard input, query strings, and compact cells for
//! the text tables.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use serde_json::Value;

/// A JSON body from `--file PATH`, or from standard input with `--file -` (so a
/// generated definition can be piped in: `jq ... | agenthost rule create --file -`).
pub fn read_json(file: &Path) -> anyhow::Result<Value> {
    let (text, from) = if file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading standard input")?;
        (text, "standard input".to_string())
    } else {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        (text, file.display().to_string())
    };
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("{from} is not JSON"))?;
    anyhow::ensure!(value.is_object(), "{from} must hold a JSON object");
    Ok(value)
}

/// `path?key=value&...` for the pairs that have a value.
pub fn with_query(path: &str, pairs: &[(&str, Option<String>)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (key, value) in pairs {
        if let Some(value) = value {
            query.append_pair(key, value);
            any = true;
        }
    }
    if any {
        format!("{path}?{}", query.finish())
    } else {
        path.to_string()
    }
}

/// A string field, or `-` when absent.
pub fn cell(value: &Value) -> &str {
    value.as_str().unwrap_or("-")
}

/// The array at `key` of a list answer (`{"schedules": [...]}`).
pub fn items<'a>(answer: &'a Value, key: &str) -> &'a [Value] {
    answer[key]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_keeps_only_given_pairs_and_encodes_them() {
        assert_eq!(with_query("/api/x", &[("a", None)]), "/api/x");
        assert_eq!(
            with_query(
                "/api/x",
                &[
                    ("type", Some("workflow.*".into())),
                    ("n", None),
                    ("s", Some("a b&c".into()))
                ]
            ),
            "/api/x?type=workflow.*&s=a+b%26c"
        );
    }

    #[test]
    fn a_body_must_be_a_json_object() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("body.json");
        std::fs::write(&file, "[1]").unwrap();
        let err = read_json(&file).unwrap_err();
        assert!(
            format!("{err:#}").contains("must hold a JSON object"),
            "{err:#}"
        );
        std::fs::write(&file, "{nope").unwrap();
        assert!(format!("{:#}", read_json(&file).unwrap_err()).contains("is not JSON"));
        std::fs::write(&file, r#"{"name": "x"}"#).unwrap();
        assert_eq!(read_json(&file).unwrap()["name"], "x");
    }
}
