//! A hostile plugin for the host's isolation tests. Never install it anywhere real.

use agenthost_sdk::{CallContext, Error, ToolPlugin, ToolSpec, config};
use serde_json::{Value, json};

struct Faults;

fn tool(name: &str, description: &str) -> ToolSpec {
    ToolSpec::new(name, description, json!({"type": "object"}), json!({}))
}

impl ToolPlugin for Faults {
    fn tools() -> Vec<ToolSpec> {
        vec![
            tool("spin", "Loops forever."),
            tool("allocate", "Allocates memory until something stops it."),
            tool("trap", "Panics, which traps the instance."),
            tool(
                "snoop",
                "Reports what it can see of the host: environment and files.",
            ),
            tool("secret", "Reads the secret named in `name`."),
            tool("ok", "Answers at once."),
            tool(
                "flood",
                "Writes `mb` MiB (default 8) to stderr, then panics with a known message.",
            ),
        ]
    }

    fn invoke(_: &CallContext, tool: &str, input: Value) -> Result<Value, Error> {
        match tool {
            "spin" => {
                let mut counter: u64 = 0;
                loop {
                    counter = std::hint::black_box(counter.wrapping_add(1));
                }
            }
            "allocate" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "trap" => panic!("this plugin traps on purpose"),
            "snoop" => {
                let env: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
                let files: Vec<String> = ["/etc/passwd", "/", ".", "/proc/self/environ"]
                    .iter()
                    .filter(|path| std::fs::metadata(path).is_ok())
                    .map(|path| path.to_string())
                    .collect();
                Ok(json!({ "env": env, "files": files }))
            }
            "secret" => {
                let name = input["name"].as_str().unwrap_or_default();
                Ok(json!({ "value": config::secret(name)? }))
            }
            "ok" => Ok(json!({ "ok": true })),
            "flood" => {
                use std::io::Write;
                let mb = input["mb"].as_u64().unwrap_or(8);
                let line = [b'#'; 1023];
                let mut stderr = std::io::stderr().lock();
                for _ in 0..mb * 1024 {
                    let _ = stderr.write_all(&line);
                    let _ = stderr.write_all(b"\n");
                }
                drop(stderr);
                panic!("flooded stderr with {mb} MiB, then gave up on purpose")
            }
            other => Err(Error::NotFound(format!("no tool named {other}"))),
        }
    }
}

agenthost_sdk::export_tool_plugin!(Faults);
