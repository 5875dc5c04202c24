// `sqlx::migrate!` embeds ../migrations at compile time; on stable Rust it cannot tell
// Cargo to watch the folder, so a new migration would otherwise be missed.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
