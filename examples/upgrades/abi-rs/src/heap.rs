//! A bump allocator for upgrade packages.
//!
//! Every sandbox call runs on a fresh instance that is thrown away after
//! it, so memory never needs to come back: allocation is a pointer bump,
//! freeing gives back only the most recent block, and growing the most
//! recent block (a `Vec` being filled) happens in place. Pages come from
//! `memory.grow` only, never from the space below the initial memory size,
//! so it also coexists with wasi-libc's malloc on `wasm32-wasi`.
//!
//! When `memory.grow` fails — the network's `memory_pages` limit
//! (`global.governance.limits.memory_pages`) is reached — it writes "out of
//! memory" to stderr and traps, which the executor classifies as
//! `memory_limit`, the same class a Go package gets.

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::UnsafeCell;

const PAGE: usize = 65536;
/// Pages asked for at least per `memory.grow` (1 MiB): fewer host calls.
const MIN_GROW_PAGES: usize = 16;

struct State {
    next: usize,  // first free byte of the current region
    end: usize,   // end of the current region
    top: usize,   // highest address ever handed out: memory above it is zero
    grown: usize, // pages obtained from memory.grow so far
}

/// The allocator; `synapse_abi` installs it as the global allocator.
pub struct Bump;

struct Cell(UnsafeCell<State>);

// wasm32 guests here are single-threaded.
unsafe impl Sync for Cell {}

static STATE: Cell = Cell(UnsafeCell::new(State { next: 0, end: 0, top: 0, grown: 0 }));

fn out_of_memory(pages: usize) -> ! {
    crate::write_stderr(b"out of memory: memory.grow(");
    crate::write_stderr(itoa(pages).as_slice());
    crate::write_stderr(b" pages) failed; the limit is global.governance.limits.memory_pages\n");
    wasm32::unreachable()
}

/// Decimal digits of n without allocating (the allocator cannot).
fn itoa(mut n: usize) -> Digits {
    let mut d = Digits { buf: [0; 20], start: 20 };
    loop {
        d.start -= 1;
        d.buf[d.start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return d;
        }
    }
}

struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    fn as_slice(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

impl State {
    /// Makes room for size bytes at alignment align and returns the block.
    unsafe fn bump(&mut self, size: usize, align: usize) -> *mut u8 {
        let start = (self.next + align - 1) & !(align - 1);
        let need = match start.checked_add(size) {
            Some(n) => n,
            None => out_of_memory(usize::MAX / PAGE),
        };
        if self.next == 0 || need > self.end {
            return self.grow(size, align);
        }
        self.next = need;
        start as *mut u8
    }

    /// Gets pages for a block that does not fit the current region: at
    /// least as many as the heap has already (so it grows geometrically and
    /// the host reallocates the linear memory a few times only), or just
    /// what the block needs when that much is not allowed.
    #[cold]
    unsafe fn grow(&mut self, size: usize, align: usize) -> *mut u8 {
        let want = (size + align + PAGE - 1) / PAGE;
        let mut pages = want.max(MIN_GROW_PAGES).max(self.grown);
        let mut old = wasm32::memory_grow(0, pages);
        if old == usize::MAX && pages > want {
            pages = want;
            old = wasm32::memory_grow(0, pages);
        }
        if old == usize::MAX {
            out_of_memory(pages);
        }
        self.grown += pages;
        let base = old * PAGE;
        if base == self.end && self.next != 0 {
            // Contiguous with the current region: extend it.
            self.end = base + pages * PAGE;
        } else {
            self.next = base;
            self.end = base + pages * PAGE;
        }
        self.bump(size, align)
    }
}

unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let st = &mut *STATE.0.get();
        let p = st.bump(layout.size(), layout.align());
        st.top = st.top.max(p as usize + layout.size());
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let st = &mut *STATE.0.get();
        let top = st.top;
        let p = st.bump(layout.size(), layout.align());
        let end = p as usize + layout.size();
        // Pages from memory.grow are zero; only reused bytes need clearing.
        if (p as usize) < top {
            core::ptr::write_bytes(p, 0, top.min(end) - p as usize);
        }
        st.top = top.max(end);
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let st = &mut *STATE.0.get();
        if ptr as usize + layout.size() == st.next {
            st.next = ptr as usize;
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let st = &mut *STATE.0.get();
        let p = ptr as usize;
        if p + layout.size() == st.next {
            // The most recent block: grow or shrink it in place.
            if let Some(end) = p.checked_add(new_size) {
                if end <= st.end {
                    st.next = end;
                    st.top = st.top.max(end);
                    return ptr;
                }
            }
            // Give it back first: when the region grows contiguously, the
            // new block starts at the same address and nothing moves.
            st.next = p;
        } else if new_size <= layout.size() {
            return ptr;
        }
        let new = self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
        if new != ptr {
            core::ptr::copy(ptr, new, layout.size().min(new_size));
        }
        new
    }
}
