//! The wasm runtime against real built components: limits, isolation, wrong worlds.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use agenthost::capabilities::CallGrants;
use agenthost::capabilities::config::ConfigCtx;
use agenthost::runtime::bindings::{CallContext, Error};
use agenthost::runtime::{
    self, EngineConfig, InvokeError, Limits, LoadError, LoadedPlugin, PluginKind, WasmEngine,
};
use agenthost_tests::plugin_wasm;

fn engine() -> &'static WasmEngine {
    static ENGINE: OnceLock<WasmEngine> = OnceLock::new();
    ENGINE.get_or_init(|| WasmEngine::new(&EngineConfig::default()).unwrap())
}

fn context() -> CallContext {
    CallContext {
        workspace_id: "ws-1".into(),
        plugin: "test".into(),
        version: "1.0.0".into(),
        request_id: "req-1".into(),
    }
}

async fn load(name: &str, kind: PluginKind, limits: Limits) -> Result<LoadedPlugin, LoadError> {
    let component = runtime::compile(engine(), &plugin_wasm(name))?;
    LoadedPlugin::load(engine(), &component, name, "1.0.0", kind, limits).await
}

async fn call(
    plugin: &LoadedPlugin,
    tool: &str,
    input: &str,
) -> Result<serde_json::Value, InvokeError> {
    let out = plugin
        .invoke_tool(engine(), context(), CallGrants::default(), tool, input)
        .await?;
    Ok(serde_json::from_str(&out).unwrap())
}

