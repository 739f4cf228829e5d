//! Test-only: does a secret survive in freed memory? While a [Watch] is armed, the unit
//! tests' global allocator scans every block as it is freed (a reallocation frees the old
//! block too) for the watch's canary, and counts the blocks that still held it. A buffer
//! that was wiped before it was freed holds zeros there.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

struct Scanning;

#[global_allocator]
static ALLOCATOR: Scanning = Scanning;

const MAX_CANARY: usize = 32;
static ARMED: AtomicBool = AtomicBool::new(false);
static HITS: AtomicUsize = AtomicUsize::new(0);
static CANARY_LEN: AtomicUsize = AtomicUsize::new(0);
static CANARY: [AtomicU8; MAX_CANARY] = [const { AtomicU8::new(0) }; MAX_CANARY];
/// One watch at a time.
static ONE: Mutex<()> = Mutex::new(());

fn scan(block: &[u8]) {
    let len = CANARY_LEN.load(Ordering::Acquire);
    if len == 0 || block.len() < len {
        return;
    }
    let mut needle = [0u8; MAX_CANARY];
    for (n, c) in needle.iter_mut().zip(CANARY.iter()).take(len) {
        *n = c.load(Ordering::Relaxed);
    }
    if block.windows(len).any(|w| w == &needle[..len]) {
        HITS.fetch_add(1, Ordering::AcqRel);
    }
}

// SAFETY: every call is passed on to the system allocator unchanged; `dealloc` only reads
// the block it is given before freeing it. `realloc` is the trait's default (allocate,
// copy, free), so the block it gives up goes through `dealloc` and is scanned.
unsafe impl GlobalAlloc for Scanning {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ARMED.load(Ordering::Acquire) {
            // SAFETY: `ptr` is a live block of `layout.size()` bytes until it is freed below.
            scan(unsafe { std::slice::from_raw_parts(ptr, layout.size()) });
        }
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// An armed watch for one canary.
pub struct Watch {
    canary: String,
    _one: MutexGuard<'static, ()>,
}

impl Watch {
    /// Arm a watch for a canary no other test uses.
    pub fn new() -> Watch {
        let one = ONE.lock().unwrap_or_else(|e| e.into_inner());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let canary = format!("wipecheck{nanos:09}x{:08}", std::process::id());
        for (slot, b) in CANARY.iter().zip(canary.bytes()) {
            slot.store(b, Ordering::Relaxed);
        }
        CANARY_LEN.store(canary.len(), Ordering::Release);
        HITS.store(0, Ordering::Release);
        ARMED.store(true, Ordering::Release);
        Watch { canary, _one: one }
    }

    pub fn canary(&self) -> &str {
        &self.canary
    }

    /// Disarm; how many freed blocks still held the canary.
    pub fn freed_copies(self) -> usize {
        ARMED.store(false, Ordering::Release);
        HITS.load(Ordering::Acquire)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        ARMED.store(false, Ordering::Release);
        CANARY_LEN.store(0, Ordering::Release);
    }
}

#[test]
fn the_watch_sees_an_unwiped_copy_and_not_a_wiped_one() {
    let watch = Watch::new();
    let copy = watch.canary().to_string();
    drop(copy);
    let mut wiped = watch.canary().to_string();
    zeroize::Zeroize::zeroize(&mut wiped);
    drop(wiped);
    assert_eq!(watch.freed_copies(), 1);
}
