//! Every shape the 1.5B model writes a call in (docs/local-model.md), and the ways a
//! call can be wrong.

use super::*;

fn tools() -> Vec<Value> {
    let period = json!({ "type": "object", "required": ["period"], "additionalProperties": false,
        "properties": { "period": { "type": "string" },
                        "granularity": { "type": "string", "enum": ["month", "quarter", "year"] } } });
    vec![
        json!({ "type": "function", "function": { "name": "revenue_analysis",
            "description": "Revenue", "parameters": period } }),
        json!({ "type": "function", "function": { "name": "profit_and_loss",
            "description": "P&L", "parameters": { "type": "object" } } }),
    ]
}

fn revenue(period: &str) -> Call {
    Call {
        name: "revenue_analysis".into(),
        arguments: json!({ "period": period }),
    }
}

fn calls(output: &str) -> (String, Vec<Call>) {
    match parse(output, &tools()) {
        Parsed::Calls { text, calls } => (text, calls),
        other => panic!("{output:?} gave {other:?}"),
    }
}

fn invalid(output: &str) -> String {
    match parse(output, &tools()) {
        Parsed::Invalid(error) => error,
        other => panic!("{output:?} gave {other:?}"),
    }
}

#[test]
fn a_bare_object_is_a_call() {
    let (text, found) =
        calls(r#"{"name": "revenue_analysis", "arguments": {"period": "2025-Q4"}}"#);
    assert_eq!(found, vec![revenue("2025-Q4")]);
    assert_eq!(text, "");
}

#[test]
fn a_json_fence_is_a_call_and_the_prose_around_it_is_kept() {
    let output = "Let me look that up.\n```json\n{\"name\": \"revenue_analysis\", \
                  \"arguments\": {\"period\": \"2025\"}}\n```\n";
    let (text, found) = calls(output);
    assert_eq!(found, vec![revenue("2025")]);
    assert_eq!(text, "Let me look that up.");
}

#[test]
fn a_fence_without_a_language_is_a_call() {
    let (_, found) = calls(
        "```\n{\"name\": \"revenue_analysis\", \"arguments\": {\"period\": \"2025-11\"}}\n```",
    );
    assert_eq!(found, vec![revenue("2025-11")]);
}

#[test]
fn tool_call_tags_are_calls_even_unclosed() {
    let (_, found) = calls(
        "<tool_call>\n{\"name\": \"revenue_analysis\", \"arguments\": {\"period\": \"2025-Q1\"}}\n</tool_call>\n\
         <tool_call>\n{\"name\": \"profit_and_loss\", \"arguments\": {}}",
    );
    assert_eq!(
        found,
        vec![
            revenue("2025-Q1"),
            Call {
                name: "profit_and_loss".into(),
                arguments: json!({})
            }
        ]
    );
}

#[test]
fn a_fence_inside_tags_is_read_through() {
    let (_, found) = calls(
        "<tool_call>\n```json\n{\"name\": \"revenue_analysis\", \"arguments\": {\"period\": \"2024\"}}\n```\n</tool_call>",
    );
    assert_eq!(found, vec![revenue("2024")]);
}

#[test]
fn several_bare_objects_and_lists_are_several_calls() {
    let (_, found) = calls(
        "{\"name\": \"revenue_analysis\", \"arguments\": {\"period\": \"2024\"}}\n\
         {\"name\": \"revenue_analysis\", \"arguments\": {\"period\": \"2025\"}}",
    );
    assert_eq!(found, vec![revenue("2024"), revenue("2025")]);
    let (_, found) = calls(
        "[{\"name\": \"revenue_analysis\", \"arguments\": {\"period\": \"2024\"}}, \
         {\"name\": \"revenue_analysis\", \"parameters\": {\"period\": \"2025\"}}]",
    );
    assert_eq!(found, vec![revenue("2024"), revenue("2025")]);
}

#[test]
fn openai_shapes_and_string_arguments_are_read() {
    let (_, found) = calls(
        r#"{"type": "function", "function": {"name": "revenue_analysis", "arguments": "{\"period\": \"2025\"}"}}"#,
    );
    assert_eq!(found, vec![revenue("2025")]);
    let (_, found) = calls(r#"{"name": "profit_and_loss", "arguments": null}"#);
    assert_eq!(found[0].arguments, json!({}));
}

#[test]
fn a_function_key_naming_the_tool_is_a_call() {
    // Seen from the 1.5B model with Cassie's tools (bench-local-model).
    let (_, found) = calls(
        "```json\n{\n  \"function\": \"revenue_analysis\",\n  \"arguments\": {\"period\": \"2025\"}\n}\n```",
    );
    assert_eq!(found, vec![revenue("2025")]);
    // Without arguments it is data that happens to have a `function` field.
    let data = r#"{"function": "revenue_analysis"}"#;
    assert!(matches!(parse(data, &tools()), Parsed::Text(text) if text == data));
}

#[test]
fn to_openai_gives_the_arguments_as_a_string() {
    let call = revenue("2025").to_openai("call_1");
    assert_eq!(call["id"], "call_1");
    assert_eq!(call["function"]["name"], "revenue_analysis");
    assert_eq!(call["function"]["arguments"], r#"{"period":"2025"}"#);
}

#[test]
fn prose_code_and_data_are_text() {
    for output in [
        "Revenue in Q4 2025 was $1,234,500.",
        "The result was {\"total\": 12} as reported.",
        "```python\nprint({'name': 1})\n```",
        "Here: {\"name\": \"Alice\"}",
        "",
    ] {
        assert_eq!(
            parse(output, &tools()),
            Parsed::Text(output.trim().into()),
            "{output:?}"
        );
    }
}

#[test]
fn an_unknown_tool_is_invalid_and_the_error_names_the_tools() {
    let error = invalid(r#"{"name": "get_revenue", "arguments": {"period": "2025"}}"#);
    assert!(error.contains("\"get_revenue\""), "{error}");
    assert!(
        error.contains("revenue_analysis, profit_and_loss"),
        "{error}"
    );
}

#[test]
fn arguments_the_schema_refuses_are_invalid_and_the_field_is_named() {
    let error = invalid(r#"{"name": "revenue_analysis", "arguments": {"quarter": "Q4"}}"#);
    assert!(error.contains("period"), "{error}");
    let error = invalid(
        r#"{"name": "revenue_analysis", "arguments": {"period": "2025", "granularity": "week"}}"#,
    );
    assert!(error.contains("/granularity"), "{error}");
    let error = invalid(r#"{"name": "revenue_analysis", "arguments": [1]}"#);
    assert!(error.contains("JSON object"), "{error}");
}

#[test]
fn a_broken_tagged_call_is_invalid() {
    let error = invalid(
        "<tool_call>\n{\"name\": \"revenue_analysis\", \"arguments\": {\"period\"\n</tool_call>",
    );
    assert!(error.contains("not valid JSON"), "{error}");
}

#[test]
fn output_is_held_back_where_a_call_may_start() {
    assert_eq!(call_start("Revenue was $10."), None);
    assert_eq!(call_start("Sure.\n```json\n{"), Some(6));
    assert_eq!(call_start("{\"name\""), Some(0));
    assert_eq!(call_start("  {\"name\""), Some(2));
    assert_eq!(call_start("a set {1, 2}"), None);
    assert_eq!(call_start("Checking <tool_"), Some(9));
    assert_eq!(call_start("Checking `"), Some(9));
    assert_eq!(call_start("x <tool_call>"), Some(2));
}
