//! `agenthost plugin ...`: the local steps (new, build, test) run cargo in the crate;
//! the others map one to one onto the admin API (`docs/plugins.md`).

use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use reqwest13::Method;
use reqwest13::multipart::{Form, Part};
use serde_json::{Value, json};

use super::client::{Client, print_json};
use super::commands::{Output, PluginCommand};
use super::out::outln;
use super::scaffold::{self, Sdk};

/// The upload is sent in chunks of this size, so the progress bar moves.
const UPLOAD_CHUNK: usize = 64 * 1024;

pub async fn run(
    command: PluginCommand,
    output: Output,
    client: impl FnOnce() -> anyhow::Result<Client>,
) -> anyhow::Result<()> {
    match command {
        PluginCommand::New {
            name,
            kind,
            dir,
            sdk_path,
            sdk_git,
            sdk_rev,
        } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let sdk = Sdk::choose(sdk_path, sdk_git, sdk_rev)?;
            let files = scaffold::generate(&name, kind, &dir, &sdk)?;
            match output {
                Output::Json => print_json(&json!({ "name": name, "dir": dir, "files": files }))?,
                Output::Text => {
                    outln!("created plugin {name} in {}:", dir.display())?;
                    for file in files {
                        outln!("  {file}")?;
                    }
                    outln!(
                        "next: cd {} && agenthost plugin test && agenthost plugin push --activate",
                        dir.display()
                    )?;
                }
            }
            Ok(())
        }
        PluginCommand::Build(crate_dir) => {
            let wasm = build(&crate_dir.dir).await?;
            let size = std::fs::metadata(&wasm)?.len();
            match output {
                Output::Json => print_json(&json!({ "wasm": wasm, "size_bytes": size }))?,
                Output::Text => outln!("built {} ({})", wasm.display(), human_size(size))?,
            }
            Ok(())
        }
        PluginCommand::Test(crate_dir) => {
            cargo(&crate_dir.dir, &["test"]).await?;
            match output {
                Output::Json => print_json(&json!({ "passed": true }))?,
                Output::Text => outln!("tests passed")?,
            }
            Ok(())
        }
        PluginCommand::Push {
            dir,
            activate,
            wasm,
        } => {
            let wasm = match wasm {
                Some(wasm) => wasm,
                None => build(&dir.dir).await?,
            };
            push(&client()?, &dir.dir.join("manifest.json"), &wasm, activate).await
        }
        PluginCommand::List => {
            let client = client()?;
            let plugins = client.call(Method::GET, "/api/admin/plugins").await?;
            match client.output {
                Output::Json => print_json(&plugins)?,
                Output::Text => print_plugins(&plugins)?,
            }
            Ok(())
        }
        PluginCommand::Show { name } => {
            let client = client()?;
            let plugin = client
                .call(
                    Method::GET,
                    &format!("/api/admin/plugins/{}", segment(&name)),
                )
                .await?;
            match client.output {
                Output::Json => print_json(&plugin)?,
                Output::Text => print_plugin(&plugin)?,
            }
            Ok(())
        }
        PluginCommand::Activate { name, version } => {
            let path = format!(
                "/api/admin/plugins/{}/versions/{}/activate",
                segment(&name),
                segment(&version)
            );
            change(&client()?, Method::POST, &path).await
        }
        PluginCommand::Rollback { name } => {
            let path = format!("/api/admin/plugins/{}/rollback", segment(&name));
            change(&client()?, Method::POST, &path).await
        }
        PluginCommand::Enable { name } => {
            let path = format!("/api/admin/plugins/{}/enable", segment(&name));
            change(&client()?, Method::POST, &path).await
        }
        PluginCommand::Disable { name } => {
            let path = format!("/api/admin/plugins/{}/disable", segment(&name));
            change(&client()?, Method::POST, &path).await
        }
        PluginCommand::Delete { name, version } => {
            let client = client()?;
            let path = format!(
                "/api/admin/plugins/{}/versions/{}",
                segment(&name),
                segment(&version)
            );
            client.call(Method::DELETE, &path).await?;
            match client.output {
                Output::Json => {
                    print_json(&json!({ "deleted": { "name": name, "version": version } }))?
                }
                Output::Text => outln!("deleted {name} {version}")?,
            }
            Ok(())
        }
        PluginCommand::Grant {
            name,
            version,
            file,
        } => {
            let client = client()?;
            let grants: Value = serde_json::from_slice(
                &std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?,
            )
            .with_context(|| format!("{} is not JSON", file.display()))?;
            let path = format!(
                "/api/admin/plugins/{}/versions/{}/grants",
                segment(&name),
                segment(&version)
            );
            let info = client
                .send(client.request(Method::PUT, &path).json(&grants))
                .await?;
            match client.output {
                Output::Json => print_json(&info)?,
                Output::Text => outln!("granted {name} {version}: {}", info["grants"])?,
            }
            Ok(())
        }
        PluginCommand::Logs(args) => super::logs::run(&client()?, args).await,
    }
}

