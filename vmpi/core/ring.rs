// SPDX-License-Identifier: GPL-2.0

//! `Ring<T>`: the bounded FIFO of ports' receive queues, registrations'
//! backlogs and a device's send queue.

use kernel::alloc::KVVec;
use kernel::prelude::*;

/// A bounded FIFO that grows on demand up to its limit.
pub(crate) struct Ring<T> {
    slots: KVVec<Option<T>>,
    head: usize,
    count: usize,
    limit: usize,
}

impl<T> Ring<T> {
    /// An empty ring that will hold at most `limit` items (allocates
    /// nothing yet).
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            slots: KVVec::new(),
            head: 0,
            count: 0,
            limit,
        }
    }
    /// An empty ring with all its `limit` slots allocated: pushing into
    /// it never allocates (from any context).
    pub(crate) fn with_room(limit: usize) -> Result<Self> {
        let mut r = Self::new(limit);
        while r.slots.len() < limit {
            r.grow()?;
        }
        Ok(r)
    }
    pub(crate) fn len(&self) -> usize {
        self.count
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }
    pub(crate) fn grow(&mut self) -> Result {
        let cap = (self.slots.len() * 2).max(4).min(self.limit);
        let mut slots = KVVec::with_capacity(cap, GFP_KERNEL)?;
        while let Some(v) = self.pop() {
            slots.push(Some(v), GFP_KERNEL)?;
        }
        let count = slots.len();
        while slots.len() < cap {
            slots.push(None, GFP_KERNEL)?;
        }
        *self = Self {
            slots,
            head: 0,
            count,
            limit: self.limit,
        };
        Ok(())
    }
    /// The slot `k` places after the head (`k` at most the slots' number):
    /// no division (a `%` by a length that may be 0 brings a panic path
    /// objtool reports).
    fn slot(&self, k: usize) -> usize {
        let i = self.head + k;
        if i >= self.slots.len() {
            i - self.slots.len()
        } else {
            i
        }
    }
    /// Appends `v`; gives it back if the ring is at its limit or cannot
    /// grow.
    pub(crate) fn push(&mut self, v: T) -> core::result::Result<(), T> {
        if self.count == self.slots.len() && (self.count >= self.limit || self.grow().is_err()) {
            return Err(v);
        }
        let i = self.slot(self.count);
        self.slots[i] = Some(v);
        self.count += 1;
        Ok(())
    }
    /// Puts `v` back at the front (where [`Ring::pop`] took it from);
    /// gives it back if the ring is at its limit or cannot grow.
    pub(crate) fn push_front(&mut self, v: T) -> core::result::Result<(), T> {
        if self.count == self.slots.len() && (self.count >= self.limit || self.grow().is_err()) {
            return Err(v);
        }
        self.head = self.slot(self.slots.len() - 1);
        self.slots[self.head] = Some(v);
        self.count += 1;
        Ok(())
    }
    pub(crate) fn front(&self) -> Option<&T> {
        self.iter().next()
    }
    pub(crate) fn front_mut(&mut self) -> Option<&mut T> {
        if self.count == 0 {
            return None;
        }
        self.slots[self.head].as_mut()
    }
    pub(crate) fn pop(&mut self) -> Option<T> {
        if self.count == 0 {
            return None;
        }
        let v = self.slots[self.head].take();
        self.head = self.slot(1);
        self.count -= 1;
        v
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        (0..self.count).filter_map(move |k| self.slots[self.slot(k)].as_ref())
    }
    /// Keeps the items `keep` says yes to, in order.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let n = self.count;
        for _ in 0..n {
            if let Some(v) = self.pop() {
                if keep(&v) {
                    // Cannot fail: there is room for what was just popped.
                    let _ = self.push(v);
                }
            }
        }
    }
    pub(crate) fn clear(&mut self) {
        while self.pop().is_some() {}
    }
}
