//! Runtime micro-benchmarks on real guest components (`make plugins` builds them;
//! `make bench` runs everything). Figures go into the issue notes.
//!
//! - compile: `Component::new` of the hello plugin (done once per version per host);
//! - activate: load a precompiled artifact from the cache and link + describe it
//!   (the in-process part of activating a version);
//! - call: a fresh store and instance from the cached `InstancePre` plus one trivial
//!   tool call, the per-call cost every invocation pays.

#![allow(clippy::unwrap_used)] // a benchmark that can't set up should stop loudly

use std::path::PathBuf;
use std::sync::Arc;

use agenthost::capabilities::CallGrants;
use agenthost::registry::cache::ArtifactCache;
use agenthost::runtime::bindings::CallContext;
use agenthost::runtime::{self, EngineConfig, Limits, LoadedPlugin, PluginKind, WasmEngine};
use criterion::{Criterion, criterion_group, criterion_main};

fn guest(name: &str) -> Vec<u8> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/target"));
    let path = target.join(format!("wasm32-wasip2/wasm-release/{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run `make plugins`)", path.display()))
}

fn context() -> CallContext {
    CallContext {
        workspace_id: "bench".into(),
        plugin: "hello".into(),
        version: "1.0.0".into(),
        request_id: "bench".into(),
    }
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = Arc::new(WasmEngine::new(&EngineConfig::default()).unwrap());
    let hello = guest("hello");
    let faults = guest("faults");

    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    group.bench_function("hello", |b| {
        b.iter(|| runtime::compile(&engine, &hello).unwrap())
    });
    group.finish();

    let cache_dir =
        std::env::temp_dir().join(format!("agenthost-bench-cache-{}", std::process::id()));
    let cache = ArtifactCache::new(cache_dir.clone(), &engine).unwrap();
    cache.load(&engine, "hello-bench", &hello).unwrap();
    c.bench_function("activate/precompiled_load_link_describe", |b| {
        b.to_async(&rt).iter(|| async {
            let component = cache.load(&engine, "hello-bench", &hello).unwrap();
            LoadedPlugin::load(
                &engine,
                &component,
                "hello",
                "1.0.0",
                PluginKind::Tool,
                Limits::default(),
            )
            .await
            .unwrap()
        })
    });

    let load = |bytes: &[u8], name: &str| {
        let component = runtime::compile(&engine, bytes).unwrap();
        rt.block_on(LoadedPlugin::load(
            &engine,
            &component,
            name,
            "1.0.0",
            PluginKind::Tool,
            Limits::default(),
        ))
        .unwrap()
    };
    let faults = load(&faults, "faults");
    let hello = load(&hello, "hello");
    let config = CallGrants::default();
    c.bench_function("call/fresh_instance_trivial_tool", |b| {
        b.to_async(&rt).iter(|| async {
            faults
                .invoke_tool(&engine, context(), config.clone(), "ok", "{}")
                .await
                .unwrap()
        })
    });
    // The same call taken apart, to see where the time goes.
    c.bench_function("call_parts/store_only", |b| {
        b.iter(|| faults.new_store(&engine, context(), config.clone()))
    });
    c.bench_function("call_parts/store_and_instantiate", |b| {
        b.to_async(&rt).iter(|| async {
            faults
                .instantiate(&engine, context(), config.clone())
                .await
                .unwrap()
        })
    });
    // A call into a live instance: no instantiation, memory pages already touched.
    let (mut store, instance) = rt
        .block_on(faults.instantiate(&engine, context(), config.clone()))
        .unwrap();
    let guest = faults
        .tools_export()
        .unwrap()
        .load(&mut store, &instance)
        .unwrap();
    let ctx = context();
    c.bench_function("call_parts/call_on_live_instance", |b| {
        b.iter(|| {
            rt.block_on(guest.call_invoke(&mut store, &ctx, "ok", "{}"))
                .unwrap()
                .unwrap();
            // Deadlines are per store: keep this long-lived one from expiring.
            store.set_epoch_deadline(1_000_000);
        })
    });
    c.bench_function("call/fresh_instance_greet_with_config_and_log", |b| {
        b.to_async(&rt).iter(|| async {
            hello
                .invoke_tool(
                    &engine,
                    context(),
                    config.clone(),
                    "greet",
                    r#"{"name":"Ada"}"#,
                )
                .await
                .unwrap()
        })
    });
    let _ = std::fs::remove_dir_all(cache_dir);
}

criterion_group!(runtime_benches, benches);
criterion_main!(runtime_benches);
