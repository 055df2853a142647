// SPDX-License-Identifier: GPL-2.0

//! The netfront's pure parts: the lines users write to its `attach` file
//! (`docs/envelope.md` section 6: make an interface over a guest-side
//! VMPI device), and its bound on the grants out ([`GrantShares`],
//! section 2).

use core::sync::atomic::{AtomicU32, Ordering};

use super::domain::DevName;
use crate::line::{words, IfName, ParseError};

/// Buckets of destinations in [`GrantShares`].
pub const SHARE_BUCKETS: usize = 64;

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
        &self.buckets[usize::from(dest) % SHARE_BUCKETS]
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
}

/// The most buffers a netfront keeps posted (the device holds
/// `MAX_POSTED`).
pub const POSTED_LIMIT: u8 = 64;

/// A write to `attach`: `DEV [name=IFNAME] [posted=N]`.
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
}

/// Parses one line written to `attach`.
pub fn parse_attach_line(b: &[u8]) -> Result<AttachCmd, ParseError> {
    let mut w = words(b)?;
    let dev = DevName::new(w.next().ok_or(ParseError::Words)?.as_bytes())?;
    let mut name = None;
    let mut posted = None;
    for kv in w {
        match kv.split_once('=') {
            Some(("posted", v)) if posted.is_none() => {
                let n = v.parse::<u8>().map_err(|_| ParseError::Number)?;
                if n > POSTED_LIMIT {
                    return Err(ParseError::Number);
                }
                posted = Some(n);
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
    Ok(AttachCmd { dev, name, posted })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
