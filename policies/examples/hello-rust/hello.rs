//! hello-rust: STDIO protocol. Reads a name on stdin and prints
//! "Hello, NAME! (from Rust)". Built by ../build-wasm.sh with
//! `rustc --target wasm32-wasip1`.

use std::io::Read;

fn main() {
    let mut name = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut name) {
        eprintln!("cannot read stdin: {e}");
        std::process::exit(1);
    }
    let name = name.trim();
    let name = if name.is_empty() { "world" } else { name };
    println!("Hello, {name}! (from Rust)");
}
