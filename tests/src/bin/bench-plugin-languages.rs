//! What a plugin written in Python costs next to one written in Rust: the example
//! `pyhello` (componentize-py) against `hello` (the Rust SDK), both with a `greet` tool
//! that reads a setting and writes a log line, measured in one run on one engine:
//!
//! - size: the component, and its compiled artifact (what the host caches on disk);
//! - compile: `Component::new`, once per version per host;
//! - activate: load the cached artifact, link, instantiate and call `describe` (what
//!   activating a version or starting a host with it installed costs);
//! - call: a fresh store and instance plus one `greet` (what every tool call pays),
//!   and the parts: instantiate only, and `greet` on an instance already live;
//! - memory: the smallest per-call memory cap (in 1 MiB steps) under which `greet`
//!   still succeeds.
//!
//! It also counts each component's imports (`--imports` lists them): componentize-py
//! imports its whole world, so pyhello linking at all shows the host links every
//! interface `wit/` declares.
//!
//! Figures are medians; the ratios Python / Rust are the result (docs/benchmarks.md).
//! Run: `cargo run --release -p agenthost-tests --bin bench-plugin-languages`.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agenthost::capabilities::CallGrants;
use agenthost::registry::cache::ArtifactCache;
use agenthost::runtime::bindings::CallContext;
use agenthost::runtime::{self, EngineConfig, Limits, LoadedPlugin, PluginKind, WasmEngine};
use agenthost_tests::plugin_wasm;
use tokio::runtime::Runtime;

const GREET: &str = r#"{"name":"Ada"}"#;

struct Figures {
    /// The component's imports (interfaces), sorted.
    imports: Vec<String>,
    component_bytes: usize,
    artifact_bytes: usize,
    compile: Duration,
    activate: Duration,
    instantiate: Duration,
    call: Duration,
    live_call: Duration,
    min_memory_mib: usize,
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = Arc::new(WasmEngine::new(&EngineConfig::default()).unwrap());
    let cache_dir =
        std::env::temp_dir().join(format!("agenthost-bench-languages-{}", std::process::id()));
    let cache = ArtifactCache::new(cache_dir.clone(), &engine).unwrap();

    let rust = measure(&rt, &engine, &cache, "hello", &plugin_wasm("hello"));
    let python = measure(&rt, &engine, &cache, "pyhello", &pyhello_wasm());
    let _ = std::fs::remove_dir_all(&cache_dir);
    if std::env::args().any(|arg| arg == "--imports") {
        for (name, figures) in [("hello", &rust), ("pyhello", &python)] {
            println!("{name} imports: {}", figures.imports.join(" "));
        }
    }

    println!(
        "{:<34} {:>14} {:>14} {:>10}",
        "plugin languages", "rust hello", "python pyhello", "py / rust"
    );
    let row = |what: &str, r: f64, p: f64, unit: &str| {
        println!(
            "{what:<34} {:>10.1} {unit:<3} {:>10.1} {unit:<3} {:>9.1}x",
            r,
            p,
            p / r
        );
    };
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    row(
        "imports (interfaces)",
        rust.imports.len() as f64,
        python.imports.len() as f64,
        "",
    );
    row(
        "component size",
        mib(rust.component_bytes),
        mib(python.component_bytes),
        "MiB",
    );
    row(
        "compiled artifact size",
        mib(rust.artifact_bytes),
        mib(python.artifact_bytes),
        "MiB",
    );
    row(
        "compile (once per version)",
        ms(rust.compile),
        ms(python.compile),
        "ms",
    );
    row(
        "activate (cached artifact)",
        ms(rust.activate),
        ms(python.activate),
        "ms",
    );
    row(
        "call: fresh instance + greet",
        us(rust.call),
        us(python.call),
        "us",
    );
    row(
        "  of which instantiate",
        us(rust.instantiate),
        us(python.instantiate),
        "us",
    );
    row(
        "  greet on a live instance",
        us(rust.live_call),
        us(python.live_call),
        "us",
    );
    row(
        "smallest memory cap for greet",
        rust.min_memory_mib as f64,
        python.min_memory_mib as f64,
        "MiB",
    );
}

