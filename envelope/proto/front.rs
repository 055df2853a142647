// SPDX-License-Identifier: GPL-2.0

//! The netfront's pure parts: the lines users write to its `attach` file
//! (`docs/envelope.md` section 6: make an interface over a guest-side
//! VMPI device), its bound on the grants out ([`GrantShares`], section
//! 2), and the frames that wait for a grant to their destination
//! ([`Parked`]).

use core::sync::atomic::{AtomicU32, Ordering};

use super::domain::DevName;
use super::msg::MAX_FRAME;
use crate::line::{exactly, words, IfName, ParseError};

/// Buckets of destinations in [`GrantShares`] and [`Parked`].
pub const SHARE_BUCKETS: usize = 64;

/// The bucket of destination domain `dest`.
fn share_bucket(dest: u16) -> usize {
    usize::from(dest) % SHARE_BUCKETS
}

/// Why [`GrantShares::take`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharesFull {
    /// As many grants out as the interface may have.
    Total,
    /// As many out to this destination as one destination may hold.
    Share,
}

/// The grants an interface has out: at most `max_total` in all, and at
/// most `max_share` to one destination (counted by bucket: domain ids
/// equal modulo [`SHARE_BUCKETS`] share one), so that a destination that
/// holds its grants until they time out (hostile, hung) cannot take the
/// grants the traffic to every other destination needs. Lock-free: any
/// context, from several CPUs at once.
pub struct GrantShares {
    max_total: u32,
    max_share: u32,
    total: AtomicU32,
    buckets: [AtomicU32; SHARE_BUCKETS],
}

impl GrantShares {
    /// No grant out.
    pub fn new(max_total: u32, max_share: u32) -> Self {
        Self {
            max_total,
            max_share,
            total: AtomicU32::new(0),
            buckets: [const { AtomicU32::new(0) }; SHARE_BUCKETS],
        }
    }

    fn bucket(&self, dest: u16) -> &AtomicU32 {
        &self.buckets[share_bucket(dest)]
    }

    /// Counts one grant to `dest` out, if the bounds allow (checked by the
    /// counts taken, so two takers at once never pass a bound together).
    pub fn take(&self, dest: u16) -> Result<(), SharesFull> {
        if self.total.fetch_add(1, Ordering::AcqRel) >= self.max_total {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(SharesFull::Total);
        }
        let b = self.bucket(dest);
        if b.fetch_add(1, Ordering::AcqRel) >= self.max_share {
            b.fetch_sub(1, Ordering::AcqRel);
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(SharesFull::Share);
        }
        Ok(())
    }

    /// A grant to `dest` that [`GrantShares::take`] counted is over.
    pub fn put(&self, dest: u16) {
        self.bucket(dest).fetch_sub(1, Ordering::AcqRel);
        self.total.fetch_sub(1, Ordering::AcqRel);
    }

    /// Grants out.
    pub fn out(&self) -> u32 {
        self.total.load(Ordering::Acquire)
    }

    /// Grants out to `dest`'s bucket.
    pub fn out_to(&self, dest: u16) -> u32 {
        self.bucket(dest).load(Ordering::Acquire)
    }
}

/// The order of the frames that wait for a grant to their destination,
/// oldest first: at most `N` (`N` <= 256), and at most `N / 2` to one
/// destination (by the buckets of [`GrantShares`]), so that a destination
/// that never copies cannot hold the places the others need. The frames
/// themselves are the caller's, kept by slot number (`0..N`).
///
/// A frame to a destination whose grants are all out waits rather than go
/// as a `FRAME`: a `FRAME` takes fewer hand-offs than an envelope and
/// would overtake the frames granted before it (TCP counts that as
/// reordering, and retransmits). Frames of one bucket leave in the order
/// they came; a frame to a bucket with frames waiting waits behind them
/// ([`Parked::waiting`]). The caller serialises the calls.
pub struct Parked<const N: usize> {
    /// Destination and slot of each waiting frame, oldest first.
    order: [(u16, u8); N],
    len: usize,
    /// Free slots: `free[..nfree]`.
    free: [u8; N],
    nfree: usize,
    /// Frames waiting, by bucket.
    per_bucket: [u8; SHARE_BUCKETS],
}

impl<const N: usize> Default for Parked<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Parked<N> {
    const OK: () = assert!(N >= 2 && N <= 256, "slots are numbered in a u8");

