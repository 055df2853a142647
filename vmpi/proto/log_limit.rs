// SPDX-License-Identifier: GPL-2.0

//! A bound on how often an event a peer can cause is logged.
//!
//! A guest that resets its device in a loop brings the link up each time;
//! one log line per link-up would let it flood the host's log. A
//! [`LogLimit`] lets a few lines through per window and counts the rest, so
//! the next line that gets through says how many were left out.

/// The state of one limited log line. Times are milliseconds from any
/// monotonic clock the caller reads.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogLimit {
    /// When the current window began.
    start_ms: u64,
    /// Lines let through in the current window.
    printed: u32,
    /// Lines left out since the last one let through.
    suppressed: u32,
}

impl LogLimit {
    /// Lines let through per window.
    pub const BURST: u32 = 5;
    /// The window's length.
    pub const WINDOW_MS: u64 = 60_000;

    /// A limit whose first window begins at the first event.
    pub const fn new() -> Self {
        Self {
            start_ms: 0,
            printed: 0,
            suppressed: 0,
        }
    }

    /// An event at `now_ms`: `Some(n)` if it is to be logged, `n` being how
    /// many events were left out before it; `None` if it is left out.
    pub fn event(&mut self, now_ms: u64) -> Option<u32> {
        if self.printed == 0 || now_ms.wrapping_sub(self.start_ms) >= Self::WINDOW_MS {
            self.start_ms = now_ms;
            self.printed = 0;
        }
        if self.printed == Self::BURST {
            self.suppressed = self.suppressed.saturating_add(1);
            return None;
        }
        self.printed += 1;
        Some(core::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_silence_then_a_count() {
        let mut l = LogLimit::new();
        for i in 0..LogLimit::BURST {
            assert_eq!(l.event(1000 + u64::from(i)), Some(0));
        }
        for i in 0..7 {
            assert_eq!(l.event(2000 + i), None);
        }
        // A window later: logged again, with the count of those left out.
        assert_eq!(l.event(1000 + LogLimit::WINDOW_MS), Some(7));
        assert_eq!(l.event(1001 + LogLimit::WINDOW_MS), Some(0));
    }

    #[test]
    fn slow_events_are_all_logged() {
        let mut l = LogLimit::new();
        for i in 0..100u64 {
            assert_eq!(l.event(i * LogLimit::WINDOW_MS / 2), Some(0));
        }
    }
}
