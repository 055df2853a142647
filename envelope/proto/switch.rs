// SPDX-License-Identifier: GPL-2.0

//! What the host's switch does with each frame and grant
//! (`docs/envelope.md` section 3), decided from the host's own table and
//! never from a netfront's: source check, VLAN tags and reserved
//! destinations refused, VLAN isolation, the one destination of an
//! envelope, flooding; and the per-domain rate limit.

use super::msg::{ETH_HLEN, MAX_FRAME};
use super::table::{Entry, Route, Slots, Table};
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
    /// The source MAC is not one of the sending domain's own entries (a
    /// `route=uplink` entry is a remote MAC, not the domain's); from the
    /// uplink, it is a local domain's, a remote MAC's on another VLAN, a
    /// multicast or the all-zero MAC.
    BadSrc,
    /// A grant whose destination MAC is not `dest_domain`'s on the
    /// sender's VLAN, is the sender's own, or is a remote (`uplink`) MAC.
    BadDest,
    /// The destination is on another VLAN.
    Vlan,
    /// The destination is where the frame came from.
    Loop,
    /// Over the sending domain's rate.
    Rate,
    /// From a domain, a frame with a VLAN tag (ethertype 0x8100, 0x88a8
    /// or 0x9100): a domain's logical network is its table entries'.
    Tagged,
    /// From a domain, to a link-local reserved multicast MAC
    /// (01:80:c2:00:00:00 to 0f: STP, pause, LACP, 802.1X...).
    Reserved,
}

/// Number of [`DropReason`] values.
pub const DROP_REASONS: usize = 7;

impl DropReason {
    /// Every reason, in counter order (`reason as usize`).
    pub const ALL: [DropReason; DROP_REASONS] = [
        DropReason::BadSrc,
        DropReason::BadDest,
        DropReason::Vlan,
        DropReason::Loop,
        DropReason::Rate,
        DropReason::Tagged,
        DropReason::Reserved,
    ];

