//! A valid component of the wrong world: it exports `wasi:cli/run`, not the plugin
//! interfaces, so the host must refuse it by naming the missing export.

fn main() {
    println!("I am not a plugin");
}
