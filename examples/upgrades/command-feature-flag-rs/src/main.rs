//! command-feature-flag in Rust: the command-ABI example, a plain WASI
//! program. With argv ["pkg", "upgrade"] it reads the state on stdin and
//! writes the new state on stdout; with ["pkg", "info"] it writes its info.
//! It sets global.command_abi = true and raises global.version to 1.3.0,
//! with the same output bytes as the Go package
//! examples/upgrades/command-feature-flag. Build: scripts/build-rust-guests.sh
//! (cargo build --release --target wasm32-wasi).

use std::io::{Read, Write};
use std::process::exit;

use synapse_abi::json::{self, Object, Value};

const VERSION: &str = "1.3.0";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 2 {
        eprintln!("usage: pkg upgrade|info");
        exit(2);
    }
    let mut out = match args[1].as_str() {
        "info" => {
            let mut info = Object::new();
            info.insert("version", Value::from(VERSION));
            info.insert("description", Value::from("set global.command_abi"));
            info.insert("breaking", Value::from(false));
            json::to_vec(&Value::Object(info))
        }
        "upgrade" => {
            let mut input = Vec::new();
            if let Err(e) = std::io::stdin().read_to_end(&mut input) {
                eprintln!("bad state: {e}");
                exit(1);
            }
            match upgrade(&input) {
                Ok(out) => out,
                Err(msg) => {
                    eprintln!("{msg}");
                    exit(1);
                }
            }
        }
        mode => {
            eprintln!("unknown mode {mode:?}");
            exit(2);
        }
    };
    out.push(b'\n'); // like Go's json.Encoder
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(&out).and_then(|_| stdout.flush()).is_err() {
        exit(1);
    }
}

fn upgrade(input: &[u8]) -> Result<Vec<u8>, String> {
    let mut state = json::parse_object(input).map_err(|e| format!("bad state: {e}"))?;
    let global = match state.get_mut("global") {
        Some(Value::Object(global)) => global,
        _ => return Err("state has no global object".into()),
    };
    global.insert("command_abi", Value::Bool(true));
    global.insert("version", Value::from(VERSION));
    let state = Value::Object(state);
    let out = json::to_vec(&state);
    std::mem::forget(state); // the program exits next: freeing the tree would only cost fuel
    Ok(out)
}