    /// The name counters use.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::BadSrc => "bad_src",
            DropReason::BadDest => "bad_dest",
            DropReason::Vlan => "vlan",
            DropReason::Loop => "loop",
            DropReason::Rate => "rate",
            DropReason::Tagged => "tagged",
            DropReason::Reserved => "reserved",
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

/// 01:80:c2:00:00:00 to 01:80:c2:00:00:0f, which bridges do not forward.
fn is_link_local(mac: &Mac) -> bool {
    mac[..5] == [0x01, 0x80, 0xc2, 0, 0] && mac[5] <= 0x0f
}

/// The ethertypes of a VLAN tag: 802.1Q, 802.1ad, and the old QinQ.
fn is_vlan_tag(ethertype: u16) -> bool {
    matches!(ethertype, 0x8100 | 0x88a8 | 0x9100)
}

/// An entry of a MAC outside the host, reached through the uplink.
fn is_remote(e: &Entry) -> bool {
    e.effective_route() == Route::Uplink
}

/// The destination MAC, source MAC and ethertype of an Ethernet header.
fn split(hdr: &[u8; ETH_HLEN]) -> (Mac, Mac, u16) {
    let mut dst = [0u8; 6];
    let mut src = [0u8; 6];
    dst.copy_from_slice(&hdr[..6]);
    src.copy_from_slice(&hdr[6..12]);
    (dst, src, u16::from_be_bytes([hdr[12], hdr[13]]))
}

/// The VLAN of a frame from `src` with source MAC `src_mac`.
fn source_vlan<S: Slots>(t: &Table<S>, src: Source, src_mac: &Mac) -> Result<u16, DropReason> {
    let e = t.lookup(src_mac);
    match src {
        Source::Domain(d) => match e {
            Some(e) if e.domain == d && !is_remote(e) => Ok(e.vlan),
            _ => Err(DropReason::BadSrc),
        },
        Source::Uplink(vlan) => {
            if is_multicast(src_mac) || *src_mac == [0; 6] {
                return Err(DropReason::BadSrc);
            }
            match e {
                None => Ok(vlan),
                Some(e) if is_remote(e) && e.vlan == vlan => Ok(vlan),
                Some(_) => Err(DropReason::BadSrc),
            }
        }
    }
}

/// A full frame from `src` whose Ethernet header (its first 14 bytes:
/// destination MAC, source MAC, ethertype) is `hdr`. Checked in this
/// order: the source, then (from a domain) a VLAN tag and a reserved
/// destination, then the destination's entry.
pub fn switch_frame<S: Slots>(t: &Table<S>, src: Source, hdr: &[u8; ETH_HLEN]) -> Action {
    let (dst, src_mac, ethertype) = split(hdr);
    let vlan = match source_vlan(t, src, &src_mac) {
        Ok(v) => v,
        Err(r) => return Action::Drop(r),
    };
    if let Source::Domain(_) = src {
        if is_vlan_tag(ethertype) {
            return Action::Drop(DropReason::Tagged);
        }
        if is_link_local(&dst) {
            return Action::Drop(DropReason::Reserved);
        }
    }
    if is_multicast(&dst) {
        return Action::Flood(vlan);
    }
    let Some(e) = t.lookup(&dst) else {
        return Action::Flood(vlan);
    };
    if e.vlan != vlan {
        return Action::Drop(DropReason::Vlan);
    }
    match (src, e.effective_route()) {
        (Source::Domain(d), r) if d == e.domain && r != Route::Uplink => {
            Action::Drop(DropReason::Loop)
        }
        (Source::Uplink(_), Route::Uplink) => Action::Drop(DropReason::Loop),
        (Source::Domain(_), Route::Uplink) => Action::Uplink(vlan),
        _ => Action::Domain(e.domain),
    }
}

/// A grant of domain `src` naming `dest_domain`, for a frame whose
/// Ethernet header is `hdr`: the domain to send the envelope to, or why
/// not. The route of the destination's entry does not matter (a grant in
/// flight survives a route change), except that a remote (`uplink`) MAC
/// is no domain's.
pub fn switch_grant<S: Slots>(
    t: &Table<S>,
    src: u16,
    dest_domain: u16,
    hdr: &[u8; ETH_HLEN],
) -> Result<u16, DropReason> {
    let (dst, src_mac, ethertype) = split(hdr);
    let vlan = source_vlan(t, Source::Domain(src), &src_mac)?;
    if is_vlan_tag(ethertype) {
        return Err(DropReason::Tagged);
    }
    match t.lookup(&dst) {
        Some(e)
            if e.domain == dest_domain && e.vlan == vlan && e.domain != src && !is_remote(e) =>
        {
            Ok(dest_domain)
        }
        _ => Err(DropReason::BadDest),
    }
}

/// The ethertypes of ARP and of reverse ARP (RARP).
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_RARP: u16 = 0x8035;
/// An ARP or RARP body for IPv4 over Ethernet: htype, ptype, hlen, plen,
/// oper, then sender MAC and IPv4, target MAC and IPv4.
const ARP_LEN: usize = 28;

/// The MAC a frame announces, if it is an **announcement**: what a host
/// sends after it moved so that switches learn where its MAC is now
/// (the Solarflare accelerator's migration trigger). To the broadcast MAC,
/// untagged, with an IPv4-over-Ethernet body whose sender MAC is the
/// frame's source MAC, either
/// - a gratuitous ARP (ethertype 0x0806, request or reply) whose sender
///   IPv4 address is its target's and not 0 (an ARP probe, RFC 5227, has
///   sender 0 and announces nothing), as Linux sends it (`arping -U`, and
///   a guest's netdev after `NETDEV_NOTIFY_PEERS`), or
/// - a RARP "request reverse" (ethertype 0x8035, operation 3), as QEMU
///   sends it for each NIC after a migration (`qemu_announce_self`).
///
/// `None` for anything else, however malformed (this parses guest bytes).
pub fn announcement(frame: &[u8]) -> Option<Mac> {
    let hdr = <&[u8; ETH_HLEN]>::try_from(frame.get(..ETH_HLEN)?).ok()?;
    let body = frame.get(ETH_HLEN..ETH_HLEN + ARP_LEN)?;
    let (dst, src, ethertype) = split(hdr);
    let be16 = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
    // Ethernet (1), IPv4, 6-byte MACs, 4-byte addresses.
    if dst != [0xff; 6] || (be16(0), be16(2), body[4], body[5]) != (1, 0x0800, 6, 4) {
        return None;
    }
    if body[8..14] != src || is_multicast(&src) || src == [0; 6] {
        return None;
    }
    let (spa, tpa) = (&body[14..18], &body[24..28]);
    let ok = match (ethertype, be16(6)) {
        (ETH_P_ARP, 1 | 2) => spa == tpa && spa != [0; 4],
        (ETH_P_RARP, 3) => true,
        _ => false,
    };
    ok.then_some(src)
}

/// What each frame costs besides its bytes, so that a flood of tiny
/// frames is limited too (VMPI's credit charges 64 per SDU the same way).
pub const FRAME_COST: u64 = 64;
/// The smallest bucket: one largest frame and its cost fit whatever the
/// rate.
pub const MIN_BURST: u64 = MAX_FRAME as u64 + FRAME_COST;
const NS: u64 = 1_000_000_000;

/// A token bucket: `rate` bytes per second, holding at most
/// max(`rate`, [`MIN_BURST`]) bytes. Each frame costs its length plus
/// [`FRAME_COST`]; the switch charges each copy it makes (every copy of
/// a flooded frame).
#[derive(Debug, Clone, Copy, Default)]
pub struct RateLimit {
    rate: u64,
    cap: u64,
    tokens: u64,
    /// Fractions of a token (in bytes * ns / s) not credited yet.
    frac: u64,
    last: u64,
}

impl RateLimit {
    /// A limit of `rate` bytes per second (0: none), full.
    pub fn new(rate: u32, now: u64) -> Self {
        let rate = u64::from(rate);
        let cap = rate.max(MIN_BURST);
        Self {
            rate,
            cap,
            tokens: cap,
            frac: 0,
            last: now,
        }
    }

