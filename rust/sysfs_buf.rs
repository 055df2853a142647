// SPDX-License-Identifier: GPL-2.0

//! The buffer a sysfs `show` writes into (used by `rust/miscdev.rs` and
//! `rust/sysfs_dir.rs`). Include with
//! `#[path = ".../rust/sysfs_buf.rs"] pub mod sysfs_buf;`.

/// The buffer of a sysfs `show`: `write!` into it; output past its end is
/// cut.
pub struct SysfsBuf<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> SysfsBuf<'a> {
    /// An empty buffer over `buf` (sysfs gives a page).
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// The bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl core::fmt::Write for SysfsBuf<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}