    /// No frame waiting.
    pub fn new() -> Self {
        let () = Self::OK;
        let mut free = [0u8; N];
        let mut i = 0;
        while i < N {
            // `N` <= 256: the slot numbers fit.
            free[i] = (N - 1 - i) as u8;
            i += 1;
        }
        Self {
            order: [(0, 0); N],
            len: 0,
            free,
            nfree: N,
            per_bucket: [0; SHARE_BUCKETS],
        }
    }

    /// Frames waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No frame waiting.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether frames to `dest`'s bucket wait: a frame to `dest` must
    /// wait behind them.
    pub fn waiting(&self, dest: u16) -> bool {
        self.per_bucket[share_bucket(dest)] != 0
    }

    /// A place for a frame to `dest`, behind every frame before it: the
    /// slot to keep it by, or `None` if `N` wait, or `N / 2` to `dest`'s
    /// bucket.
    pub fn push(&mut self, dest: u16) -> Option<usize> {
        let b = share_bucket(dest);
        if self.nfree == 0 || self.len == N || usize::from(self.per_bucket[b]) >= N / 2 {
            return None;
        }
        self.nfree -= 1;
        let slot = self.free[self.nfree];
        self.order[self.len] = (dest, slot);
        self.len += 1;
        self.per_bucket[b] += 1;
        Some(usize::from(slot))
    }

    /// Offers the waiting frames to `go` (destination, slot), oldest
    /// first. `go` takes one (`true`: its slot is free again) or leaves it
    /// (`false`): it stays in its place, and the frames behind it to the
    /// same bucket are not offered this time (a bucket's frames leave in
    /// order).
    pub fn release(&mut self, mut go: impl FnMut(u16, usize) -> bool) {
        let mut blocked = [false; SHARE_BUCKETS];
        let mut kept = 0;
        for i in 0..self.len {
            let (dest, slot) = self.order[i];
            let b = share_bucket(dest);
            if !blocked[b] && go(dest, usize::from(slot)) {
                self.per_bucket[b] -= 1;
                self.free[self.nfree] = slot;
                self.nfree += 1;
            } else {
                blocked[b] = true;
                self.order[kept] = (dest, slot);
                kept += 1;
            }
        }
        self.len = kept;
    }

    /// Hands every waiting frame's destination and slot to `f`, oldest
    /// first, and forgets them (the interface stops).
    pub fn drain(&mut self, mut f: impl FnMut(u16, usize)) {
        self.release(|dest, slot| {
            f(dest, slot);
            true
        });
    }
}

/// The most buffers a netfront keeps posted (the device holds
/// `MAX_POSTED`).
pub const POSTED_LIMIT: u8 = 64;

/// A write to `attach`: `DEV [name=IFNAME] [posted=N] [inline=BYTES]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachCmd {
    /// The virtio device of the guest's VMPI device (`virtioN`).
    pub dev: DevName,
    /// The interface's name; `None`: `env%d`.
    pub name: Option<IfName>,
    /// Buffers to keep posted for frames the host delivers (0 to
    /// [`POSTED_LIMIT`]; 0: every frame by `ENVELOPE`); `None`: the
    /// default.
    pub posted: Option<u8>,
    /// Frames to envelope routes of at most this many bytes go inline,
    /// as `FRAME`s (0 to [`MAX_FRAME`]; 0: none); `None`: the default.
    pub inline: Option<u32>,
}

/// Parses one line written to `attach`.
pub fn parse_attach_line(b: &[u8]) -> Result<AttachCmd, ParseError> {
    let mut w = words(b)?;
    let dev = DevName::new(w.next().ok_or(ParseError::Words)?.as_bytes())?;
    let mut name = None;
    let mut posted = None;
    let mut inline = None;
    for kv in w {
        match kv.split_once('=') {
            Some(("posted", v)) if posted.is_none() => {
                let n = v.parse::<u8>().map_err(|_| ParseError::Number)?;
                if n > POSTED_LIMIT {
                    return Err(ParseError::Number);
                }
                posted = Some(n);
            }
            Some(("inline", v)) if inline.is_none() => {
                let n = v.parse::<u32>().map_err(|_| ParseError::Number)?;
                if n as usize > MAX_FRAME {
                    return Err(ParseError::Number);
                }
                inline = Some(n);
            }
            Some(("name", v)) if name.is_none() => {
                if v.contains('%') {
                    return Err(ParseError::IfName);
                }
                name = Some(IfName::new(v.as_bytes())?)
            }
            _ => return Err(ParseError::Key),
        }
    }
    Ok(AttachCmd {
        dev,
        name,
        posted,
        inline,
    })
}

