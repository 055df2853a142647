// SPDX-License-Identifier: GPL-2.0

//! What the host's switch does with each frame and grant
//! (`docs/envelope.md` section 3), decided from the host's own table and
//! never from a netfront's: source check, VLAN isolation, the one
//! destination of an envelope, flooding; and the per-domain rate limit.

use super::table::{Route, Table};
use crate::line::Mac;

/// Where a frame entered the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// From a domain's netfront.
    Domain(u16),
    /// From the uplink, on this VLAN (its 802.1Q tag, 0 if untagged).
    Uplink(u16),
}

/// Why the switch dropped a frame or refused a grant (a counter each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The source MAC is not one of the sending domain's entries (or, from
    /// the uplink, it is a local domain's).
    BadSrc,
    /// A grant whose destination MAC is not `dest_domain`'s on the
    /// sender's VLAN, or is the sender's own.
    BadDest,
    /// The destination is on another VLAN.
    Vlan,
    /// The destination is where the frame came from.
    Loop,
    /// Over the sending domain's rate.
    Rate,
}

/// Number of [`DropReason`] values.
pub const DROP_REASONS: usize = 5;

impl DropReason {
    /// The name counters use.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::BadSrc => "bad_src",
            DropReason::BadDest => "bad_dest",
            DropReason::Vlan => "vlan",
            DropReason::Loop => "loop",
            DropReason::Rate => "rate",
        }
    }
}

/// Where a frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nowhere.
    Drop(DropReason),
    /// To this domain, in full (`FRAME`).
    Domain(u16),
    /// To the uplink, tagged with this VLAN unless 0.
    Uplink(u16),
    /// To every domain but the source with an entry on this VLAN
    /// ([`Table::on_vlan`]), and to the uplink unless it came from there.
    Flood(u16),
}

fn is_multicast(mac: &Mac) -> bool {
    mac[0] & 1 != 0
}

/// The VLAN of a frame from `src` with source MAC `src_mac`.
fn source_vlan(t: &Table, src: Source, src_mac: &Mac) -> Result<u16, DropReason> {
    let e = t.lookup(src_mac);
    match src {
        Source::Domain(d) => match e {
            Some(e) if e.domain == d => Ok(e.vlan),
            _ => Err(DropReason::BadSrc),
        },
        Source::Uplink(vlan) => match e {
            Some(_) => Err(DropReason::BadSrc),
            None => Ok(vlan),
        },
    }
}

/// A full frame from `src` to `dst` (its first 12 bytes: `dst`, `src_mac`).
pub fn switch_frame(t: &Table, src: Source, dst: &Mac, src_mac: &Mac) -> Action {
    let vlan = match source_vlan(t, src, src_mac) {
        Ok(v) => v,
        Err(r) => return Action::Drop(r),
    };
    if is_multicast(dst) {
        return Action::Flood(vlan);
    }
    let Some(e) = t.lookup(dst) else {
        return Action::Flood(vlan);
    };
    if e.vlan != vlan {
        return Action::Drop(DropReason::Vlan);
    }
    match (src, e.effective_route()) {
        (Source::Domain(d), _) if d == e.domain => Action::Drop(DropReason::Loop),
        (Source::Uplink(_), Route::Uplink) => Action::Drop(DropReason::Loop),
        (Source::Domain(_), Route::Uplink) => Action::Uplink(vlan),
        _ => Action::Domain(e.domain),
    }
}

/// A grant of domain `src` naming `dest_domain`, for a frame whose first
/// 12 bytes are `dst`, `src_mac`: the domain to send the envelope to, or
/// why not. The route of the destination's entry does not matter: a grant
/// in flight survives a route change.
pub fn switch_grant(
    t: &Table,
    src: u16,
    dest_domain: u16,
    dst: &Mac,
    src_mac: &Mac,
) -> Result<u16, DropReason> {
    let vlan = source_vlan(t, Source::Domain(src), src_mac)?;
    match t.lookup(dst) {
        Some(e) if e.domain == dest_domain && e.vlan == vlan && e.domain != src => Ok(dest_domain),
        _ => Err(DropReason::BadDest),
    }
}

/// A token bucket: `rate` bytes per second, holding at most one second's
/// worth.
#[derive(Debug, Clone, Copy, Default)]
pub struct RateLimit {
    rate: u64,
    tokens: u64,
    last: u64,
}

impl RateLimit {
    /// A limit of `rate` bytes per second (0: none), full.
    pub fn new(rate: u64, now: u64) -> Self {
        Self {
            rate,
            tokens: rate,
            last: now,
        }
    }

