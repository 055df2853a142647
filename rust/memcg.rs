// SPDX-License-Identifier: GPL-2.0

//! Memory cgroups (the Rust half; the C half is `rust/memcg_glue.c`): a
//! counted reference to a task's memory cgroup, taken where a user asks
//! for something (an `open()`), and memory charged to it later from any
//! task context, as sockets charge what they queue for a reader to the
//! cgroup of the task that made them.
//!
//! Include with `#[path = ".../rust/memcg.rs"] mod memcg;` next to `mod
//! bindings;`, and link `rust/memcg_glue.o` into the module (Kbuild).

use crate::bindings;
use core::ptr::NonNull;
use kernel::alloc::KVVec;
use kernel::prelude::*;

/// A reference to a memory cgroup.
///
/// # Invariants
///
/// `0` holds a reference from `rvio_memcg_current()`, dropped by `Drop`.
pub struct MemCg(NonNull<bindings::mem_cgroup>);

// SAFETY: a memory cgroup reference may be used and dropped on any thread
// (the cgroup core's css reference counting is atomic).
unsafe impl Send for MemCg {}
// SAFETY: `&MemCg` only reads the pointer (`alloc_bytes` passes it on).
unsafe impl Sync for MemCg {}

impl MemCg {
    /// The memory cgroup of the current task, if it has one (not a
    /// kernel thread, and memory cgroups are on). Process context.
    pub fn current() -> Option<Self> {
        // SAFETY: no precondition but process context (callers').
        let p = unsafe { bindings::rvio_memcg_current() };
        // INVARIANT: a non-NULL result is a reference we now hold.
        NonNull::new(p).map(Self)
    }

    /// An empty byte vector with room for `cap` bytes, charged to this
    /// cgroup: `ENOMEM` if there is no memory or the cgroup is at its
    /// limit (after one reclaim attempt; nobody is OOM-killed for it).
    /// Task context.
    pub fn alloc_bytes(&self, cap: usize) -> Result<KVVec<u8>> {
        if cap == 0 {
            return Ok(KVVec::new());
        }
        // SAFETY: `self.0` is a live reference (type invariant) for the
        // call; task context is the caller's.
        let p = unsafe { bindings::rvio_memcg_kvmalloc(self.0.as_ptr(), cap) };
        if p.is_null() {
            return Err(ENOMEM);
        }
        // SAFETY: `p` is a kvmalloc()ed block of `cap` bytes (kvrealloc()
        // and kvfree(), which `KVVec`'s allocator uses, take it), aligned
        // for `u8`, with nothing initialized: length 0.
        Ok(unsafe { KVVec::from_raw_parts(p.cast::<u8>(), 0, cap) })
    }
}

impl Drop for MemCg {
    fn drop(&mut self) {
        // SAFETY: by the type invariant we hold a reference; dropped once.
        unsafe { bindings::rvio_memcg_put(self.0.as_ptr()) };
    }
}
