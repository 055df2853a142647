// SPDX-License-Identifier: GPL-2.0

//! The buffer a sysfs `show` writes into (used by `rust/miscdev.rs` and
//! `rust/sysfs_dir.rs`). Include with
//! `#[path = ".../rust/sysfs_buf.rs"] pub mod sysfs_buf;`.

/// The buffer of a sysfs `show`: `write!` into it; output past its end is
/// cut. A window of a longer text drops its first bytes too.
pub struct SysfsBuf<'a> {
    buf: &'a mut [u8],
    len: usize,
    /// Bytes still to drop before the window.
    skip: usize,
}

impl<'a> SysfsBuf<'a> {
    /// An empty buffer over `buf` (sysfs gives a page).
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self::window(buf, 0)
    }

    /// An empty buffer over `buf` that keeps the text written into it
    /// from offset `skip` on (one page of a large attribute).
    pub fn window(buf: &'a mut [u8], skip: usize) -> Self {
        Self { buf, len: 0, skip }
    }

    /// The bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the buffer is full: what is written after is cut.
    pub fn is_full(&self) -> bool {
        self.len == self.buf.len()
    }

    /// Drops `n` bytes of text without writing them, if they all fall
    /// before the window; otherwise (they must be written) `false`.
    pub fn skip(&mut self, n: usize) -> bool {
        if n > self.skip {
            return false;
        }
        self.skip -= n;
        true
    }
}

impl core::fmt::Write for SysfsBuf<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let dropped = self.skip.min(s.len());
        self.skip -= dropped;
        let b = &s.as_bytes()[dropped..];
        let n = b.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&b[..n]);
        self.len += n;
        Ok(())
    }
}