/// A path segment, percent-encoded (names and versions are plain, but `1.0.0+dev.x`
/// carries a `+`).
pub(super) fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%2B")
}

/// A change answered with the plugin (activate, rollback, enable, disable).
async fn change(client: &Client, method: Method, path: &str) -> anyhow::Result<()> {
    let plugin = client.call(method, path).await?;
    match client.output {
        Output::Json => print_json(&plugin)?,
        Output::Text => outln!("{}", plugin_line(&plugin))?,
    }
    Ok(())
}

/// Run cargo in the crate's directory, so its `.cargo/config.toml` (the small stack)
/// applies. Cargo's output goes to stderr: stdout carries only our answer.
async fn cargo(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    check_crate_dir(dir)?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let stdout: Stdio = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::inherit());
    let status = tokio::process::Command::new(&cargo)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(stdout)
        .status()
        .await
        .map_err(|err| match err.kind() {
            // The directory exists (checked above), so what is missing is cargo.
            std::io::ErrorKind::NotFound => anyhow::anyhow!(
                "{} not found: install Rust (https://rustup.rs) or set CARGO",
                cargo.to_string_lossy()
            ),
            _ => anyhow::Error::new(err).context(format!(
                "running {} in {}",
                cargo.to_string_lossy(),
                dir.display()
            )),
        })?;
    if !status.success() {
        bail!(
            "cargo {} failed in {} ({status})",
            args.join(" "),
            dir.display()
        );
    }
    Ok(())
}

/// Spawning a program in a missing directory fails with "No such file or directory",
/// which reads as if cargo were missing: say what is wrong with the directory instead.
fn check_crate_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        bail!(
            "the plugin directory {} does not exist (--dir; `agenthost plugin new` makes one)",
            dir.display()
        );
    }
    if !dir.join("Cargo.toml").is_file() {
        bail!(
            "{} has no Cargo.toml: not a plugin crate (`agenthost plugin new` makes one)",
            dir.display()
        );
    }
    Ok(())
}

/// Build the component; returns the path of the `.wasm` cargo wrote.
async fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    cargo(dir, &["build", "--target", "wasm32-wasip2", "--release"]).await?;
    let wasm = wasm_path(dir).await?;
    if !wasm.is_file() {
        bail!("cargo built no {}", wasm.display());
    }
    Ok(wasm)
}

/// `<target dir>/wasm32-wasip2/release/<lib name>.wasm`, from `cargo metadata` (which
/// knows CARGO_TARGET_DIR, workspaces and `[lib] name`).
async fn wasm_path(dir: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = tokio::process::Command::new(&cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .await
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed in {}", dir.display());
    }
    let metadata: Value = serde_json::from_slice(&out.stdout).context("reading cargo metadata")?;
    let target_dir = metadata["target_directory"]
        .as_str()
        .context("cargo metadata has no target_directory")?;
    let manifest = std::fs::canonicalize(dir.join("Cargo.toml"))?;
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let package = packages
        .iter()
        .find(|p| p["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path()))
        .or(packages.first())
        .context("cargo metadata lists no package")?;
    let lib = package["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"))
        })
        .and_then(|t| t["name"].as_str())
        .context("the crate has no cdylib target (crate-type = [\"cdylib\"] under [lib])")?;
    Ok(Path::new(target_dir)
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", lib.replace('-', "_"))))
}

