// `sqlx::migrate!` embeds ../migrations at compile time; on stable Rust it cannot tell
// Cargo to watch the folder, so a new migration would otherwise be missed.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
    console::generate();
}

/// Embeds the web console (`console/dist`, built by `scripts/setup_console.py`) into the
/// binary: writes `$OUT_DIR/console_assets.rs`, a table of every file with its gzip
/// twin (`<file>.gz`, written by the setup script), content type and ETag, which
/// `host/src/http/console.rs` serves. Without a built console (a fresh clone before
/// `make setup`) the table holds one page that says how to build it, so `cargo build`
/// works anywhere.
mod console {
    use std::fmt::Write as _;
    use std::hash::{DefaultHasher, Hash, Hasher};
    use std::path::{Path, PathBuf};

    const NOT_BUILT: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
        <title>Agenthost console not built</title></head><body><main><h1>The console is not built</h1>\
        <p>Run <code>make setup</code> (or <code>make run</code>), which builds it into \
        <code>console/dist</code>, then build agenthost again. The API is at \
        <a href=\"/docs\">/docs</a>.</p></main></body></html>";

    pub fn generate() {
        let manifest =
            PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
        let console = manifest.join("../console");
        let dist = console.join("dist");
        let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
        let mut files = Vec::new();
        if dist.join("index.html").is_file() {
            println!("cargo:rerun-if-changed={}", dist.display());
            collect(&dist, &mut files);
            files.sort();
        } else {
            // Watching the folder (committed, so it exists) notices the first build.
            println!("cargo:rerun-if-changed={}", console.display());
        }
        let mut code = String::from("pub(crate) static ASSETS: &[Asset] = &[\n");
        if files.is_empty() {
            let etag = etag(NOT_BUILT.as_bytes());
            writeln!(
                code,
                "    Asset {{ path: \"/index.html\", body: {NOT_BUILT:?}.as_bytes(), gzip: None, \
                 content_type: \"text/html; charset=utf-8\", etag: {etag:?} }},"
            )
            .expect("write to a String");
        }
        for file in &files {
            let relative = file.strip_prefix(&dist).expect("under dist");
            let path = format!("/{}", relative.to_string_lossy().replace('\\', "/"));
            let body = std::fs::read(file).expect("read a console asset");
            let gzip = PathBuf::from(format!("{}.gz", file.display()));
            let gzip = if gzip.is_file() {
                format!("Some(include_bytes!({:?}))", gzip.display().to_string())
            } else {
                "None".to_string()
            };
            writeln!(
                code,
                "    Asset {{ path: {path:?}, body: include_bytes!({:?}), gzip: {gzip}, \
                 content_type: {:?}, etag: {:?} }},",
                file.display().to_string(),
                content_type(file),
                etag(&body),
            )
            .expect("write to a String");
        }
        code.push_str("];\n");
        std::fs::write(out.join("console_assets.rs"), code).expect("write console_assets.rs");
    }

    /// Every file under `dir` except the `.gz` twins, which ride along with their file, and
    /// dot files (the setup script's build stamp).
    fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read console/dist") {
            let path = entry.expect("read console/dist").path();
            if path.is_dir() {
                collect(&path, files);
            } else if path.extension().is_none_or(|e| e != "gz")
                && !path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                files.push(path);
            }
        }
    }

    fn content_type(file: &Path) -> &'static str {
        match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
            "html" => "text/html; charset=utf-8",
            "js" | "mjs" => "text/javascript; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "json" | "map" => "application/json",
            "svg" => "image/svg+xml",
            "png" => "image/png",
            "ico" => "image/x-icon",
            "woff2" => "font/woff2",
            "txt" => "text/plain; charset=utf-8",
            _ => "application/octet-stream",
        }
    }

    /// A strong validator from the content (SipHash with fixed keys: the same bytes give
    /// the same tag in every build).
    fn etag(body: &[u8]) -> String {
        let mut hasher = DefaultHasher::new();
        body.hash(&mut hasher);
        format!("\"{:016x}-{:x}\"", hasher.finish(), body.len())
    }
}
