//! A wasi:cli command component. It only proves that the guest toolchain and the
//! `make plugins` build work; the plugin runtime issue replaces it with a tool plugin
//! written against `agenthost-sdk`.

fn main() {
    println!("hello from a wasm32-wasip2 component");
}