/// A write to `vf`: `IFNAME VF`, `IFNAME auto` or `IFNAME -`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VfCmd {
    /// The netfront's interface.
    pub ifname: IfName,
    /// What to do with its VF.
    pub vf: VfArg,
}

/// What a write to `vf` does with the netfront's VF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VfArg {
    /// Take this interface as its VF.
    Take(IfName),
    /// Take any interface of its namespace with its MAC, now and whenever
    /// one appears (`auto`).
    Auto,
    /// Let its VF go, and end `Auto` (`-`).
    Release,
}

/// Parses one line written to `vf`.
pub fn parse_vf_line(b: &[u8]) -> Result<VfCmd, ParseError> {
    let [ifname, vf] = exactly::<2>(b)?;
    Ok(VfCmd {
        ifname: IfName::new(ifname.as_bytes())?,
        vf: match vf {
            "-" => VfArg::Release,
            "auto" => VfArg::Auto,
            v => VfArg::Take(IfName::new(v.as_bytes())?),
        },
    })
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::vec::Vec;

    #[test]
    fn vf_lines() {
        let c = parse_vf_line(b"ef1 eth1\n").unwrap();
        assert_eq!(c.ifname.as_bytes(), b"ef1");
        assert!(matches!(c.vf, VfArg::Take(n) if n.as_bytes() == b"eth1"));
        assert_eq!(parse_vf_line(b"  ef1   -  ").unwrap().vf, VfArg::Release);
        assert_eq!(parse_vf_line(b"ef1 auto").unwrap().vf, VfArg::Auto);
        for bad in [
            &b""[..],
            b"ef1",
            b"ef1 eth1 eth2",
            b"ef1 a/b",
            b"a:b eth1",
            b"ef1 0123456789abcdef",
            b"ef1 eth1\neth2",
            b"ef1 eth\x001",
        ] {
            assert!(parse_vf_line(bad).is_err(), "{:?}", bad);
        }
    }

    #[test]
    fn attach_lines() {
        let c = parse_attach_line(b"virtio3 name=ef1\n").unwrap();
        assert_eq!(c.dev.as_bytes(), b"virtio3");
        assert_eq!(c.name.unwrap().as_bytes(), b"ef1");
        assert_eq!(parse_attach_line(b"virtio3").unwrap().name, None);
        assert_eq!(parse_attach_line(b"virtio3").unwrap().posted, None);
        let c = parse_attach_line(b"virtio3 posted=0 name=ef1").unwrap();
        assert_eq!(
            (c.posted, c.name.map(|n| n.as_bytes() == b"ef1")),
            (Some(0), Some(true))
        );
        assert_eq!(
            parse_attach_line(b"virtio3 posted=64").unwrap().posted,
            Some(64)
        );
        assert_eq!(parse_attach_line(b"virtio3").unwrap().inline, None);
        let c = parse_attach_line(b"virtio3 inline=0 posted=2").unwrap();
        assert_eq!((c.inline, c.posted), (Some(0), Some(2)));
        assert_eq!(
            parse_attach_line(b"virtio3 inline=65519").unwrap().inline,
            Some(65519)
        );
        for bad in [
            &b""[..],
            b"virtio3 name=",
            b"virtio3 name=a/b",
            b"virtio3 name=e%d",
            b"virtio3 name=a name=b",
            b"virtio3 x=1",
            b"virtio3 posted=65",
            b"virtio3 posted=-1",
            b"virtio3 posted=",
            b"virtio3 posted=1 posted=2",
            b"virtio3 inline=65520",
            b"virtio3 inline=-1",
            b"virtio3 inline=1 inline=2",
            b"virtio3 name=0123456789abcdef",
        ] {
            assert!(parse_attach_line(bad).is_err(), "{:?}", bad);
        }
    }

    #[test]
    fn a_destination_holds_at_most_its_share() {
        let g = GrantShares::new(8, 3);
        for _ in 0..3 {
            assert_eq!(g.take(2), Ok(()));
        }
        // Destination 2 is at its share; 66 shares its bucket.
        assert_eq!(g.take(2), Err(SharesFull::Share));
        assert_eq!(g.take(2 + SHARE_BUCKETS as u16), Err(SharesFull::Share));
        // Others still get grants, up to the total.
        for d in [3, 3, 3, 4, 4] {
            assert_eq!(g.take(d), Ok(()));
        }
        assert_eq!(g.out(), 8);
        assert_eq!(g.take(5), Err(SharesFull::Total));
        // A refusal leaves the counts as they were.
        assert_eq!(g.out(), 8);
        g.put(2);
        assert_eq!(g.take(2), Ok(()));
        for d in [2, 2, 2, 3, 3, 3, 4, 4] {
            g.put(d);
        }
        assert_eq!(g.out(), 0);
        assert_eq!(g.take(2), Ok(()));
        assert_eq!((g.out_to(2), g.out_to(3)), (1, 0));
    }

    /// A caller's frames by slot, as the netfront keeps its skbs.
    struct Frames<const N: usize> {
        book: Parked<N>,
        frames: [Option<u32>; N],
    }

    impl<const N: usize> Frames<N> {
        fn new() -> Self {
            Self {
                book: Parked::new(),
                frames: [None; N],
            }
        }

        fn push(&mut self, dest: u16, f: u32) -> bool {
            match self.book.push(dest) {
                Some(slot) => {
                    assert_eq!(self.frames[slot], None, "a slot in use given out");
                    self.frames[slot] = Some(f);
                    true
                }
                None => false,
            }
        }

        fn release(&mut self, mut go: impl FnMut(u16, u32) -> bool) -> Vec<u32> {
            let mut offered = Vec::new();
            let frames = &mut self.frames;
            self.book.release(|dest, slot| {
                let f = frames[slot].unwrap();
                offered.push(f);
                let gone = go(dest, f);
                if gone {
                    frames[slot] = None;
                }
                gone
            });
            offered
        }
    }

    #[test]
    fn parked_frames_leave_in_order_per_destination() {
        let mut p = Frames::<8>::new();
        assert!(!p.book.waiting(2));
        // Frames 1..=6 to destinations 2, 3, 2, 66 (2's bucket), 3, 4.
        for (dest, f) in [(2, 1), (3, 2), (2, 3), (66, 4), (3, 5), (4, 6)] {
            assert!(p.push(dest, f));
        }
        assert!(p.book.waiting(2) && p.book.waiting(66) && p.book.waiting(4));
        assert!(!p.book.waiting(5));
        // Destination 2's bucket may not go (frame 1 stays): its later
        // frames 3 and 4 are not offered; 3 takes one (2), 4 all.
        let mut budget3 = 1;
        let offered = p.release(|dest, _| match dest {
            3 if budget3 > 0 => {
                budget3 -= 1;
                true
            }
            4 => true,
            _ => false,
        });
        assert_eq!(offered, [1, 2, 5, 6]);
        assert_eq!(p.book.len(), 4);
        assert!(p.book.waiting(2) && p.book.waiting(3) && !p.book.waiting(4));
        // New frames take the freed slots, behind the others.
        assert!(p.push(4, 7) && p.push(9, 8));
        assert_eq!(p.release(|_, _| true), [1, 3, 4, 5, 7, 8]);
        assert!(p.book.is_empty() && !p.book.waiting(2) && !p.book.waiting(3));
        assert!(p.frames.iter().all(|f| f.is_none()));
    }

    #[test]
    fn parked_frames_are_bounded_per_destination() {
        let mut p = Frames::<8>::new();
        for f in 0..4 {
            assert!(p.push(7, f));
        }
        // Half the places to one bucket at most; others get the rest.
        assert!(!p.push(7 + SHARE_BUCKETS as u16, 9));
        for f in 10..14 {
            assert!(p.push(f as u16, f));
        }
        assert!(!p.push(20, 20));
        let mut all = Vec::new();
        let frames = &mut p.frames;
        p.book
            .drain(|_, slot| all.push(frames[slot].take().unwrap()));
        assert_eq!(all, [0, 1, 2, 3, 10, 11, 12, 13]);
        assert!(p.book.is_empty() && !p.book.waiting(7));
        // Every slot free again, each given out once.
        for f in 0..4 {
            assert!(p.push(f as u16, f) && p.push(f as u16 + 4, f));
        }
        assert!(!p.push(30, 30));
    }
}