async fn push(client: &Client, manifest: &Path, wasm: &Path, activate: bool) -> anyhow::Result<()> {
    let manifest_text = std::fs::read_to_string(manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let parsed: Value = serde_json::from_str(&manifest_text)
        .with_context(|| format!("{} is not JSON", manifest.display()))?;
    let component = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let size = component.len() as u64;

    let bar = (client.output == Output::Text && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(size);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "uploading {msg} [{bar:30}] {bytes}/{total_bytes}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(format!(
            "{} {}",
            parsed["name"].as_str().unwrap_or("?"),
            parsed["version"].as_str().unwrap_or("?")
        ));
        bar
    });
    let chunks: Vec<bytes::Bytes> = bytes::Bytes::from(component)
        .chunks(UPLOAD_CHUNK)
        .map(bytes::Bytes::copy_from_slice)
        .collect();
    let progress = bar.clone();
    let body = futures_util::stream::iter(chunks).map(move |chunk| {
        if let Some(bar) = &progress {
            bar.inc(chunk.len() as u64);
        }
        Ok::<_, std::io::Error>(chunk)
    });
    let form = Form::new()
        .part(
            "manifest",
            Part::text(manifest_text).mime_str("application/json")?,
        )
        .part(
            "component",
            Part::stream_with_length(reqwest13::Body::wrap_stream(body), size)
                .file_name("plugin.wasm")
                .mime_str("application/wasm")?,
        );
    let path = if activate {
        "/api/admin/plugins?activate=true"
    } else {
        "/api/admin/plugins"
    };
    let answer = client
        .send(client.request(Method::POST, path).multipart(form))
        .await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let version = answer?;
    match client.output {
        Output::Json => print_json(&version)?,
        Output::Text => outln!(
            "uploaded {} {} ({}, sha256 {}){}",
            version["plugin"].as_str().unwrap_or("?"),
            version["version"].as_str().unwrap_or("?"),
            human_size(size),
            version["sha256"]
                .as_str()
                .unwrap_or("?")
                .get(..12)
                .unwrap_or(""),
            if version["active"] == true {
                ", active"
            } else {
                ""
            }
        )?,
    }
    Ok(())
}

fn human_size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

fn plugin_line(plugin: &Value) -> String {
    format!(
        "{}: {} {}{}{}",
        plugin["name"].as_str().unwrap_or("?"),
        plugin["kind"].as_str().unwrap_or("?"),
        plugin["active_version"]
            .as_str()
            .map(|v| format!("active {v}"))
            .unwrap_or_else(|| "no active version".into()),
        plugin["previous_version"]
            .as_str()
            .map(|v| format!(", previous {v}"))
            .unwrap_or_default(),
        if plugin["enabled"] == false {
            ", disabled"
        } else {
            ""
        },
    )
}

fn print_plugins(plugins: &Value) -> anyhow::Result<()> {
    let plugins = plugins.as_array().map(Vec::as_slice).unwrap_or_default();
    if plugins.is_empty() {
        outln!("no plugins installed")?;
    }
    for plugin in plugins {
        outln!("{}", plugin_line(plugin))?;
    }
    Ok(())
}

fn print_plugin(plugin: &Value) -> anyhow::Result<()> {
    outln!("{}", plugin_line(plugin))?;
    for version in plugin["versions"].as_array().into_iter().flatten() {
        let names = |key: &str, field: &str| -> Vec<String> {
            version[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|item| item[field].as_str().map(str::to_string))
                .collect()
        };
        let mut offers = names("tools", "name");
        offers.extend(names("nodes", "node_type"));
        outln!(
            "  {} {} {} ({}){}",
            if version["active"] == true { "*" } else { " " },
            version["version"].as_str().unwrap_or("?"),
            version["created_at"].as_str().unwrap_or(""),
            human_size(version["size_bytes"].as_u64().unwrap_or(0)),
            if offers.is_empty() {
                String::new()
            } else {
                format!(": {}", offers.join(", "))
            }
        )?;
    }
    Ok(())
}
