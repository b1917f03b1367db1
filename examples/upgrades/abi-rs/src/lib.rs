//! Guest side of the synapse-p2p upgrade ABI for Rust packages
//! (docs/wasm-abi.md, docs/authoring.md); the Rust counterpart of the Go
//! `examples/upgrades/abi` package.
//!
//! - [`alloc`], [`input`] and [`pack`] move bytes between the host and the
//!   guest for the reactor ABI (`alloc`, `upgrade`, `get_upgrade_info`).
//! - [`fail`] ends the call with a message on stderr and a trap, which the
//!   executor reports as `trap` (or `memory_limit` when the message says
//!   "out of memory").
//! - [`heap`] is the global allocator: a bump allocator on pages from
//!   `memory.grow` (every call runs on a fresh instance, so nothing needs to
//!   be freed) that fails with "out of memory" when the network's
//!   `memory_pages` limit is reached.
//! - [`json`] reads and writes JSON exactly like Go's `encoding/json`
//!   (`Decoder.UseNumber` into `map[string]any`, then `Marshal`), so a Rust
//!   package produces the same bytes as its Go twin.
//!
//! It needs no crate but `std` and builds for `wasm32-unknown-unknown`
//! (reactor) and `wasm32-wasi` (command).

pub mod heap;
pub mod json;

use std::cell::Cell;

#[global_allocator]
static HEAP: heap::Bump = heap::Bump;

mod wasi {
    #[repr(C)]
    pub struct Ciovec {
        pub buf: *const u8,
        pub len: usize,
    }

    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        // The same declaration as std's for wasm32-wasi, so both link to
        // one import.
        pub fn fd_write(fd: i32, iovs: i32, iovs_len: i32, nwritten: i32) -> i32;
    }
}

/// Writes msg to the guest's stderr (fd 2) with WASI `fd_write`. The
/// executor returns the first 16 KiB of stderr in its error.
pub fn write_stderr(msg: &[u8]) {
    let mut rest = msg;
    while !rest.is_empty() {
        let iov = wasi::Ciovec { buf: rest.as_ptr(), len: rest.len() };
        let mut n: usize = 0;
        let errno = unsafe {
            wasi::fd_write(2, &iov as *const _ as i32, 1, &mut n as *mut usize as i32)
        };
        if errno != 0 || n == 0 {
            return;
        }
        rest = &rest[n.min(rest.len())..];
    }
}

/// Ends the call: writes msg and a newline to stderr, then traps. The
/// executor fails the upgrade with class `trap` and this message.
pub fn fail(msg: &str) -> ! {
    write_stderr(msg.as_bytes());
    write_stderr(b"\n");
    core::arch::wasm32::unreachable()
}

/// Reports panics on stderr before the trap. wasm32-unknown-unknown
/// discards std's panic message; call this at the start of each export
/// that may panic. (wasm32-wasi reports panics without it.)
pub fn report_panics() {
    #[cfg(not(target_os = "wasi"))]
    {
        static SET: std::sync::Once = std::sync::Once::new();
        SET.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                write_stderr(format!("panic: {info}\n").as_bytes());
            }))
        });
    }
}

// snippet:begin abi
thread_local! {
    // The last buffer handed out by alloc: input accepts only it.
    static LAST_ALLOC: Cell<(usize, usize)> = Cell::new((0, 0));
}

/// Returns a pointer to size writable bytes (at least 1) for the host.
/// Export it as `alloc`:
///
/// ```ignore
/// #[no_mangle]
/// pub extern "C" fn alloc(size: i32) -> i32 { synapse_abi::alloc(size) }
/// ```
pub fn alloc(size: i32) -> i32 {
    let size = if size <= 0 { 1 } else { size as usize };
    let buf = vec![0u8; size].leak();
    let p = buf.as_mut_ptr() as usize;
    LAST_ALLOC.with(|c| c.set((p, size)));
    p as i32
}

/// Returns the n bytes the host wrote at ptr, which must come from the
/// last [`alloc`]; anything else fails the call.
pub fn input(ptr: i32, n: i32) -> &'static [u8] {
    let (p, size) = LAST_ALLOC.with(|c| c.get());
    if p == 0 || ptr as usize != p || n < 0 || n as usize > size {
        fail("abi: input was not allocated with alloc");
    }
    LAST_ALLOC.with(|c| c.set((0, 0)));
    unsafe { std::slice::from_raw_parts(p as *const u8, n as usize) }
}

/// Keeps out alive for the host and returns `out_ptr<<32 | out_len`, the
/// result of `upgrade` and `get_upgrade_info`.
pub fn pack(out: Vec<u8>) -> i64 {
    if out.is_empty() {
        return 0;
    }
    let out = out.leak();
    ((out.as_ptr() as usize as i64) << 32) | out.len() as i64
}
// snippet:end abi
