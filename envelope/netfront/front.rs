// SPDX-License-Identifier: GPL-2.0

//! The netfront's interfaces: one [`Front`] per guest-side VMPI device,
//! an Ethernet interface whose frames travel over the device's raw
//! channel 1 to and from the host's switch, with the read-only replica of
//! the forwarding table the host pushes.
//!
//! Lifecycle: an interface is made by `ip link add ... type envelope`
//! or sysfs `attach` (both [`Netfront::create`], under RTNL), and goes by
//! `ip link del` (unregistered at once, the rest left to the reaper),
//! `detach`, its VMPI device's removal or the module's unloading.
//!
//! Locking: `fronts` is taken by sysfs calls, by the reaper and under
//! RTNL by `create` (so nothing holds it while taking RTNL: the lower
//! device's calls are made outside it); a front is dropped outside it
//! (dropping unregisters the interface, which takes RTNL, and closes the
//! port, which waits for the device's callbacks, before it frees the
//! interface). A front's `tx` is taken by the transmit work (the copy
//! path), `create` and a front's drop; its `table` and `granting` are also taken
//! by `xmit_ref`, in `ndo_start_xmit`'s softirq ([`BhLock`]s), which
//! grants frames or sends them as `FRAME`s (`vmpi_port_send_sg()`).
//!
//! Grants and copies (`grant_io.rs`): a unicast frame whose replica entry
//! is route `envelope` to another domain is granted to that domain, its
//! skb kept until the grant completes; an `ENVELOPE` makes a copy into a
//! new skb. Each is counted out until its `done()`, and a front is freed
//! only once none is out.

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::fmt;
use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::{new_mutex, new_spinlock, Arc, ArcBorrow, Mutex};
use kernel::time::{ktime_ms_delta, Ktime};

use crate::bh_lock::BhLock;
use crate::bindings;
use crate::dwork::{DelayedWork, DelayedWorkItem};
use crate::envelope_proto::domain::{DevName, DEV_NAME_MAX};
use crate::envelope_proto::front::{AttachCmd, GrantShares, Parked, SharesFull, VfArg, VfCmd};
use crate::envelope_proto::msg::{
    self, frame_prefix, Envelope, Meta, Msg, MAX_FRAME, META_LEN, MSG_HDR_LEN,
};
use crate::envelope_proto::table::{Entry, Replica, Route, MAX_ENTRIES};
use crate::grant_io::{self, Ctx, COPY_DISCARD, COPY_FINISH};
use crate::netdev::{
    self, NetDevice, NewLink, Registration, RxSkb, TxDone, TxFrame, TxSkb, XmitRef,
};
use crate::proto::link::Role;
use crate::sysfs_buf::SysfsBuf;
use crate::vmpi_port::{self, Port, PortRef, PortUser};

/// Interfaces at once (the `fronts` file fits a page).
const MAX_FRONTS: usize = 16;
/// An 802.1Q tag.
const VLAN_HLEN: usize = 4;
/// How long a detach waits for the grants and copies out before it resets
/// the VMPI device (which completes them all): five of the host's default
/// hold times (`grant_hold_ms` of `vmpi_host`).
const DETACH_RESET_MS: i64 = 5000;

/// The largest MTU: a frame with a VLAN tag still fits a `FRAME` message.
const MAX_MTU: usize = MAX_FRAME - msg::ETH_HLEN - VLAN_HLEN;

/// Grants out at once (the host holds at most 256 of a domain), and to
/// one destination: at a bound frames wait for one to complete
/// ([`PARKED_MAX`]).
const MAX_GRANTS_OUT: u32 = 128;
const MAX_GRANTS_PER_DEST: u32 = 64;
/// Frames that wait for a grant to their destination (at most half of
/// them to one): beyond, a frame goes as a `FRAME`. Few wait at once: a
/// waiting frame is still charged to its socket (TCP small queues and
/// `SO_SNDBUF` hold the sender back), a granted one no longer.
const PARKED_MAX: usize = 128;
/// Frames of at most this many bytes go inline, as `FRAME`s, even to an
/// envelope route, unless `attach` says otherwise (`inline=`): below it a
/// grant, its envelope and its copy request cost more than copying the
/// frame twice (`scripts/bench-inline.sh`, results/README.md).
const INLINE_DEFAULT: u32 = 256;
/// Buffers a front keeps posted for frames the host delivers (`posted=`
/// of `attach`; at most 64, what the device holds, and VMPI's transport
/// lets posted buffers hold at most half the copyq's descriptors: 21
/// buffers of [`POSTED_MIN`] bytes without indirect descriptors). None by
/// default: measured, TCP is slower with them, its TSO frames being
/// larger than the buffers (`results/README.md`).
const POSTED_DEFAULT: u8 = 0;
/// Bytes of a posted buffer: the MTU's frame, at least [`POSTED_MIN`]
/// (TCP's small TSO frames fit), at most [`POSTED_MAX`] (larger frames
/// come by `ENVELOPE`: a buffer is allocated for each as it arrives).
const POSTED_MIN: u32 = 8192;
/// See [`POSTED_MIN`].
const POSTED_MAX: u32 = 16384;
/// A frame of at most this many bytes delivered into a posted buffer is
/// copied into an skb of its size and the buffer posted again (as
/// virtio-net's copybreak): the stack does not charge a small frame a
/// large buffer's truesize, and no buffer is allocated for it.
const COPYBREAK: usize = 4096;
/// The longest frame sent as a `FRAME` from `ndo_start_xmit`'s softirq:
/// its SDU fits the largest buffer VMPI keeps for reuse (4 KiB), so it
/// takes no allocation in a steady stream. A longer one (a TSO frame in
/// full-copy mode) goes from the transmit work, which may sleep for its
/// buffer: in softirq it would need an order-4 allocation without
/// sleeping (measured: 64 KB UDP datagrams in full-copy mode went at half
/// the rate, `results/README.md`).
const SEND_SG_MAX: usize = 4096 - MSG_HDR_LEN - META_LEN;
/// Copies into new skbs out at once: beyond, envelopes are discarded.
const MAX_COPIES_OUT: u32 = 128;
/// Discards (`FINISH | DISCARD`) out at once: beyond, an envelope is
/// left to time out on the host.
const MAX_DISCARDS_OUT: u32 = 64;

