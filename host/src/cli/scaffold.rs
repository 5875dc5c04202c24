//! `plugin new`: a plugin crate from the templates embedded in the binary
//! (`cli/templates/`), so the generated crate matches the SDK this host was built with.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::commands::Kind;

const CARGO_TOML: &str = include_str!("templates/Cargo.toml.tmpl");
const CARGO_CONFIG: &str = include_str!("templates/cargo-config.toml");
const GITIGNORE: &str = include_str!("templates/gitignore");
const TOOL_MANIFEST: &str = include_str!("templates/tool/manifest.json");
const TOOL_LIB: &str = include_str!("templates/tool/src/lib.rs");
const NODE_MANIFEST: &str = include_str!("templates/node/manifest.json");
const NODE_LIB: &str = include_str!("templates/node/src/lib.rs");

/// How the generated crate depends on `agenthost-sdk`.
pub enum Sdk {
    Path(PathBuf),
    Git { url: String, rev: Option<String> },
}

impl Sdk {
    /// `--sdk-path`, else `--sdk-git`, else the `sdk/` of the clone this binary was
    /// built from when it is still there (the SDK is not on crates.io yet).
    pub fn choose(
        path: Option<PathBuf>,
        git: Option<String>,
        rev: Option<String>,
    ) -> anyhow::Result<Sdk> {
        if let Some(url) = git {
            return Ok(Sdk::Git { url, rev });
        }
        let path = match path {
            Some(path) => path,
            None => {
                let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
                if !built_from.join("Cargo.toml").is_file() {
                    bail!(
                        "the SDK is not on crates.io yet: pass --sdk-path <clone>/sdk or \
                         --sdk-git <repository URL> --sdk-rev <commit>"
                    );
                }
                built_from
            }
        };
        let path = std::fs::canonicalize(&path)
            .with_context(|| format!("the SDK directory {}", path.display()))?;
        if !path.join("Cargo.toml").is_file() {
            bail!(
                "{} holds no Cargo.toml: not the SDK's directory",
                path.display()
            );
        }
        Ok(Sdk::Path(path))
    }

    fn dependency(&self) -> String {
        match self {
            Sdk::Path(path) => format!("{{ path = {} }}", toml_string(&path.to_string_lossy())),
            Sdk::Git {
                url,
                rev: Some(rev),
            } => {
                format!(
                    "{{ git = {}, rev = {} }}",
                    toml_string(url),
                    toml_string(rev)
                )
            }
            Sdk::Git { url, rev: None } => format!("{{ git = {} }}", toml_string(url)),
        }
    }
}

fn toml_string(s: &str) -> String {
    // A TOML basic string has JSON's escapes.
    serde_json::Value::String(s.into()).to_string()
}

/// The same rule the host applies to manifest names, checked before writing anything.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !ok {
        bail!(
            "name {name:?} must be 1-63 lowercase letters, digits, '_' or '-', starting with a letter"
        );
    }
    Ok(())
}

/// Write the crate into `dir` (created; it must not exist or be empty). Returns the
/// files written, relative to `dir`.
pub fn generate(
    name: &str,
    kind: Kind,
    dir: &Path,
    sdk: &Sdk,
) -> anyhow::Result<Vec<&'static str>> {
    check_name(name)?;
    if dir.exists() {
        let mut entries =
            std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
        if entries.next().is_some() {
            bail!("{} exists and is not empty", dir.display());
        }
    }
    let (manifest, lib) = match kind {
        Kind::Tool => (TOOL_MANIFEST, TOOL_LIB),
        Kind::Node => (NODE_MANIFEST, NODE_LIB),
    };
    let render = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{sdk}}", &sdk.dependency())
    };
    let files: [(&'static str, String); 5] = [
        ("Cargo.toml", render(CARGO_TOML)),
        ("manifest.json", render(manifest)),
        (".cargo/config.toml", CARGO_CONFIG.to_string()),
        (".gitignore", GITIGNORE.to_string()),
        ("src/lib.rs", render(lib)),
    ];
    for (path, contents) in &files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(files.iter().map(|(path, _)| *path).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_valid_toml_and_json() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = Sdk::Path(PathBuf::from("/opt/agent \"host\"/sdk"));
        generate("my-tool", Kind::Tool, dir.path(), &sdk).unwrap();
        let cargo: toml::Value =
            toml::from_str(&std::fs::read_to_string(dir.path().join("Cargo.toml")).unwrap())
                .unwrap();
        assert_eq!(cargo["package"]["name"].as_str(), Some("my-tool"));
        assert_eq!(
            cargo["dependencies"]["agenthost-sdk"]["path"].as_str(),
            Some("/opt/agent \"host\"/sdk")
        );
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap())
                .unwrap();
        assert_eq!(manifest["name"], "my-tool");
        assert_eq!(manifest["kind"], "tool");
        assert!(
            generate("my-tool", Kind::Tool, dir.path(), &sdk).is_err(),
            "not empty"
        );
        assert!(check_name("My_Tool").is_err());
    }
}