    /// Whether a frame of `len` bytes may pass at `now` (ns, monotonic);
    /// takes its cost.
    pub fn allow(&mut self, len: usize, now: u64) -> bool {
        if self.rate == 0 {
            return true;
        }
        if now > self.last {
            let dt = now - self.last;
            self.last = now;
            // Whole seconds, then the rest: `rest * rate` fits in 64 bits
            // for any 32-bit rate (no 128-bit division: the kernel has
            // none), and what it leaves below a token is kept.
            let whole = (dt / NS).saturating_mul(self.rate);
            let part = (dt % NS) * self.rate + self.frac;
            self.frac = part % NS;
            self.tokens = self.tokens.saturating_add(whole).saturating_add(part / NS);
            if self.tokens >= self.cap {
                self.tokens = self.cap;
                self.frac = 0;
            }
        }
        let cost = (len as u64).saturating_add(FRAME_COST);
        if self.tokens >= cost {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }

    /// Gives back what [`RateLimit::allow`] took for a frame of `len`
    /// bytes that did not go after all (an envelope the destination could
    /// not be sent: the sender sends the frame again, charged then).
    pub fn refund(&mut self, len: usize) {
        if self.rate != 0 {
            let cost = (len as u64).saturating_add(FRAME_COST);
            self.tokens = self.tokens.saturating_add(cost).min(self.cap);
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::table::parse_line;
    use super::*;
    use std::vec::Vec;

    #[test]
    fn a_refund_gives_back_what_allow_took() {
        let mut r = RateLimit::new(1000, 0);
        let big = (MIN_BURST - FRAME_COST) as usize;
        assert!(r.allow(big, 0));
        assert!(!r.allow(big, 0), "the bucket is empty");
        r.refund(big);
        assert!(r.allow(big, 0), "the refund refilled it");
        r.refund(big);
        r.refund(big);
        assert!(r.allow(big, 0) && !r.allow(big, 0), "never above the cap");
        let mut none = RateLimit::new(0, 0);
        none.refund(10);
        assert!(none.allow(usize::MAX, 0));
    }

    fn mac(n: u8) -> Mac {
        [2, 0, 0, 0, 0, n]
    }

    const BCAST: Mac = [0xff; 6];
    const IPV4: u16 = 0x0800;

    /// An Ethernet header.
    fn eth(dst: &Mac, src: &Mac, ethertype: u16) -> [u8; ETH_HLEN] {
        let mut h = [0u8; ETH_HLEN];
        h[..6].copy_from_slice(dst);
        h[6..12].copy_from_slice(src);
        h[12..].copy_from_slice(&ethertype.to_be_bytes());
        h
    }

    fn frame(t: &Table<Vec<Entry>>, src: Source, dst: &Mac, src_mac: &Mac) -> Action {
        switch_frame(t, src, &eth(dst, src_mac, IPV4))
    }

    fn grant(
        t: &Table<Vec<Entry>>,
        src: u16,
        dest: u16,
        dst: &Mac,
        src_mac: &Mac,
    ) -> Result<u16, DropReason> {
        switch_grant(t, src, dest, &eth(dst, src_mac, IPV4))
    }

    fn table() -> Table<Vec<Entry>> {
        let mut t = Table::new(
            1,
            std::vec![Entry::default(); super::super::table::MAX_ENTRIES],
        );
        for l in [
            "02:00:00:00:00:01 domain=1 vlan=10",
            "02:00:00:00:00:11 domain=1 vlan=10",
            "02:00:00:00:00:02 domain=2 vlan=10",
            "02:00:00:00:00:03 domain=3 vlan=20",
            "02:00:00:00:00:04 domain=4 vlan=10 route=uplink",
            "02:00:00:00:00:05 domain=4 vlan=10 route=copy",
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
        assert_eq!(frame(&t, d(1), &mac(2), &mac(1)), Action::Domain(2));
        assert_eq!(frame(&t, d(2), &mac(1), &mac(2)), Action::Domain(1));
        assert_eq!(
            frame(&t, d(1), &mac(3), &mac(1)),
            Action::Drop(DropReason::Vlan)
        );
        assert_eq!(
            frame(&t, d(1), &mac(0x11), &mac(1)),
            Action::Drop(DropReason::Loop)
        );
        assert_eq!(frame(&t, d(1), &mac(4), &mac(1)), Action::Uplink(10));
        assert_eq!(frame(&t, d(1), &BCAST, &mac(1)), Action::Flood(10));
        assert_eq!(frame(&t, d(3), &mac(99), &mac(3)), Action::Flood(20));
        // Spoofed sources: another domain's MAC, an unknown MAC.
        assert_eq!(
            frame(&t, d(1), &mac(2), &mac(2)),
            Action::Drop(DropReason::BadSrc)
        );
        assert_eq!(
            frame(&t, d(1), &mac(2), &mac(50)),
            Action::Drop(DropReason::BadSrc)
        );
        // From the uplink.
        let u = Source::Uplink;
        assert_eq!(frame(&t, u(10), &mac(2), &mac(77)), Action::Domain(2));
        assert_eq!(
            frame(&t, u(0), &mac(2), &mac(77)),
            Action::Drop(DropReason::Vlan)
        );
        assert_eq!(
            frame(&t, u(10), &mac(4), &mac(77)),
            Action::Drop(DropReason::Loop)
        );
        assert_eq!(
            frame(&t, u(10), &mac(2), &mac(1)),
            Action::Drop(DropReason::BadSrc)
        );
        assert_eq!(frame(&t, u(20), &BCAST, &mac(77)), Action::Flood(20));
        assert!(t.on_vlan(1, 10) && t.on_vlan(2, 10) && !t.on_vlan(3, 10));
    }

    #[test]
    fn uplink_entries_are_remote_macs() {
        let t = table();
        let (d, u) = (Source::Domain, Source::Uplink);
        // Domain 4 may not send as the remote MAC its entry names...
        assert_eq!(
            frame(&t, d(4), &mac(2), &mac(4)),
            Action::Drop(DropReason::BadSrc)
        );
        assert_eq!(grant(&t, 4, 2, &mac(2), &mac(4)), Err(DropReason::BadSrc));
        // ...while its own MAC is its, and a frame to its remote MAC goes
        // to the uplink, not back as a loop.
        assert_eq!(frame(&t, d(4), &mac(2), &mac(5)), Action::Domain(2));
        assert_eq!(frame(&t, d(4), &mac(4), &mac(5)), Action::Uplink(10));
        // From the uplink the remote MAC is a good source, on its VLAN.
        assert_eq!(frame(&t, u(10), &mac(2), &mac(4)), Action::Domain(2));
        assert_eq!(
            frame(&t, u(20), &mac(3), &mac(4)),
            Action::Drop(DropReason::BadSrc)
        );
        assert_eq!(frame(&t, u(10), &BCAST, &mac(4)), Action::Flood(10));
        // From the uplink to it: a loop.
        assert_eq!(
            frame(&t, u(10), &mac(4), &mac(77)),
            Action::Drop(DropReason::Loop)
        );
        // No grant goes to it.
        assert_eq!(grant(&t, 1, 4, &mac(4), &mac(1)), Err(DropReason::BadDest));
    }

    #[test]
    fn tags_and_reserved_destinations_from_a_domain() {
        let t = table();
        let (d, u) = (Source::Domain, Source::Uplink);
        for tag in [0x8100, 0x88a8, 0x9100] {
            let h = eth(&mac(2), &mac(1), tag);
            assert_eq!(switch_frame(&t, d(1), &h), Action::Drop(DropReason::Tagged));
            assert_eq!(switch_grant(&t, 1, 2, &h), Err(DropReason::Tagged));
        }
        // IPv6, ARP: fine.
        for et in [0x86dd, 0x0806] {
            let h = eth(&mac(2), &mac(1), et);
            assert_eq!(switch_frame(&t, d(1), &h), Action::Domain(2));
        }
        // A spoofed source is counted as such first.
        let h = eth(&mac(2), &mac(2), 0x8100);
        assert_eq!(switch_frame(&t, d(1), &h), Action::Drop(DropReason::BadSrc));
        for last in [0x00, 0x01, 0x02, 0x03, 0x0e, 0x0f] {
            let dst = [0x01, 0x80, 0xc2, 0, 0, last];
            assert_eq!(
                frame(&t, d(1), &dst, &mac(1)),
                Action::Drop(DropReason::Reserved)
            );
        }
        let dst = [0x01, 0x80, 0xc2, 0, 0, 0x10];
        assert_eq!(frame(&t, d(1), &dst, &mac(1)), Action::Flood(10));
        // From the uplink: a multicast or zero source is refused.
        assert_eq!(
            frame(&t, u(10), &mac(2), &BCAST),
            Action::Drop(DropReason::BadSrc)
        );
        assert_eq!(
            frame(&t, u(10), &mac(2), &[0x01, 0, 0x5e, 0, 0, 1]),
            Action::Drop(DropReason::BadSrc)
        );
        assert_eq!(
            frame(&t, u(10), &mac(2), &[0; 6]),
            Action::Drop(DropReason::BadSrc)
        );
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        assert_eq!(DropReason::Tagged.name(), "tagged");
        assert_eq!(DropReason::Reserved.name(), "reserved");
    }

    #[test]
    fn grants_go_only_where_the_table_says() {
        let t = table();
        assert_eq!(grant(&t, 1, 2, &mac(2), &mac(1)), Ok(2));
        // The sender lies about the destination domain...
        assert_eq!(grant(&t, 1, 3, &mac(2), &mac(1)), Err(DropReason::BadDest));
        // ...or grants across VLANs, to itself, to an unknown MAC, to broadcast.
        assert_eq!(grant(&t, 1, 3, &mac(3), &mac(1)), Err(DropReason::BadDest));
        assert_eq!(
            grant(&t, 1, 1, &mac(0x11), &mac(1)),
            Err(DropReason::BadDest)
        );
        assert_eq!(grant(&t, 1, 9, &mac(9), &mac(1)), Err(DropReason::BadDest));
        assert_eq!(grant(&t, 1, 2, &BCAST, &mac(1)), Err(DropReason::BadDest));
        // ...or spoofs its source.
        assert_eq!(grant(&t, 1, 2, &mac(2), &mac(3)), Err(DropReason::BadSrc));
        // Whatever the route of a domain's MAC: a route change does not
        // strand a grant.
        assert_eq!(grant(&t, 1, 4, &mac(5), &mac(1)), Ok(4));
    }

    #[test]
    fn rate_limit() {
        // The largest frame passes a full bucket whatever the rate.
        assert!(RateLimit::new(1, 0).allow(MAX_FRAME, 0));
        let mut r = RateLimit::new(1000, 0);
        // The bucket holds MIN_BURST bytes whatever the rate: a frame
        // larger than a second's worth passes.
        assert!(r.allow(9000, 0));
        assert!(r.allow(MIN_BURST as usize - 9000 - 2 * FRAME_COST as usize, 0));
        assert!(!r.allow(0, 0)); // the per-frame cost
                                 // 100 ms: 100 bytes back, just a 36-byte frame.
        assert!(!r.allow(37, 100_000_000));
        assert!(r.allow(36, 100_000_000));
        // Capped at the bucket.
        assert!(r.allow(MAX_FRAME, 1_000_000_000_000));
        assert!(!r.allow(0, 1_000_000_000_000));
        // A large rate: one second's worth.
        let mut r = RateLimit::new(1_000_000, 0);
        assert!(r.allow(1_000_000 - FRAME_COST as usize, 0));
        assert!(!r.allow(0, 0));
        let mut none = RateLimit::new(0, 0);
        assert!(none.allow(usize::MAX, 0));
    }

    #[test]
    fn rate_limit_keeps_fractions() {
        // 1000 bytes per second in steps of 1.5 ms: 1.5 bytes a step.
        let mut r = RateLimit::new(1000, 0);
        assert!(r.allow(MAX_FRAME, 0));
        let mut now = 0;
        for _ in 0..1000 {
            now += 1_500_000;
            assert!(!r.allow(usize::MAX, now));
        }
        // 1.5 s: 1500 bytes, not 1000.
        assert!(r.allow(1500 - FRAME_COST as usize, now));
        assert!(!r.allow(0, now));
        // Many 1-ns steps of 0.3 bytes each add up too: 6400 ns, 1920
        // bytes, 30 empty frames.
        let mut r = RateLimit::new(300_000_000, 0);
        assert!(r.allow(300_000_000 - FRAME_COST as usize, 0));
        let mut ok = 0;
        for t in 1..=6400 {
            ok += r.allow(0, t) as u32;
        }
        assert_eq!(ok, 30);
        // Time going back changes nothing.
        assert!(!r.allow(0, 0));
    }

    /// A gratuitous ARP (`op` 1 or 2) or RARP (`op` 3, with `ethertype`
    /// 0x8035) from `src` announcing `ip`.
    fn announce(ethertype: u16, op: u16, src: &Mac, sha: &Mac, ip: [u8; 4]) -> Vec<u8> {
        let mut f = eth(&BCAST, src, ethertype).to_vec();
        f.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
        f.extend_from_slice(&op.to_be_bytes());
        f.extend_from_slice(sha);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&ip);
        // Padded to 60 bytes, as on the wire.
        f.resize(60, 0);
        f
    }

    #[test]
    fn announcements_are_gratuitous_arps_and_rarps_only() {
        let (m, ip) = (mac(1), [10, 0, 0, 1]);
        let arp = |op, sha: &Mac, ip| announce(0x0806, op, &m, sha, ip);
        assert_eq!(announcement(&arp(1, &m, ip)), Some(m));
        assert_eq!(announcement(&arp(2, &m, ip)), Some(m));
        assert_eq!(announcement(&announce(0x8035, 3, &m, &m, [0; 4])), Some(m));
        // Exactly the 42 bytes of header and body suffice; fewer do not.
        assert_eq!(announcement(&arp(1, &m, ip)[..42]), Some(m));
        for n in 0..42 {
            assert_eq!(announcement(&arp(1, &m, ip)[..n]), None, "{n} bytes");
        }
        // A probe (sender 0), a sender MAC that is not the source, an
        // ordinary request, a RARP reply, another operation.
        assert_eq!(announcement(&arp(1, &m, [0; 4])), None);
        assert_eq!(announcement(&arp(1, &mac(2), ip)), None);
        let mut req = arp(1, &m, ip);
        req[41] = 9;
        assert_eq!(announcement(&req), None);
        assert_eq!(announcement(&announce(0x8035, 4, &m, &m, [0; 4])), None);
        assert_eq!(announcement(&arp(3, &m, ip)), None);
        // Not to the broadcast MAC, tagged, not IPv4 over Ethernet.
        let mut f = arp(1, &m, ip);
        f[0] = 2;
        assert_eq!(announcement(&f), None);
        let mut f = arp(1, &m, ip);
        f[12..14].copy_from_slice(&[0x81, 0]);
        assert_eq!(announcement(&f), None);
        for (at, v) in [(15, 6), (17, 0xdd), (18, 8), (19, 16)] {
            let mut f = arp(1, &m, ip);
            f[at] = v;
            assert_eq!(announcement(&f), None, "byte {at} = {v}");
        }
        // A multicast or zero source announces nothing.
        let b = [1, 0, 0x5e, 0, 0, 1];
        assert_eq!(announcement(&announce(0x0806, 1, &b, &b, ip)), None);
        assert_eq!(
            announcement(&announce(0x0806, 1, &[0; 6], &[0; 6], ip)),
            None
        );
    }
}