/// What `ethtool -S` shows (in [`FrontDev::STATS`]'s order).
#[derive(Default)]
struct Counters {
    tx_frames: AtomicU64,
    tx_tso: AtomicU64,
    tx_busy: AtomicU64,
    tx_no_link: AtomicU64,
    rx_frames: AtomicU64,
    rx_tso: AtomicU64,
    rx_dropped: AtomicU64,
    rx_bad_msg: AtomicU64,
    table_updates: AtomicU64,
    table_refused: AtomicU64,
    /// Grants posted, and their completions by status (`tx_grant_reset`:
    /// the device was reset or went away).
    tx_envelopes: AtomicU64,
    tx_grant_done: AtomicU64,
    tx_grant_refused: AtomicU64,
    tx_grant_undelivered: AtomicU64,
    tx_grant_timeout: AtomicU64,
    tx_grant_revoked: AtomicU64,
    tx_grant_failed: AtomicU64,
    tx_grant_reset: AtomicU64,
    /// Frames sent as `FRAME`s at [`MAX_GRANTS_OUT`] grants out (none to
    /// their destination), or with no place to wait ([`PARKED_MAX`]
    /// frames waiting, or half of them to their destination).
    tx_grant_busy: AtomicU64,
    /// Frames for an envelope route sent as `FRAME`s: the grant was
    /// refused or undelivered, or could not be posted.
    tx_fallback: AtomicU64,
    rx_envelopes: AtomicU64,
    /// Copies that succeeded, and their bytes.
    rx_copy_ok: AtomicU64,
    rx_copy_bytes: AtomicU64,
    /// Copies that failed (any other status), or could not be posted.
    rx_copy_failed: AtomicU64,
    /// Envelopes answered with `FINISH | DISCARD`: too many copies out,
    /// no memory, or a frame the interface refuses.
    rx_discarded: AtomicU64,
    /// Frames for an envelope route sent inline (at most
    /// [`FrontDev::inline_max`] bytes).
    tx_inline: AtomicU64,
    /// Frames the host delivered into posted buffers (their bytes count
    /// in `rx_copy_bytes`), and posted buffers that came back without
    /// one (a failed copy; not a cancel or a reset).
    rx_delivered: AtomicU64,
    rx_delivered_failed: AtomicU64,
    /// Frames that waited for a grant to their destination.
    tx_grant_waited: AtomicU64,
    /// Posted buffers refused: `TOO_MANY` from the transport (`posted=`
    /// asked for more than fit) or `BAD_REQUEST` (a device without
    /// posted receives).
    rx_posted_refused: AtomicU64,
    /// Frames `xmit_ref` could not send as `FRAME`s (VMPI held 64 sent
    /// from any context, or no memory without sleeping): the transmit
    /// work sent them, copying.
    tx_deferred: AtomicU64,
    /// Frames for a route `vf` sent to the switch as `FRAME`s: the
    /// interface has no VF, or it is down, or the frame is over its MTU.
    tx_vf_fallback: AtomicU64,
    /// `rx_dropped` by reason: the interface was down (or going), its receive
    /// backlog full, the frame's offloads or length invalid, no memory,
    /// an envelope neither copied nor discarded (its grant times out).
    rx_drop_down: AtomicU64,
    rx_drop_backlog: AtomicU64,
    rx_drop_bad: AtomicU64,
    rx_drop_nomem: AtomicU64,
    rx_drop_no_copy: AtomicU64,
}

impl Counters {
    /// A received frame the stack did not get, for `err` (what
    /// [`netdev::Handle`]'s receive calls return).
    fn rx_drop(&self, err: Error) {
        inc(&self.rx_dropped);
        inc(if err == crate::errno::enetdown() || err == ENODEV {
            &self.rx_drop_down
        } else if err == crate::errno::enobufs() {
            &self.rx_drop_backlog
        } else if err == ENOMEM {
            &self.rx_drop_nomem
        } else {
            &self.rx_drop_bad
        });
    }
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The copy path's side: the port.
struct Tx {
    port: Option<Arc<Port<Link>>>,
    /// Describes the frame being sent.
    sg: KBox<[bindings::scatterlist; grant_io::MAX_SG]>,
}

/// A `FRAME` message's header and offloads, before the frame: the
/// offloads travel as the stack set them; the host's switch and the
/// receiving netfront check them (`Meta::check`, `virtio_net_hdr_to_skb()`).
fn frame_head(meta: &[u8; netdev::META_LEN]) -> [u8; MSG_HDR_LEN + META_LEN] {
    let mut head = [0u8; MSG_HDR_LEN + META_LEN];
    head.copy_from_slice(&frame_prefix(&Meta::default()));
    head[MSG_HDR_LEN..].copy_from_slice(meta);
    head
}

/// Counts a `FRAME` sent (`meta[1]`, `gso_type`: a TSO frame, cut into
/// segments by the receiver's stack only if it must).
fn count_frame(c: &Counters, meta: &[u8; netdev::META_LEN]) {
    inc(&c.tx_frames);
    if meta[1] != 0 {
        inc(&c.tx_tso);
    }
}

/// What the grant path needs, in softirq context: the same port, and what
/// a grant's completion needs (cleared when the front goes: it holds the
/// `FrontDev`).
struct Granting {
    port: Arc<Port<Link>>,
    ctx: Ctx,
    /// Frames waiting for a grant to their destination: their order, and
    /// the frames by slot.
    parked: KBox<Parked<PARKED_MAX>>,
    frames: KVec<Option<ParkedFrame>>,
    /// Describes a frame sent as a `FRAME` from softirq
    /// ([`FrontDev::send_frame`]).
    sg: KBox<[bindings::scatterlist; grant_io::MAX_SG]>,
}

/// Room for [`PARKED_MAX`] waiting frames, by slot.
fn parked_frames() -> Result<KVec<Option<ParkedFrame>>> {
    let mut v = KVec::with_capacity(PARKED_MAX, GFP_KERNEL)?;
    for _ in 0..PARKED_MAX {
        v.push(None, GFP_KERNEL)?;
    }
    Ok(v)
}

/// A frame waiting for a grant: still charged to its socket.
struct ParkedFrame {
    skb: TxSkb,
    meta: [u8; netdev::META_LEN],
}

impl Granting {
    /// Hands the waiting frames back to the stack as dropped (the
    /// interface stops, or goes).
    fn drop_parked(&mut self) {
        let Self {
            ctx,
            parked,
            frames,
            ..
        } = self;
        parked.drain(|_, slot| {
            if let Some(f) = frames.get_mut(slot).and_then(Option::take) {
                ctx.nd.tx_complete(f.skb, TxDone::Drop);
            }
        });
    }
}

/// One interface's driver state.
#[pin_data]
pub(crate) struct FrontDev {
    vmpi: DevName,
    /// Its id (`N` of `/dev/vmpiN`), for a reset at detach.
    vmpi_id: i32,
    /// Frames of at most this many bytes go inline (`inline=` of
    /// `attach`, else [`INLINE_DEFAULT`]).
    inline_max: usize,
    #[pin]
    tx: Mutex<Tx>,
    /// Set while the port is open (grants are posted under it, so the
    /// port outlives every post).
    #[pin]
    granting: BhLock<Option<Granting>>,
    #[pin]
    table: BhLock<Replica<KVVec<Entry>>>,
    /// A `TABLE_REQ` is outstanding: the next table is taken whatever its
    /// generation.
    asked: AtomicBool,
    /// The device took no grant (`EOPNOTSUPP`): frames go as `FRAME`s
    /// until the next table.
    no_grants: AtomicBool,
    /// `ip link del` (or the kind's unregistering) unregistered the
    /// interface: the reaper removes the rest.
    unlinked: AtomicBool,
    /// Grants, copies and discards out (posted, `done()` not yet run).
    grants: GrantShares,
    copies_out: AtomicU32,
    discards_out: AtomicU32,
    posted: PostedBufs,
    c: Counters,
}

/// A front's buffers posted for frames the host delivers.
struct PostedBufs {
    /// Buffers to keep posted (`posted=` of `attach`).
    max: u32,
    /// What the transport takes: lowered to the buffers out when it
    /// answers `TOO_MANY` (posted buffers may hold at most half the
    /// copyq's descriptors), for buffers of `cap_len` bytes (a new MTU
    /// learns it again).
    cap: AtomicU32,
    cap_len: AtomicU32,
    /// Buffers posted (their `done()` not yet run), and cancels out.
    out: AtomicU32,
    cancels_out: AtomicU32,
    /// The front is going: no buffer is posted any more (set under
    /// `granting`).
    closing: AtomicBool,
}

/// Where the replica sends a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dest {
    /// Granted to this domain (route `envelope`, another domain's).
    Grant(u16),
    /// Out of the interface's VF (route `vf`, another domain's): the
    /// NIC's switch takes it to that domain's VF.
    Vf,
    /// A `FRAME` to the host's switch.
    Switch,
}

