//! `{{ ... }}` in node configs, rendered with minijinja over `input`, `nodes.<id>.output`
//! and `execution`. A string that is exactly one `{{ expression }}` becomes the
//! expression's value with its JSON type (`"{{ input.count }}"` gives a number, a list
//! stays a list); any other string with templates renders to a string. minijinja is a
//! sandbox: templates can read the context and call its filters, nothing else, and a
//! fuel budget stops one that loops for long.

use std::sync::LazyLock;

use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

/// Instructions one render may run (loops over big lists stop here).
const FUEL: u64 = 100_000;

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // A typo (`nodes.fetch.outptu`) is an error, not an empty string.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env
});

pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// The expression inside a string that is exactly `{{ expression }}`.
fn sole_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then_some(inner.trim())
}

/// Whether a template parses; the error says where it doesn't.
pub fn check(text: &str) -> Result<(), String> {
    if !is_template(text) {
        return Ok(());
    }
    let result = match sole_expression(text) {
        Some(expression) => ENV.compile_expression(expression).map(drop),
        None => ENV.template_from_str(text).map(drop),
    };
    result.map_err(|error| format!("the template {text:?} does not parse: {error}"))
}

/// Whether any string in `value` holds a template.
pub fn any(value: &Value) -> bool {
    match value {
        Value::String(text) => is_template(text),
        Value::Array(items) => items.iter().any(any),
        Value::Object(map) => map.values().any(any),
        _ => false,
    }
}

/// Every string in `value` that holds a template, with its path (`prefix.a[0].b`).
pub fn strings<'a>(value: &'a Value, prefix: &str) -> Vec<(String, &'a str)> {
    let mut found = Vec::new();
    collect(value, prefix.to_string(), &mut found);
    found
}

fn collect<'a>(value: &'a Value, path: String, found: &mut Vec<(String, &'a str)>) {
    match value {
        Value::String(text) if is_template(text) => found.push((path, text)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect(item, format!("{path}[{i}]"), found);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                collect(item, format!("{path}.{key}"), found);
            }
        }
        _ => {}
    }
}

/// `value` with every template rendered against `context`.
pub fn render(value: &Value, context: &Value) -> Result<Value, String> {
    Ok(match value {
        Value::String(text) if is_template(text) => render_string(text, context)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| render(item, context))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| Ok((key.clone(), render(item, context)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

fn render_string(text: &str, context: &Value) -> Result<Value, String> {
    let ctx = minijinja::Value::from(Serde(context));
    let failed = |error: minijinja::Error| format!("the template {text:?} failed: {error}");
    match sole_expression(text) {
        Some(expression) => {
            let value = ENV
                .compile_expression(expression)
                .and_then(|compiled| compiled.eval(ctx))
                .map_err(failed)?;
            if value.is_undefined() {
                return Err(format!(
                    "the template {text:?} failed: {expression} is undefined"
                ));
            }
            serde_json::to_value(&value).map_err(|e| format!("the template {text:?} failed: {e}"))
        }
        None => ENV.render_str(text, ctx).map(Value::String).map_err(failed),
    }
}

/// A condition: an expression (with or without `{{ }}`) whose truth decides.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty() && s != "false",
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_sole_expression_keeps_its_type_and_text_renders_to_a_string() {
        let context = json!({"input": {"n": 3, "tags": ["a", "b"]}, "nodes": {"f": {"output": {"ok": true}}}});
        let config = json!({
            "count": "{{ input.n + 1 }}",
            "tags": "{{ input.tags }}",
            "ok": "{{ nodes.f.output.ok }}",
            "text": "n is {{ input.n }} and {{ input.tags | join(',') }}",
            "plain": 7,
        });
        let rendered = render(&config, &context).unwrap();
        assert_eq!(
            rendered,
            json!({"count": 4, "tags": ["a", "b"], "ok": true, "text": "n is 3 and a,b", "plain": 7})
        );
    }

    #[test]
    fn typos_and_bad_syntax_are_errors() {
        let context = json!({"input": {}});
        assert!(render(&json!("{{ input.missing.deeper }}"), &context).is_err());
        assert!(render(&json!("{{ input.missing }}"), &context).is_err());
        assert!(check("{{ input.x ").is_err());
        assert!(check("{% for %}").is_err());
        assert!(check("{{ input.x | upper }}").is_ok());
    }

    #[test]
    fn a_runaway_template_runs_out_of_fuel() {
        let context = json!({"input": {}});
        let error = render(
            &json!("{% for a in range(1000) %}{% for b in range(1000) %}x{% endfor %}{% endfor %}"),
            &context,
        )
        .unwrap_err();
        assert!(error.contains("fuel"), "{error}");
    }
}
