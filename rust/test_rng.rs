// SPDX-License-Identifier: GPL-2.0

//! The reproducible randomness of the pure files' unit tests: xorshift64
//! (shifts 13, 7, 17). `rust/pure` includes it for `cargo test` only, as
//! `crate::test_rng`; the kernel modules never see it.

/// A xorshift64 generator from its seed (nonzero: 0 stays 0).
pub struct Rng(pub u64);

impl Rng {
    /// The next value.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// The next value modulo `n` (nonzero).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