    /// Whether `len` bytes may pass at `now` (ns, monotonic); takes them.
    pub fn allow(&mut self, len: usize, now: u64) -> bool {
        if self.rate == 0 {
            return true;
        }
        let dt = now.saturating_sub(self.last);
        if dt > 0 {
            // A second or more refills the bucket; below that, `dt * rate`
            // fits in 64 bits for any rate up to 2^32 bytes per second
            // (no 128-bit division: the kernel has none).
            let add = if dt >= 1_000_000_000 {
                self.rate
            } else {
                dt.saturating_mul(self.rate) / 1_000_000_000
            };
            // Advance time only by what was credited, so that many short
            // intervals do not lose their fractions.
            if add > 0 {
                self.tokens = self.tokens.saturating_add(add).min(self.rate);
                self.last = now;
            }
        }
        if self.tokens >= len as u64 {
            self.tokens -= len as u64;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::parse_line;
    use super::*;

    fn mac(n: u8) -> Mac {
        [2, 0, 0, 0, 0, n]
    }

    const BCAST: Mac = [0xff; 6];

    fn table() -> Table {
        let mut t = Table::default();
        for l in [
            "02:00:00:00:00:01 domain=1 vlan=10",
            "02:00:00:00:00:11 domain=1 vlan=10",
            "02:00:00:00:00:02 domain=2 vlan=10",
            "02:00:00:00:00:03 domain=3 vlan=20",
            "02:00:00:00:00:04 domain=4 vlan=10 route=uplink",
        ] {
            t.apply(parse_line(l.as_bytes()).unwrap(), |_| true)
                .unwrap();
        }
        t
    }

    #[test]
    fn frames() {
        let t = table();
        let d = Source::Domain;
        assert_eq!(switch_frame(&t, d(1), &mac(2), &mac(1)), Action::Domain(2));
        assert_eq!(switch_frame(&t, d(2), &mac(1), &mac(2)), Action::Domain(1));
        assert_eq!(
            switch_frame(&t, d(1), &mac(3), &mac(1)),
            Action::Drop(DropReason::Vlan)
        );
        assert_eq!(
            switch_frame(&t, d(1), &mac(0x11), &mac(1)),
            Action::Drop(DropReason::Loop)
        );
        assert_eq!(switch_frame(&t, d(1), &mac(4), &mac(1)), Action::Uplink(10));
        assert_eq!(switch_frame(&t, d(1), &BCAST, &mac(1)), Action::Flood(10));
        assert_eq!(switch_frame(&t, d(3), &mac(99), &mac(3)), Action::Flood(20));
        // Spoofed sources: another domain's MAC, an unknown MAC.
        assert_eq!(
            switch_frame(&t, d(1), &mac(2), &mac(2)),
            Action::Drop(DropReason::BadSrc)
        );
        assert_eq!(
            switch_frame(&t, d(1), &mac(2), &mac(50)),
            Action::Drop(DropReason::BadSrc)
        );
        // From the uplink.
        let u = Source::Uplink;
        assert_eq!(
            switch_frame(&t, u(10), &mac(2), &mac(77)),
            Action::Domain(2)
        );
        assert_eq!(
            switch_frame(&t, u(0), &mac(2), &mac(77)),
            Action::Drop(DropReason::Vlan)
        );
        assert_eq!(
            switch_frame(&t, u(10), &mac(4), &mac(77)),
            Action::Drop(DropReason::Loop)
        );
        assert_eq!(
            switch_frame(&t, u(10), &mac(2), &mac(1)),
            Action::Drop(DropReason::BadSrc)
        );
        assert_eq!(switch_frame(&t, u(20), &BCAST, &mac(77)), Action::Flood(20));
        assert!(t.on_vlan(1, 10) && t.on_vlan(2, 10) && !t.on_vlan(3, 10));
    }

    #[test]
    fn grants_go_only_where_the_table_says() {
        let t = table();
        assert_eq!(switch_grant(&t, 1, 2, &mac(2), &mac(1)), Ok(2));
        // The sender lies about the destination domain...
        assert_eq!(
            switch_grant(&t, 1, 3, &mac(2), &mac(1)),
            Err(DropReason::BadDest)
        );
        // ...or grants across VLANs, to itself, to an unknown MAC, to broadcast.
        assert_eq!(
            switch_grant(&t, 1, 3, &mac(3), &mac(1)),
            Err(DropReason::BadDest)
        );
        assert_eq!(
            switch_grant(&t, 1, 1, &mac(0x11), &mac(1)),
            Err(DropReason::BadDest)
        );
        assert_eq!(
            switch_grant(&t, 1, 9, &mac(9), &mac(1)),
            Err(DropReason::BadDest)
        );
        assert_eq!(
            switch_grant(&t, 1, 2, &BCAST, &mac(1)),
            Err(DropReason::BadDest)
        );
        // ...or spoofs its source.
        assert_eq!(
            switch_grant(&t, 1, 2, &mac(2), &mac(3)),
            Err(DropReason::BadSrc)
        );
        // Whatever the route: a route change does not strand a grant.
        assert_eq!(switch_grant(&t, 1, 4, &mac(4), &mac(1)), Ok(4));
    }

    #[test]
    fn rate_limit() {
        let mut r = RateLimit::new(1000, 0);
        assert!(r.allow(600, 0));
        assert!(!r.allow(600, 0));
        assert!(!r.allow(600, 100_000_000)); // 100 bytes back: 500
        assert!(r.allow(500, 100_000_000));
        assert!(r.allow(1000, 10_000_000_000)); // capped at one second's worth
        assert!(!r.allow(1, 10_000_000_000));
        // Many 1-ns steps still add up.
        let mut r = RateLimit::new(1_000_000_000, 0);
        assert!(r.allow(1_000_000_000, 0));
        let mut ok = 0;
        for t in 1..=1000 {
            ok += r.allow(1, t) as u32;
        }
        assert_eq!(ok, 1000);
        let mut none = RateLimit::new(0, 0);
        assert!(none.allow(usize::MAX, 0));
    }
}