impl FrontDev {
    /// Where a frame with Ethernet header `eth` goes.
    fn dest(&self, eth: &[u8; netdev::ETH_HLEN]) -> Dest {
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&eth[..6]);
        if mac[0] & 1 != 0 {
            return Dest::Switch;
        }
        let t = self.table.lock();
        let me = t.your_domain();
        match t.lookup(&mac) {
            Some(e) if e.domain != me && e.route == Route::Envelope => Dest::Grant(e.domain),
            Some(e) if e.domain != me && e.route == Route::Vf => Dest::Vf,
            _ => Dest::Switch,
        }
    }

    /// Posts a grant of `skb` to `dest` (counted taken); the skb back if
    /// it could not be (for a `FRAME`; the count is given back).
    fn post_grant(
        &self,
        port: &Port<Link>,
        ctx: &Ctx,
        skb: TxSkb,
        dest: u16,
        meta: &[u8; netdev::META_LEN],
    ) -> core::result::Result<(), TxSkb> {
        let c = &self.c;
        // Held until the receiver's copy and the completion: not charged to
        // its socket meanwhile.
        let mut skb = skb;
        skb.orphan();
        match grant_io::grant(&port.port(), ctx, skb, dest, meta) {
            Ok(()) => {
                inc(&c.tx_envelopes);
                Ok(())
            }
            Err((skb, e)) => {
                self.grants.put(dest);
                if e == crate::errno::eopnotsupp() {
                    self.no_grants.store(true, Ordering::Relaxed);
                }
                inc(&c.tx_fallback);
                Err(skb)
            }
        }
    }

    /// Keeps `skb` to `dest` until a grant to it completes
    /// ([`FrontDev::put_grant`]); with [`PARKED_MAX`] waiting, or half
    /// of them to `dest`, it goes as a `FRAME` after all.
    fn park(
        &self,
        g: &mut Granting,
        skb: TxSkb,
        dest: u16,
        meta: &[u8; netdev::META_LEN],
    ) -> XmitRef {
        let c = &self.c;
        let place = g.parked.push(dest).and_then(|slot| g.frames.get_mut(slot));
        match place {
            Some(place) => {
                *place = Some(ParkedFrame { skb, meta: *meta });
                inc(&c.tx_grant_waited);
                XmitRef::Taken
            }
            None => {
                inc(&c.tx_grant_busy);
                inc(&c.tx_fallback);
                self.send_frame(g, skb, meta)
            }
        }
    }

    /// Sends `skb` as a `FRAME` from here (softirq, or the transmit
    /// work): copied once, out of its pages into the SDU VMPI sends
    /// (`vmpi_port_send_sg()`), and completed. A frame longer than
    /// [`SEND_SG_MAX`], or one VMPI cannot take now (64 such SDUs wait for
    /// its transport, or no memory without sleeping: `tx_deferred`), goes
    /// to the transmit work, which copies it and waits for room.
    fn send_frame(
        &self,
        g: &mut Granting,
        mut skb: TxSkb,
        meta: &[u8; netdev::META_LEN],
    ) -> XmitRef {
        let c = &self.c;
        if skb.len() > SEND_SG_MAX {
            return XmitRef::Copy(skb);
        }
        let head = frame_head(meta);
        let len = skb.len();
        let sent = skb.to_sg(&mut g.sg[..]).and_then(|_| {
            // SAFETY: `to_sg` just described the frame's `len` bytes in
            // `g.sg` (marked), valid while `skb` lives, past this call.
            unsafe { g.port.port().send_sg(&head, g.sg.as_mut_ptr(), len, true) }
        });
        match sent {
            Ok(()) => {
                count_frame(c, meta);
                g.ctx.nd.tx_complete(skb, TxDone::Sent);
                XmitRef::Taken
            }
            Err(_) => {
                inc(&c.tx_deferred);
                XmitRef::Copy(skb)
            }
        }
    }

    /// A grant to `dest` completed: counts it in, then posts the frames
    /// waiting for one, oldest first, while the bounds allow; one whose
    /// grant cannot be posted goes as a `FRAME`. Under `granting`, so
    /// that no frame that did not wait takes the grant meanwhile.
    fn put_grant(&self, dest: u16) {
        let mut granting = self.granting.lock();
        self.grants.put(dest);
        let Some(Granting {
            port,
            ctx,
            parked,
            frames,
            ..
        }) = granting.as_mut()
        else {
            return;
        };
        if parked.is_empty() {
            return;
        }
        parked.release(|dest, slot| {
            let Some(place) = frames.get_mut(slot) else {
                return true;
            };
            if place.is_some() && self.grants.take(dest).is_err() {
                return false;
            }
            // Taken (a slot without a frame, never: freed).
            if let Some(f) = place.take() {
                if let Err(skb) = self.post_grant(port, ctx, f.skb, dest, &f.meta) {
                    ctx.nd.tx_complete(skb, TxDone::Copy);
                }
            }
            true
        });
    }

    /// A grant completed with `status` (a `VMPI_GRANT_*`, or `ECONNRESET`
    /// / `ENODEV`): the frame (a TSO frame if `tso`) is sent, goes as a
    /// `FRAME` after all (refused, undelivered), or is lost. From the
    /// transport's work.
    pub(crate) fn grant_done(
        &self,
        nd: &netdev::Handle,
        skb: TxSkb,
        dest: u16,
        tso: bool,
        status: i32,
    ) {
        let c = &self.c;
        let (counter, how) = match status as u32 {
            _ if status < 0 => (&c.tx_grant_reset, TxDone::Drop),
            bindings::VMPI_GRANT_DONE => (&c.tx_grant_done, TxDone::Sent),
            bindings::VMPI_GRANT_REFUSED => (&c.tx_grant_refused, TxDone::Copy),
            bindings::VMPI_GRANT_UNDELIVERED => (&c.tx_grant_undelivered, TxDone::Copy),
            // Never copied, and no longer can be (its handle is dead; a
            // finishing copy in flight would have decided instead): late
            // rather than lost.
            bindings::VMPI_GRANT_TIMEOUT => (&c.tx_grant_timeout, TxDone::Copy),
            bindings::VMPI_GRANT_REVOKED => (&c.tx_grant_revoked, TxDone::Drop),
            _ => (&c.tx_grant_failed, TxDone::Drop),
        };
        inc(counter);
        match how {
            TxDone::Copy => inc(&c.tx_fallback),
            // Sent whole, as a `FRAME` of it would count.
            TxDone::Sent if tso => inc(&c.tx_tso),
            _ => {}
        }
        nd.tx_complete(skb, how);
        // After the frame went back: a front waiting for none out frees
        // nothing a grant holds.
        self.put_grant(dest);
    }

    /// A copy completed with `status` (a `VMPI_COPY_*`, or `ECONNRESET` /
    /// `ENODEV`): `skb`, filled with `len` bytes if it succeeded, goes to
    /// the stack with `meta`, or is dropped; a discard (no `skb`) is over.
    /// From the transport's work.
    pub(crate) fn copy_done(
        &self,
        nd: &netdev::Handle,
        skb: Option<RxSkb>,
        meta: &[u8; META_LEN],
        len: u32,
        status: i32,
    ) {
        let c = &self.c;
        let Some(skb) = skb else {
            self.discards_out.fetch_sub(1, Ordering::AcqRel);
            return;
        };
        if status == bindings::VMPI_COPY_OK as i32 {
            inc(&c.rx_copy_ok);
            c.rx_copy_bytes.fetch_add(u64::from(len), Ordering::Relaxed);
            match nd.rx_skb(skb, meta) {
                Ok(()) => {
                    if meta[1] != 0 {
                        inc(&c.rx_tso);
                    }
                }
                Err(e) => c.rx_drop(e),
            }
        } else {
            inc(&c.rx_copy_failed);
            nd.rx_drop(skb);
        }
        self.copies_out.fetch_sub(1, Ordering::AcqRel);
    }

    /// An `ENVELOPE`: copies the whole frame into a new skb and finishes
    /// the grant; if it cannot, discards it (the sender's grant completes
    /// at once rather than timing out).
    fn envelope(&self, port: &PortRef<'_>, ctx: &Ctx, e: &Envelope) {
        let c = &self.c;
        inc(&c.rx_envelopes);
        // No posted buffer held this frame: post what is missing.
        self.refill(ctx);
        let meta = e.meta.encode();
        if self.copies_out.fetch_add(1, Ordering::AcqRel) < MAX_COPIES_OUT {
            let posted = ctx
                .nd
                .rx_alloc(&meta, e.frame_len as usize)
                .and_then(|skb| {
                    grant_io::copy(
                        port,
                        ctx,
                        e.handle,
                        Some(skb),
                        e.frame_len,
                        &meta,
                        COPY_FINISH,
                    )
                    .inspect_err(|_| inc(&c.rx_copy_failed))
                });
            if posted.is_ok() {
                return;
            }
        }
        self.copies_out.fetch_sub(1, Ordering::AcqRel);
        if self.discards_out.fetch_add(1, Ordering::AcqRel) < MAX_DISCARDS_OUT
            && grant_io::copy(
                port,
                ctx,
                e.handle,
                None,
                0,
                &meta,
                COPY_FINISH | COPY_DISCARD,
            )
            .is_ok()
        {
            inc(&c.rx_discarded);
            return;
        }
        self.discards_out.fetch_sub(1, Ordering::AcqRel);
        // Neither copied nor discarded: the sender's grant times out.
        inc(&c.rx_dropped);
        inc(&c.rx_drop_no_copy);
    }

    /// Grants, copies, discards, posted buffers or cancels still out.
    fn busy(&self) -> bool {
        self.grants.out() != 0
            || self.copies_out.load(Ordering::Acquire) != 0
            || self.discards_out.load(Ordering::Acquire) != 0
            || self.posted.out.load(Ordering::Acquire) != 0
            || self.posted.cancels_out.load(Ordering::Acquire) != 0
    }

    /// Whether fewer buffers are posted than asked (and may be).
    fn posted_missing(&self) -> bool {
        let p = &self.posted;
        let max = p.max.min(p.cap.load(Ordering::Relaxed));
        !p.closing.load(Ordering::Relaxed) && p.out.load(Ordering::Acquire) < max
    }

    /// The size of a posted buffer at the interface's MTU now.
    fn posted_len(ctx: &Ctx) -> Option<u32> {
        let mtu = ctx.nd.mtu();
        if mtu == 0 {
            return None;
        }
        Some((mtu + (msg::ETH_HLEN + VLAN_HLEN) as u32).clamp(POSTED_MIN, POSTED_MAX))
    }

    /// Posts buffers for frames the host delivers, up to `posted_max`
    /// (each of the MTU's frame size, see [`POSTED_MIN`]); stops at the
    /// first failure (the next completion or `ENVELOPE` tries again).
    /// Process context; not once the front is going (`granting` is
    /// empty then).
    fn refill(&self, ctx: &Ctx) {
        let Some(len) = Self::posted_len(ctx) else {
            return;
        };
        if self.posted.cap_len.swap(len, Ordering::Relaxed) != len {
            // Buffers of another size take other descriptor counts.
            self.posted.cap.store(u32::MAX, Ordering::Relaxed);
        }
        // The cap read again for each buffer: a refusal (`TOO_MANY`)
        // lowers it while this posts (read once, this went on posting
        // buffers the transport refused, for as long as a minute).
        while self.posted.out.load(Ordering::Acquire)
            < self.posted.max.min(self.posted.cap.load(Ordering::Relaxed))
        {
            if self.posted.closing.load(Ordering::Relaxed) {
                return;
            }
            let Ok(skb) = ctx.nd.rx_alloc_buf(len as usize) else {
                return;
            };
            // Counted before the post (its `done()` may run at once).
            self.posted.out.fetch_add(1, Ordering::AcqRel);
            let granting = self.granting.lock();
            let posted = match granting.as_ref() {
                Some(g) if !self.posted.closing.load(Ordering::Relaxed) => {
                    grant_io::post_buf(&g.port.port(), ctx, skb, len)
                }
                _ => Err(ENODEV),
            };
            drop(granting);
            if posted.is_err() {
                self.posted.out.fetch_sub(1, Ordering::AcqRel);
                return;
            }
        }
    }

    /// A posted buffer came back with `status` (a `VMPI_COPY_*`, or
    /// `ECONNRESET` / `ENODEV`): with `VMPI_COPY_OK` it holds a frame of
    /// `len` bytes with offloads `meta`, for the stack. Another is posted
    /// in its place. From the transport's work.
    pub(crate) fn posted_done(
        &self,
        ctx: &Ctx,
        skb: Option<RxSkb>,
        room: u32,
        meta: &[u8; META_LEN],
        len: u32,
        status: i32,
    ) {
        let c = &self.c;
        // Whether the buffer is of the MTU's size now (read once: the MTU
        // goes through the device's handle).
        let current = Self::posted_len(ctx) == Some(room);
        match skb {
            Some(skb) if status == bindings::VMPI_COPY_OK as i32 => {
                inc(&c.rx_delivered);
                c.rx_copy_bytes.fetch_add(u64::from(len), Ordering::Relaxed);
                let (handed, again) = self.deliver_frame(ctx, skb, meta, len);
                match handed {
                    Ok(()) => {
                        if meta[1] != 0 {
                            inc(&c.rx_tso);
                        }
                    }
                    Err(e) => c.rx_drop(e),
                }
                // The buffer, if the frame was copied out of it, goes
                // back at once (still counted out), if it is of the
                // MTU's size: after an MTU change one of the old size
                // is freed and a new one posted (`refill()`).
                if let Some(skb) = again {
                    if current && self.repost(ctx, skb, room) {
                        return;
                    }
                }
            }
            // A copy into it failed (`GONE` also when cancelled, with
            // nothing lost), or it was refused (`TOO_MANY`: not a
            // failure), or the device reset.
            _ => {
                let failed = status >= 0 && status != bindings::VMPI_COPY_TOO_MANY as i32;
                if failed && !self.posted.closing.load(Ordering::Relaxed) {
                    inc(&c.rx_delivered_failed);
                }
            }
        }
        let refused = status == bindings::VMPI_COPY_TOO_MANY as i32
            || status == bindings::VMPI_COPY_BAD_REQUEST as i32;
        if refused {
            inc(&c.rx_posted_refused);
            // As many as the transport takes (or none, from a device
            // that does not know posted receives): no more from now on.
            // Lowered before this buffer is counted out, so that a
            // `refill()` that sees the room it leaves also sees the cap
            // (the count out below releases it); not by a buffer of an
            // old size, which says nothing of the new.
            if current {
                let held = self.posted.out.load(Ordering::Acquire).saturating_sub(1);
                self.posted.cap.fetch_min(held, Ordering::Relaxed);
            }
            self.posted.out.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        if !current {
            // A buffer of an old size back: the descriptors it held may
            // let more of the new size in than the refusals while it
            // was out allowed.
            self.posted.cap.store(u32::MAX, Ordering::Relaxed);
        }
        self.posted.out.fetch_sub(1, Ordering::AcqRel);
        // Another in its place (not while the front goes, which
        // `refill()` checks, nor when the device goes: `ENODEV`); after a
        // reset (`ECONNRESET`) for the new rings.
        if status >= 0 || status == -(bindings::ECONNRESET as i32) {
            self.refill(ctx);
        }
    }

    /// Hands a frame of `len` bytes delivered into posted buffer `skb` to
    /// the stack: copied into an skb of its size if it is at most
    /// [`COPYBREAK`] bytes (then the buffer comes back, to post again),
    /// or in the buffer itself.
    fn deliver_frame(
        &self,
        ctx: &Ctx,
        skb: RxSkb,
        meta: &[u8; META_LEN],
        len: u32,
    ) -> (Result, Option<RxSkb>) {
        let n = len as usize;
        if n > COPYBREAK {
            return (ctx.nd.rx_buf(skb, meta, len), None);
        }
        match ctx.nd.rx_alloc(meta, n) {
            Ok(mut small) => match small.copy_from(&skb, n) {
                Ok(()) => (ctx.nd.rx_skb(small, meta), Some(skb)),
                Err(_) => (ctx.nd.rx_buf(skb, meta, len), None),
            },
            // Refused (counted) or no memory: the buffer stays ours.
            Err(e) => (Err(e), Some(skb)),
        }
    }

    /// Posts buffer `skb` of `room` bytes again; `false` if it could not
    /// be (the front goes, or the device refused it): it is freed then.
    fn repost(&self, ctx: &Ctx, skb: RxSkb, room: u32) -> bool {
        let granting = self.granting.lock();
        match granting.as_ref() {
            Some(g) if !self.posted.closing.load(Ordering::Relaxed) => {
                grant_io::post_buf(&g.port.port(), ctx, skb, room).is_ok()
            }
            _ => false,
        }
    }

    /// A cancel (or a posted buffer without its skb) completed.
    pub(crate) fn cancel_done(&self) {
        self.posted.cancels_out.fetch_sub(1, Ordering::AcqRel);
    }

    /// The front goes while its device stays: asks the host for its
    /// posted buffers back. `false` if the cancel could not be posted.
    fn cancel_posted(&self) -> bool {
        let granting = self.granting.lock();
        let Some(g) = granting.as_ref() else {
            return false;
        };
        let port = g.port.clone();
        let ctx = g.ctx.clone();
        drop(granting);
        self.posted.cancels_out.fetch_add(1, Ordering::AcqRel);
        if grant_io::cancel_bufs(&port.port(), &ctx).is_err() {
            self.posted.cancels_out.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Asks the host for the table.
    fn request_table(&self) {
        let tx = self.tx.lock();
        if let Some(port) = tx.port.as_ref() {
            self.asked.store(true, Ordering::Relaxed);
            if port.port().send(&msg::table_req()).is_err() {
                inc(&self.c.tx_busy);
            }
        }
    }
}

impl NetDevice for FrontDev {
    const DRIVER: &'static CStr = kernel::c_str!("envelope_netfront");
    const STATS: &'static [&'static CStr] = &[
        kernel::c_str!("tx_frames"),
        kernel::c_str!("tx_tso"),
        kernel::c_str!("tx_busy"),
        kernel::c_str!("tx_no_link"),
        kernel::c_str!("rx_frames"),
        kernel::c_str!("rx_tso"),
        kernel::c_str!("rx_dropped"),
        kernel::c_str!("rx_bad_msg"),
        kernel::c_str!("table_updates"),
        kernel::c_str!("table_refused"),
        kernel::c_str!("table_generation"),
        kernel::c_str!("table_entries"),
        kernel::c_str!("domain"),
        kernel::c_str!("tx_envelopes"),
        kernel::c_str!("tx_grant_done"),
        kernel::c_str!("tx_grant_refused"),
        kernel::c_str!("tx_grant_undelivered"),
        kernel::c_str!("tx_grant_timeout"),
        kernel::c_str!("tx_grant_revoked"),
        kernel::c_str!("tx_grant_failed"),
        kernel::c_str!("tx_grant_reset"),
        kernel::c_str!("tx_grant_busy"),
        kernel::c_str!("tx_fallback"),
        kernel::c_str!("rx_envelopes"),
        kernel::c_str!("rx_copy_ok"),
        kernel::c_str!("rx_copy_bytes"),
        kernel::c_str!("rx_copy_failed"),
        kernel::c_str!("rx_discarded"),
        kernel::c_str!("tx_inline"),
        kernel::c_str!("rx_delivered"),
        kernel::c_str!("rx_delivered_failed"),
        kernel::c_str!("rx_posted"),
        kernel::c_str!("tx_grant_waited"),
        kernel::c_str!("rx_posted_refused"),
        kernel::c_str!("tx_deferred"),
        kernel::c_str!("tx_vf"),
        kernel::c_str!("rx_vf"),
        kernel::c_str!("tx_vf_fallback"),
        kernel::c_str!("rx_drop_down"),
        kernel::c_str!("rx_drop_backlog"),
        kernel::c_str!("rx_drop_bad"),
        kernel::c_str!("rx_drop_nomem"),
        kernel::c_str!("rx_drop_no_copy"),
    ];
    const HAS_XMIT_REF: bool = true;
    // A frame costs the same hand-offs between work items (VM exits, on a
    // VMM) whatever its size: TCP builds TSO frames of about 4 ms of data
    // rather than 1 ms (mac80211 does the same for Wi-Fi aggregates).
    const TX_PACING_SHIFT: u8 = 8;

    fn open(&self) -> Result {
        self.request_table();
        Ok(())
    }

    fn stop(&self) {
        if let Some(g) = self.granting.lock().as_mut() {
            g.drop_parked();
        }
    }

    fn xmit(&self, frame: &mut TxFrame<'_>, meta: &[u8; netdev::META_LEN]) -> Result {
        let mut tx = self.tx.lock();
        let Tx { port, sg } = &mut *tx;
        let Some(port) = port.as_ref() else {
            inc(&self.c.tx_no_link);
            return Err(ENODEV);
        };
        let len = frame.len();
        frame.to_sg(&mut sg[..])?;
        // SAFETY: `to_sg` just described the frame's `len` bytes in `sg`
        // (marked), valid during the call; process context (the transmit
        // work), so not `atomic`: one copy, into a buffer it may sleep for.
        match unsafe {
            port.port()
                .send_sg(&frame_head(meta), sg.as_mut_ptr(), len, false)
        } {
            Ok(()) => {
                count_frame(&self.c, meta);
                Ok(())
            }
            Err(e) => {
                if e == EAGAIN {
                    inc(&self.c.tx_busy);
                }
                Err(e)
            }
        }
    }

    fn xmit_ref(
        &self,
        mut skb: TxSkb,
        meta: &[u8; netdev::META_LEN],
        eth: &[u8; netdev::ETH_HLEN],
    ) -> XmitRef {
        let c = &self.c;
        let dest = self.dest(eth);
        if dest == Dest::Vf {
            // Not under `granting`: the VF's transmit path could come back
            // to this interface (a tc redirect).
            let Some(nd) = self.granting.lock().as_ref().map(|g| g.ctx.nd.clone()) else {
                return XmitRef::Copy(skb);
            };
            match nd.lower_xmit(skb) {
                Ok(()) => return XmitRef::Taken,
                Err(back) => {
                    inc(&c.tx_vf_fallback);
                    skb = back;
                }
            }
        }
        let mut granting = self.granting.lock();
        let Some(g) = granting.as_mut() else {
            return XmitRef::Copy(skb);
        };
        let Dest::Grant(dest) = dest else {
            return self.send_frame(g, skb, meta);
        };
        let no_grants = self.no_grants.load(Ordering::Relaxed);
        // A small frame goes inline, as a `FRAME`, unless frames granted
        // to its destination are still out: a `FRAME` takes fewer
        // hand-offs and would overtake them (a TCP segment after a TSO
        // frame). Then it is granted too. (By bucket: a destination that
        // shares one with a busy one grants more than it must.)
        let inline = skb.len() <= self.inline_max && self.grants.out_to(dest) == 0;
        // A frame to a destination whose grants are all out waits for
        // one, and so does every frame to it after it, even one that
        // would go inline: a `FRAME` would overtake the frames granted
        // before it. Waiting takes no queue: a destination that never
        // copies must not stall the traffic to every other one.
        if g.parked.waiting(dest) {
            return self.park(g, skb, dest, meta);
        }
        if inline || no_grants {
            inc(if inline { &c.tx_inline } else { &c.tx_fallback });
            return self.send_frame(g, skb, meta);
        }
        // Counted before the post (its `done()` may run at once), and
        // checked by the counts taken (softirq and the transmit work may
        // both be here).
        match self.grants.take(dest) {
            Ok(()) => {}
            // Nothing to it out: a `FRAME` overtakes nothing.
            Err(SharesFull::Total) if self.grants.out_to(dest) == 0 => {
                inc(&c.tx_grant_busy);
                inc(&c.tx_fallback);
                return self.send_frame(g, skb, meta);
            }
            Err(_) => return self.park(g, skb, dest, meta),
        }
        match self.post_grant(&g.port, &g.ctx, skb, dest, meta) {
            Ok(()) => XmitRef::Taken,
            Err(skb) => self.send_frame(g, skb, meta),
        }
    }

    fn stats(&self, out: &mut [u64]) {
        let c = &self.c;
        let nd = self.granting.lock().as_ref().map(|g| g.ctx.nd.clone());
        let (rx_vf, tx_vf) = nd.map_or((0, 0), |nd| nd.lower_stats());
        let t = self.table.lock();
        let vals = [
            c.tx_frames.load(Ordering::Relaxed),
            c.tx_tso.load(Ordering::Relaxed),
            c.tx_busy.load(Ordering::Relaxed),
            c.tx_no_link.load(Ordering::Relaxed),
            c.rx_frames.load(Ordering::Relaxed),
            c.rx_tso.load(Ordering::Relaxed),
            c.rx_dropped.load(Ordering::Relaxed),
            c.rx_bad_msg.load(Ordering::Relaxed),
            c.table_updates.load(Ordering::Relaxed),
            c.table_refused.load(Ordering::Relaxed),
            u64::from(t.generation()),
            t.entries().len() as u64,
            u64::from(t.your_domain()),
            c.tx_envelopes.load(Ordering::Relaxed),
            c.tx_grant_done.load(Ordering::Relaxed),
            c.tx_grant_refused.load(Ordering::Relaxed),
            c.tx_grant_undelivered.load(Ordering::Relaxed),
            c.tx_grant_timeout.load(Ordering::Relaxed),
            c.tx_grant_revoked.load(Ordering::Relaxed),
            c.tx_grant_failed.load(Ordering::Relaxed),
            c.tx_grant_reset.load(Ordering::Relaxed),
            c.tx_grant_busy.load(Ordering::Relaxed),
            c.tx_fallback.load(Ordering::Relaxed),
            c.rx_envelopes.load(Ordering::Relaxed),
            c.rx_copy_ok.load(Ordering::Relaxed),
            c.rx_copy_bytes.load(Ordering::Relaxed),
            c.rx_copy_failed.load(Ordering::Relaxed),
            c.rx_discarded.load(Ordering::Relaxed),
            c.tx_inline.load(Ordering::Relaxed),
            c.rx_delivered.load(Ordering::Relaxed),
            c.rx_delivered_failed.load(Ordering::Relaxed),
            u64::from(self.posted.out.load(Ordering::Relaxed)),
            c.tx_grant_waited.load(Ordering::Relaxed),
            c.rx_posted_refused.load(Ordering::Relaxed),
            c.tx_deferred.load(Ordering::Relaxed),
            tx_vf,
            rx_vf,
            c.tx_vf_fallback.load(Ordering::Relaxed),
            c.rx_drop_down.load(Ordering::Relaxed),
            c.rx_drop_backlog.load(Ordering::Relaxed),
            c.rx_drop_bad.load(Ordering::Relaxed),
            c.rx_drop_nomem.load(Ordering::Relaxed),
            c.rx_drop_no_copy.load(Ordering::Relaxed),
        ];
        for (o, v) in out.iter_mut().zip(vals) {
            *o = v;
        }
    }
}

/// The port user of one interface: what the host sends it.
pub(crate) struct Link {
    dev: Arc<FrontDev>,
    nd: netdev::Handle,
    netfront: Arc<Netfront>,
    /// The port went down (the device is going away): the interface is
    /// removed by the reaper, even if this comes before it is listed.
    down: AtomicBool,
}

impl PortUser for Link {
    fn rx(&self, port: &PortRef<'_>, sdu: &[u8]) {
        let c = &self.dev.c;
        match Msg::parse_from_host(sdu) {
            Ok(Msg::Frame { meta, frame }) => {
                match self.nd.rx(&meta.encode(), frame) {
                    Ok(()) => {
                        inc(&c.rx_frames);
                        if meta.gso_type != 0 {
                            inc(&c.rx_tso);
                        }
                    }
                    Err(e) => c.rx_drop(e),
                }
                // Fewer buffers posted than asked (a refill failed): a
                // delivery that waited for one in vain came as a FRAME.
                if self.dev.posted_missing() {
                    let ctx = Ctx {
                        dev: self.dev.clone(),
                        nd: self.nd.clone(),
                    };
                    self.dev.refill(&ctx);
                }
            }
            Ok(Msg::Envelope(e)) => {
                let ctx = Ctx {
                    dev: self.dev.clone(),
                    nd: self.nd.clone(),
                };
                self.dev.envelope(port, &ctx, &e);
            }
            Ok(Msg::Table(t)) => {
                let asked = self.dev.asked.swap(false, Ordering::Relaxed);
                let (loaded, new_switch) = {
                    let mut r = self.dev.table.lock();
                    let epoch = r.epoch();
                    (r.load(&t, asked), r.epoch() != epoch)
                };
                match loaded {
                    Ok(true) => {
                        inc(&c.table_updates);
                        // Routes may have changed: try grants again.
                        self.dev.no_grants.store(false, Ordering::Relaxed);
                        // Under a switch it was not under before (a
                        // migration, or the switch reloaded): it announces
                        // itself, and its MAC, if promised to its domain,
                        // becomes the domain's (docs/envelope.md, 3).
                        if new_switch {
                            self.nd.notify_peers();
                        }
                    }
                    Ok(false) => {}
                    Err(_) => inc(&c.table_refused),
                }
            }
            // Malformed, or a message only a guest sends.
            _ => inc(&c.rx_bad_msg),
        }
    }

    fn write_space(&self, _port: &PortRef<'_>) {
        self.nd.wake_tx();
    }

    fn down(&self, _port: &PortRef<'_>, err: Error) {
        pr_info!(
            "{}: VMPI device down ({:?}): interface removed\n",
            self.dev.vmpi,
            err
        );
        self.down.store(true, Ordering::Release);
        self.nd.set_carrier(false);
        DelayedWork::schedule(&self.netfront, 0);
    }
}

/// An interface over a VMPI device.
struct Front {
    reg: Registration<FrontDev>,
    dev: Arc<FrontDev>,
    link: Arc<Link>,
}

impl Front {
    /// Its VMPI device went away: the reaper removes it.
    fn gone(&self) -> bool {
        self.link.down.load(Ordering::Acquire)
    }

    /// Its device went away or its interface was deleted: the reaper
    /// removes it, and it is no longer listed in sysfs.
    fn going(&self) -> bool {
        self.gone() || self.dev.unlinked.load(Ordering::Acquire)
    }
}

impl Front {
    /// Waits (sleeping) while `busy()`, calling `poke()` every second
    /// while the device is there. The device's host completes or gives
    /// back everything within its hold time; one that has not after
    /// [`DETACH_RESET_MS`] gets the device reset (again every
    /// [`DETACH_RESET_MS`]), which gives everything back: the wait is
    /// bounded.
    fn wait_out(&self, what: &str, busy: impl Fn() -> bool, poke: impl Fn()) {
        let start = Ktime::ktime_get();
        let (mut next_poke, mut next_reset, mut warned) = (0, DETACH_RESET_MS, false);
        while busy() {
            let ms = ktime_ms_delta(Ktime::ktime_get(), start);
            if ms >= next_poke && !self.gone() {
                poke();
                next_poke = ms + 1000;
            }
            if ms >= next_reset && !self.gone() {
                pr_warn!(
                    "{}: {} still out after {} ms: resetting the device\n",
                    self.dev.vmpi,
                    what,
                    ms
                );
                self.reset_device();
                next_reset = ms + DETACH_RESET_MS;
            }
            if ms >= 2 * DETACH_RESET_MS && !warned {
                pr_warn!("{}: still waiting for {}\n", self.dev.vmpi, what);
                warned = true;
            }
            // SAFETY: no preconditions; process context (a sysfs write,
            // the reaper's work, the module's exit), no lock held.
            unsafe { bindings::msleep(10) };
        }
    }

    /// Resets the interface's VMPI device (`vmpi_dev_reset()`), if its id
    /// is still the device's: the port is closed, so a removal would not
    /// be seen, and another device could have taken the id.
    fn reset_device(&self) {
        let mut buf = [0u8; DEV_NAME_MAX + 1];
        let same = dev_cstr(&self.dev.vmpi, &mut buf)
            .ok()
            .and_then(|name| vmpi_port::find(Role::Guest, Some(name)).ok())
            == Some(self.dev.vmpi_id);
        if !same {
            return;
        }
        if let Err(e) = vmpi_port::reset(self.dev.vmpi_id) {
            pr_warn!("{}: reset refused ({:?})\n", self.dev.vmpi, e);
        }
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        // The interface first (if `ip link del` has not unregistered it):
        // the stack sends it nothing more, and what comes in is dropped.
        self.reg.unregister();
        // The posted buffers, while the port is open: the device may stay
        // (a detach), and only a cancel gives them back. None is posted
        // from now on; one being delivered into comes back with its
        // frame.
        {
            let _g = self.dev.granting.lock();
            self.dev.posted.closing.store(true, Ordering::Relaxed);
        }
        self.wait_out(
            "posted buffers",
            || self.dev.posted.out.load(Ordering::Acquire) != 0,
            || {
                self.dev.cancel_posted();
            },
        );
        // The port then: no callback hands the interface a frame or an
        // envelope after this, and no grant is posted.
        let port = self.dev.tx.lock().port.take();
        // No grant is posted after this; the last reference to the port
        // goes here, in process context, not in the grant path.
        let granting = self.dev.granting.lock().take();
        if let Some(mut g) = granting {
            g.drop_parked();
        }
        drop(port);
        // Then the grants and copies out complete (the transport calls
        // each `done()`: a grant times out on the host within its hold
        // time), and only then the interface is freed (field `reg`): they
        // hold its skbs.
        self.wait_out("grants and copies", || self.dev.busy(), || {});
        // The last `done()` has counted itself out, but its code may still
        // run (it wakes the queue, drops its request): wait for it to
        // return before the interface, and perhaps the module, goes.
        vmpi_port::done_sync();
    }
}

/// The module's interfaces.
#[pin_data]
pub(crate) struct Netfront {
    #[pin]
    fronts: Mutex<KVec<Option<Front>>>,
    /// Removes the interfaces whose devices went away.
    reaper: DelayedWork<Netfront>,
}

// SAFETY: `dwork` returns the `reaper` field of `self`, always the same
// item, and no other object returns it.
unsafe impl DelayedWorkItem for Netfront {
    fn dwork(&self) -> &DelayedWork<Self> {
        &self.reaper
    }

    fn run(this: Arc<Self>) {
        while let Some(f) = this.take_one(Front::going) {
            drop(f);
        }
    }
}

impl Netfront {
    pub(crate) fn new() -> Result<Arc<Self>> {
        let reaper = DelayedWork::new()?;
        Arc::pin_init(
            pin_init!(Netfront {
                fronts <- new_mutex!(KVec::new(), "envelope_netfront::Netfront::fronts"),
                reaper,
            }),
            GFP_KERNEL,
        )
    }

    /// Takes the first interface `f` says yes to out (the caller drops it
    /// outside the lock).
    fn take_one(&self, f: impl Fn(&Front) -> bool) -> Option<Front> {
        let mut fronts = self.fronts.lock();
        fronts
            .iter_mut()
            .find(|slot| slot.as_ref().is_some_and(&f))
            .and_then(Option::take)
    }

    /// Removes every interface (module unload). Needs no memory.
    pub(crate) fn shut_down(&self) {
        while let Some(f) = self.take_one(|_| true) {
            drop(f);
        }
        self.reaper.cancel();
        while let Some(f) = self.take_one(|_| true) {
            drop(f);
        }
    }

    /// A write to `attach`: an interface over `cmd.dev`, as `ip link add
    /// NAME parentdev DEV type envelope` makes one, with `cmd`'s options.
    pub(crate) fn attach(cmd: &AttachCmd) -> Result {
        let ifname = match cmd.name {
            Some(n) => CString::try_from_fmt(fmt!("{}", n))?,
            None => CString::try_from_fmt(fmt!("env%d"))?,
        };
        let mut buf = [0u8; DEV_NAME_MAX + 1];
        netdev::add::<Netfront>(&ifname, dev_cstr(&cmd.dev, &mut buf)?, cmd)
    }

    /// An interface over the VMPI device whose virtio device is `parent`
    /// ([`netdev::Kind::newlink`], under RTNL): `EEXIST` if the device has
    /// one (`EBUSY` while one is being removed), `ENOSPC` beyond
    /// [`MAX_FRONTS`], `ENODEV` if no guest-side VMPI device is named
    /// `parent`, `EBUSY` if its raw channel 1 is bound.
    fn create(
        self: Arc<Self>,
        link: NewLink<'_, FrontDev>,
        parent: &CStr,
        opts: Option<&AttachCmd>,
    ) -> Result {
        let vmpi = DevName::new(parent.as_bytes()).map_err(|_| ENODEV)?;
        let slot = {
            let mut fronts = self.fronts.lock();
            if let Some(f) = fronts.iter().flatten().find(|f| f.dev.vmpi == vmpi) {
                return Err(if f.dev.unlinked.load(Ordering::Relaxed) {
                    EBUSY
                } else {
                    EEXIST
                });
            }
            if fronts.iter().flatten().count() >= MAX_FRONTS {
                return Err(ENOSPC);
            }
            // Its slot: nothing fails once it is registered. Only
            // creators, which hold RTNL, fill slots, and none is ever
            // removed, so the slot stays free and the checks above true.
            match fronts.iter().position(Option::is_none) {
                Some(i) => i,
                None => {
                    fronts.push(None, GFP_KERNEL)?;
                    fronts.len() - 1
                }
            }
        };
        let id = vmpi_port::find(Role::Guest, Some(parent))?;
        let slots = KVVec::from_elem(Entry::default(), MAX_ENTRIES, GFP_KERNEL)?;
        let tx_sg = KBox::new(
            [bindings::scatterlist::default(); grant_io::MAX_SG],
            GFP_KERNEL,
        )?;
        let dev = Arc::pin_init(
            pin_init!(FrontDev {
                vmpi,
                vmpi_id: id,
                inline_max: opts.and_then(|o| o.inline).unwrap_or(INLINE_DEFAULT) as usize,
                tx <- new_mutex!(Tx { port: None, sg: tx_sg }, "envelope_netfront::FrontDev::tx"),
                granting <- BhLock::new(new_spinlock!(None, "envelope_netfront::FrontDev::granting")),
                table <- BhLock::new(new_spinlock!(
                    Replica::new(slots),
                    "envelope_netfront::FrontDev::table"
                )),
                asked: AtomicBool::new(false),
                no_grants: AtomicBool::new(false),
                unlinked: AtomicBool::new(false),
                grants: GrantShares::new(MAX_GRANTS_OUT, MAX_GRANTS_PER_DEST),
                copies_out: AtomicU32::new(0),
                discards_out: AtomicU32::new(0),
                posted: PostedBufs {
                    max: u32::from(opts.and_then(|o| o.posted).unwrap_or(POSTED_DEFAULT)),
                    cap: AtomicU32::new(u32::MAX),
                    cap_len: AtomicU32::new(0),
                    out: AtomicU32::new(0),
                    cancels_out: AtomicU32::new(0),
                    closing: AtomicBool::new(false),
                },
                c: Counters::default(),
            }),
            GFP_KERNEL,
        )?;
        let reg = Registration::new(link, dev.clone())?;
        let link = Arc::new(
            Link {
                dev: dev.clone(),
                nd: reg.handle(),
                netfront: self.clone(),
                down: AtomicBool::new(false),
            },
            GFP_KERNEL,
        )?;
        // From here on a failure drops the front: its port closes, and
        // what the host was sent back waits for (not registered: frames
        // were dropped, none was sent).
        let mut front = Front { reg, dev, link };
        let port = Arc::new(
            Port::open(id, msg::CHANNEL, front.link.clone())?,
            GFP_KERNEL,
        )?;
        let ctx = Ctx {
            dev: front.dev.clone(),
            nd: front.reg.handle(),
        };
        let granting = Granting {
            port: port.clone(),
            ctx: ctx.clone(),
            parked: KBox::new(Parked::new(), GFP_KERNEL)?,
            frames: parked_frames()?,
            sg: KBox::new(
                [bindings::scatterlist::default(); grant_io::MAX_SG],
                GFP_KERNEL,
            )?,
        };
        front.dev.tx.lock().port = Some(port);
        *front.dev.granting.lock() = Some(granting);
        front.reg.register()?;
        // Buffers for the frames the host delivers (a device without
        // grants refuses the first: none then).
        front.dev.refill(&ctx);
        let mut name = [0u8; 16];
        front.reg.name(&mut name);
        // Whether its device went down is read under `fronts`: the
        // reaper that `down` scheduled either found it listed or runs
        // again below.
        let gone = {
            let mut fronts = self.fronts.lock();
            let gone = front.gone();
            match fronts.get_mut(slot) {
                Some(s) if s.is_none() => *s = Some(front),
                _ => {
                    // Cannot happen (see above); dropping a registered
                    // front here, under RTNL, would deadlock.
                    pr_err!("{}: no slot: interface leaked\n", vmpi);
                    core::mem::forget(front);
                }
            }
            gone
        };
        if gone {
            // Its device went down before it was listed: removed by the
            // reaper (`ip link add` sees it succeed, and it goes).
            DelayedWork::schedule(&self, 0);
        }
        pr_info!(
            "{}: netfront over {} (vmpi{})\n",
            ifname_str(&name),
            vmpi,
            id
        );
        Ok(())
    }

    /// The data-path handle of the interface named `ifname`, if it is
    /// listed and not going.
    fn handle_of(&self, ifname: &[u8]) -> Option<netdev::Handle> {
        let fronts = self.fronts.lock();
        fronts
            .iter()
            .flatten()
            .find(|f| {
                let mut n = [0u8; 16];
                f.reg.name(&mut n);
                !f.going() && ifname_str(&n).as_bytes() == ifname
            })
            .map(|f| f.reg.handle())
    }

    /// A write to `vf`: gives interface `cmd.ifname` its VF, or lets it
    /// go. (Not under `fronts`: the lower device's calls take RTNL, under
    /// which `create` takes `fronts`.)
    pub(crate) fn set_vf(&self, cmd: &VfCmd) -> Result {
        let nd = self.handle_of(cmd.ifname.as_bytes()).ok_or(ENOENT)?;
        match cmd.vf {
            VfArg::Take(vf) => {
                let name = CString::try_from_fmt(fmt!("{}", vf))?;
                nd.lower_take(&name)
            }
            VfArg::Auto => {
                nd.lower_auto();
                Ok(())
            }
            VfArg::Release => nd.lower_release(),
        }
    }

    /// A write to `detach`: an interface's name or its VMPI device's.
    pub(crate) fn detach(&self, name: &[u8]) -> Result {
        let front = self
            .take_one(|f| {
                let mut n = [0u8; 16];
                f.reg.name(&mut n);
                !f.going() && (ifname_str(&n).as_bytes() == name || f.dev.vmpi.as_bytes() == name)
            })
            .ok_or(ENOENT)?;
        drop(front);
        Ok(())
    }

    pub(crate) fn show_fronts(&self, out: &mut SysfsBuf<'_>) {
        // The interfaces' handles first: the lower device's name takes
        // RTNL, under which `create` takes `fronts`.
        let mut listed: KVec<(netdev::Handle, Arc<FrontDev>)> = KVec::new();
        {
            let fronts = self.fronts.lock();
            for f in fronts.iter().flatten().filter(|f| !f.going()) {
                if listed
                    .push((f.reg.handle(), f.dev.clone()), GFP_KERNEL)
                    .is_err()
                {
                    break;
                }
            }
        }
        for (nd, dev) in &listed {
            let n = nd.name();
            let mut vf = [0u8; 16];
            let (has_vf, vf_auto) = nd.lower_name(&mut vf);
            let t = dev.table.lock();
            let _ = write!(
                out,
                "{} vmpi={} domain={} generation={} entries={}",
                ifname_str(&n),
                dev.vmpi,
                t.your_domain(),
                t.generation(),
                t.entries().len()
            );
            drop(t);
            if has_vf {
                let _ = write!(out, " vf={}", ifname_str(&vf));
            }
            if vf_auto {
                let _ = write!(out, " vf_auto");
            }
            let _ = writeln!(out);
        }
    }
}

/// `name` NUL-terminated in `buf`.
fn dev_cstr<'a>(name: &DevName, buf: &'a mut [u8; DEV_NAME_MAX + 1]) -> Result<&'a CStr> {
    let b = name.as_bytes();
    buf[..b.len()].copy_from_slice(b);
    buf[b.len()] = 0;
    CStr::from_bytes_with_nul(&buf[..=b.len()]).map_err(|_| EINVAL)
}

impl netdev::Kind for Netfront {
    type Dev = FrontDev;
    type Opts = AttachCmd;
    const KIND: &'static CStr = kernel::c_str!("envelope");
    const MAX_MTU: u32 = MAX_MTU as u32;
    const MAX_FRAME: u32 = MAX_FRAME as u32;

    fn newlink(
        this: ArcBorrow<'_, Self>,
        link: NewLink<'_, FrontDev>,
        parent: &CStr,
        opts: Option<&AttachCmd>,
    ) -> Result {
        Arc::<Netfront>::from(this).create(link, parent, opts)
    }

    fn dellink(this: ArcBorrow<'_, Self>, dev: &FrontDev) {
        dev.unlinked.store(true, Ordering::Release);
        DelayedWork::schedule(&Arc::<Netfront>::from(this), 0);
    }
}

/// An interface name from [`Registration::name`]'s NUL-padded buffer.
fn ifname_str(n: &[u8; 16]) -> &str {
    let len = n.iter().position(|&c| c == 0).unwrap_or(n.len());
    core::str::from_utf8(&n[..len]).unwrap_or("?")
}