fn measure(
    rt: &Runtime,
    engine: &WasmEngine,
    cache: &ArtifactCache,
    name: &str,
    bytes: &[u8],
) -> Figures {
    let compile = median(3, || {
        runtime::compile(engine, bytes).unwrap();
    });
    let component = runtime::compile(engine, bytes).unwrap();
    let mut imports: Vec<String> = component
        .component_type()
        .imports(&engine.engine)
        .map(|(name, _)| name.to_string())
        .collect();
    imports.sort();
    let key = format!("{name}-bench");
    cache.load(engine, &key, bytes).unwrap();
    let artifact_bytes = component.serialize().unwrap().len();
    let load = |limits: Limits| {
        let component = cache.load(engine, &key, bytes).unwrap();
        rt.block_on(LoadedPlugin::load(
            engine,
            &component,
            name,
            "1.0.0",
            PluginKind::Tool,
            limits,
        ))
    };
    let activate = median(20, || {
        load(Limits::default()).unwrap();
    });

    let plugin = load(Limits::default()).unwrap();
    let call = median(200, || {
        rt.block_on(plugin.invoke_tool(
            engine,
            context(name),
            CallGrants::default(),
            "greet",
            GREET,
        ))
        .unwrap();
    });
    let instantiate = median(200, || {
        rt.block_on(plugin.instantiate(engine, context(name), CallGrants::default()))
            .unwrap();
    });
    let (mut store, instance) = rt
        .block_on(plugin.instantiate(engine, context(name), CallGrants::default()))
        .unwrap();
    let guest = plugin
        .tools_export()
        .unwrap()
        .load(&mut store, &instance)
        .unwrap();
    let ctx = context(name);
    let live_call = median(200, || {
        rt.block_on(guest.call_invoke(&mut store, &ctx, "greet", GREET))
            .unwrap()
            .unwrap();
        // Deadlines are per store: keep this long-lived one from expiring.
        store.set_epoch_deadline(1_000_000);
    });

    // Loading runs `describe` under the cap too, so a cap that loads is one that fits
    // an instance; the call must then succeed under it as well.
    let min_memory_mib = (1..=64)
        .find(|&mib| {
            let limits = Limits {
                memory_bytes: mib << 20,
                ..Limits::default()
            };
            let Ok(plugin) = load(limits) else {
                return false;
            };
            rt.block_on(plugin.invoke_tool(
                engine,
                context(name),
                CallGrants::default(),
                "greet",
                GREET,
            ))
            .is_ok()
        })
        .unwrap_or_else(|| panic!("{name} needs more than 64 MiB"));

    Figures {
        imports,
        component_bytes: bytes.len(),
        artifact_bytes,
        compile,
        activate,
        instantiate,
        call,
        live_call,
        min_memory_mib,
    }
}

fn median(n: usize, mut f: impl FnMut()) -> Duration {
    f(); // warm-up: first touches of pages and caches are not what later calls pay
    let mut samples: Vec<Duration> = (0..n)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect();
    samples.sort();
    samples[n / 2]
}

fn context(plugin: &str) -> CallContext {
    CallContext {
        workspace_id: "bench".into(),
        plugin: plugin.into(),
        version: "1.0.0".into(),
        request_id: "bench".into(),
    }
}

/// Built by `scripts/build_python_plugin.py` where `make plugins` puts it (a no-op when
/// it is up to date).
fn pyhello_wasm() -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("plugins/target"))
        .join("wasm32-wasip2/wasm-release");
    let output = std::process::Command::new("python3")
        .arg(root.join("scripts/build_python_plugin.py"))
        .arg(root.join("plugins/examples/python-hello"))
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "building the Python plugin failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = String::from_utf8(output.stdout).unwrap();
    std::fs::read(path.trim()).unwrap()
}
