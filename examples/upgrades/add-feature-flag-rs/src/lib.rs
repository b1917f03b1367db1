//! add-feature-flag in Rust: the seed's reference upgrade (reactor ABI). It
//! sets new_feature_enabled on every node of global.nodes and raises
//! global.version to 1.2.0, with the same output bytes as the Go package
//! examples/upgrades/add-feature-flag. Build: scripts/build-rust-guests.sh
//! (cargo build --release --target wasm32-unknown-unknown).

use synapse_abi::json::{self, Object, Value};

const VERSION: &str = "1.2.0";

#[no_mangle]
pub extern "C" fn alloc(size: i32) -> i32 {
    synapse_abi::alloc(size)
}

#[no_mangle]
pub extern "C" fn upgrade(ptr: i32, len: i32) -> i64 {
    synapse_abi::report_panics();
    match transform(synapse_abi::input(ptr, len)) {
        Ok(out) => synapse_abi::pack(out),
        Err(msg) => synapse_abi::fail(&msg), // a trap: the host reports the message
    }
}

#[no_mangle]
pub extern "C" fn get_upgrade_info() -> i64 {
    let mut info = Object::new();
    info.insert("version", Value::from(VERSION));
    info.insert("description", Value::from("enable new_feature_enabled on every node"));
    info.insert("breaking", Value::from(false));
    synapse_abi::pack(json::to_vec(&Value::Object(info)))
}

fn transform(input: &[u8]) -> Result<Vec<u8>, String> {
    let mut state = json::parse_object(input).map_err(|e| e.to_string())?;
    let global = match state.get_mut("global") {
        Some(Value::Object(global)) => global,
        _ => return Err("state has no global object".into()),
    };
    if let Some(Value::Object(nodes)) = global.get_mut("nodes") {
        for (_, node) in nodes.iter_mut() {
            if let Value::Object(node) = node {
                node.insert("new_feature_enabled", Value::Bool(true));
            }
        }
    }
    global.insert("version", Value::from(VERSION));
    let state = Value::Object(state);
    let out = json::to_vec(&state);
    // The instance is thrown away after this call: freeing the tree would
    // only cost fuel.
    std::mem::forget(state);
    Ok(out)
}