#[tokio::test]
async fn a_sdk_plugin_describes_and_runs_its_tools() {
    let hello = load("hello", PluginKind::Tool, Limits::default())
        .await
        .unwrap();
    assert_eq!(hello.tools.len(), 1);
    assert_eq!(hello.tools[0].name, "greet");
    let schema: serde_json::Value = serde_json::from_str(&hello.tools[0].input_schema).unwrap();
    assert_eq!(schema["required"][0], "name");

    let settings = CallGrants {
        config: ConfigCtx {
            settings: Arc::new([("greeting".to_string(), serde_json::json!("Howdy"))].into()),
            ..ConfigCtx::default()
        },
        ..CallGrants::default()
    };
    let out = hello
        .invoke_tool(engine(), context(), settings, "greet", r#"{"name":"Ada"}"#)
        .await
        .unwrap();
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["greeting"], "Howdy, Ada!");
    assert_eq!(
        out["version"], "1.0.0",
        "the call context reaches the plugin"
    );

    let err = call(&hello, "nope", "{}").await.unwrap_err();
    assert!(
        matches!(err, InvokeError::Plugin(Error::NotFound(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_at_its_deadline() {
    let limits = Limits {
        timeout_ms: 200,
        ..Limits::default()
    };
    let faults = load("faults", PluginKind::Tool, limits).await.unwrap();
    let started = Instant::now();
    let err = call(&faults, "spin", "{}").await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, InvokeError::Timeout(_)), "{err:?}");
    assert!(
        took >= Duration::from_millis(200),
        "stopped early: {took:?}"
    );
    assert!(
        took <= Duration::from_millis(250),
        "deadline + 50 ms exceeded: {took:?}"
    );
    // The plugin still serves the next call.
    assert_eq!(call(&faults, "ok", "{}").await.unwrap()["ok"], true);
}

#[tokio::test]
async fn a_memory_bomb_hits_the_cap() {
    let limits = Limits {
        memory_bytes: 16 << 20,
        ..Limits::default()
    };
    let faults = load("faults", PluginKind::Tool, limits).await.unwrap();
    let err = call(&faults, "allocate", "{}").await.unwrap_err();
    assert!(matches!(err, InvokeError::MemoryCap(_)), "{err:?}");
    assert!(
        err.to_string().contains(&(16u64 << 20).to_string()),
        "{err}"
    );
    assert_eq!(call(&faults, "ok", "{}").await.unwrap()["ok"], true);
}

#[tokio::test]
async fn a_trap_fails_only_its_own_call() {
    let faults = Arc::new(
        load("faults", PluginKind::Tool, Limits::default())
            .await
            .unwrap(),
    );
    let mut calls = Vec::new();
    for i in 0..20 {
        let faults = faults.clone();
        let tool = if i % 2 == 0 { "trap" } else { "ok" };
        calls.push(tokio::spawn(async move {
            (tool, call(&faults, tool, "{}").await)
        }));
    }
    for handle in calls {
        match handle.await.unwrap() {
            ("trap", result) => assert!(matches!(result, Err(InvokeError::Trap(_))), "{result:?}"),
            (_, result) => assert_eq!(result.unwrap()["ok"], true),
        }
    }
}

#[tokio::test]
async fn plugins_see_no_environment_files_or_ungranted_secrets() {
    let faults = load("faults", PluginKind::Tool, Limits::default())
        .await
        .unwrap();
    let seen = call(&faults, "snoop", "{}").await.unwrap();
    assert_eq!(
        seen["env"],
        serde_json::json!([]),
        "no host environment variables"
    );
    assert_eq!(
        seen["files"],
        serde_json::json!([]),
        "no host files or directories"
    );

    let config = CallGrants {
        config: ConfigCtx {
            granted_secrets: Arc::new(["mine".to_string()].into()),
            secret_values: Arc::new([("mine".to_string(), "v1".to_string())].into()),
            ..ConfigCtx::default()
        },
        ..CallGrants::default()
    };
    let out = faults
        .invoke_tool(
            engine(),
            context(),
            config.clone(),
            "secret",
            r#"{"name":"mine"}"#,
        )
        .await
        .unwrap();
    assert!(out.contains("v1"));
    let err = faults
        .invoke_tool(
            engine(),
            context(),
            config,
            "secret",
            r#"{"name":"theirs"}"#,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, InvokeError::Plugin(Error::Denied(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn malformed_and_wrong_world_components_are_refused_with_reasons() {
    let err = runtime::compile(engine(), b"definitely not wasm").unwrap_err();
    assert!(
        matches!(err, LoadError::Malformed(_)) && err.to_string().contains("magic"),
        "{err}"
    );

    let mut truncated = plugin_wasm("hello");
    truncated.truncate(truncated.len() / 2);
    let err = runtime::compile(engine(), &truncated).unwrap_err();
    assert!(matches!(err, LoadError::Malformed(_)), "{err}");

    // A core module, not a component.
    let core_module = b"\0asm\x01\0\0\0";
    let err = runtime::compile(engine(), core_module).unwrap_err();
    assert!(matches!(err, LoadError::Malformed(_)), "{err}");

    // A valid component of another world: the missing export is named.
    let err = load("command", PluginKind::Tool, Limits::default())
        .await
        .unwrap_err();
    assert!(matches!(err, LoadError::WrongWorld { .. }), "{err}");
    assert!(
        err.to_string().contains("agenthost:plugin/tools@0.1.0"),
        "{err}"
    );
    let err = load("command", PluginKind::Node, Limits::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("agenthost:plugin/nodes@0.1.0"),
        "{err}"
    );
}

#[tokio::test]
async fn a_node_plugin_executes_and_picks_branches() {
    let node = load("threshold", PluginKind::Node, Limits::default())
        .await
        .unwrap();
    assert_eq!(node.nodes.len(), 1);
    assert_eq!(node.nodes[0].branches, ["high", "low"]);
    assert!(node.tools.is_empty());
    let out = node
        .execute_node(
            engine(),
            context(),
            CallGrants::default(),
            "threshold",
            r#"{"limit":10}"#,
            r#"{"value":12}"#,
        )
        .await
        .unwrap();
    assert_eq!(out.branches, ["high"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out.output).unwrap()["value"],
        12
    );
    let err = node
        .execute_node(
            engine(),
            context(),
            CallGrants::default(),
            "threshold",
            r#"{}"#,
            r#"{"value":1}"#,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, InvokeError::Plugin(Error::Invalid(_))),
        "{err:?}"
    );
    // A node plugin has no tools to invoke.
    let err = call(&node, "threshold", "{}").await.unwrap_err();
    assert!(
        matches!(err, InvokeError::Plugin(Error::NotFound(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_fuel_budget_stops_a_busy_plugin() {
    let fuel_engine = WasmEngine::new(&EngineConfig {
        max_concurrent_instances: 4,
        fuel: true,
        ..EngineConfig::default()
    })
    .unwrap();
    let component = runtime::compile(&fuel_engine, &plugin_wasm("faults")).unwrap();
    let limits = Limits {
        fuel: Some(5_000_000),
        timeout_ms: 30_000,
        ..Limits::default()
    };
    let faults = LoadedPlugin::load(
        &fuel_engine,
        &component,
        "faults",
        "1.0.0",
        PluginKind::Tool,
        limits,
    )
    .await
    .unwrap();
    let err = faults
        .invoke_tool(&fuel_engine, context(), CallGrants::default(), "spin", "{}")
        .await
        .unwrap_err();
    assert!(matches!(err, InvokeError::FuelExhausted), "{err:?}");
    let ok = faults
        .invoke_tool(&fuel_engine, context(), CallGrants::default(), "ok", "{}")
        .await
        .unwrap();
    assert!(ok.contains("true"));
}

#[tokio::test]
async fn a_wrong_kind_is_refused_naming_the_kind_the_component_describes() {
    let err = load("threshold", PluginKind::Tool, Limits::default())
        .await
        .unwrap_err();
    assert!(matches!(err, LoadError::WrongKind(_)), "{err:?}");
    assert!(err.to_string().contains("node types (threshold)"), "{err}");
    let err = load("hello", PluginKind::Node, Limits::default())
        .await
        .unwrap_err();
    assert!(matches!(err, LoadError::WrongKind(_)), "{err:?}");
    assert!(err.to_string().contains("tools (greet)"), "{err}");
}

#[tokio::test]
async fn stderr_is_captured_per_call_within_a_bound() {
    use agenthost::runtime::stderr::{HEAD_BYTES, TAIL_BYTES};
    let faults = load("faults", PluginKind::Tool, Limits::default())
        .await
        .unwrap();
    let outcome = faults
        .call_tool(
            engine(),
            context(),
            CallGrants::default(),
            "flood",
            r#"{"mb":16}"#,
        )
        .await;
    let err = outcome.result.unwrap_err();
    assert!(matches!(err, InvokeError::Trap(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("flooded stderr with 16 MiB, then gave up on purpose"),
        "{err}"
    );
    let stderr = outcome.stderr.unwrap();
    assert!(stderr.total_bytes >= 16 << 20, "{}", stderr.total_bytes);
    assert!(
        stderr.text.len() <= HEAD_BYTES + TAIL_BYTES + 64,
        "kept {} bytes",
        stderr.text.len()
    );
    assert!(stderr.text.contains("bytes not kept"));
    // A call that writes nothing captures nothing: captures are per call.
    let outcome = faults
        .call_tool(engine(), context(), CallGrants::default(), "ok", "{}")
        .await;
    assert!(outcome.result.is_ok());
    assert_eq!(outcome.stderr, None);
}
