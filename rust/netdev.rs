// SPDX-License-Identifier: GPL-2.0

//! Safe abstraction of an Ethernet `net_device` whose driver is Rust (the
//! C half is `rust/netdev_glue.c`, which owns the `net_device`, its NAPI
//! context, ops tables and queues). The 6.12 `kernel` crate has no
//! `net_device`, NAPI or ethtool abstraction.
//!
//! A driver implements [`NetDevice`] and a link [`Kind`]
//! ([`KindRegistration`]): `ip link add NAME parentdev PARENT type KIND`
//! and the driver's own [`add`] call [`Kind::newlink`], which builds the
//! driver and registers the interface ([`Registration`]); `ip link del`
//! calls [`Kind::dellink`], after which the driver drops the registration
//! when it is done with the interface's frames. [`Handle`]s (which may
//! live anywhere, e.g. in an I/O channel's callbacks) hand received
//! frames in and wake the transmitter until the registration is dropped.
//! Transmit ([`NetDevice::xmit`], the copy path) is called from a work
//! item, in process context, one frame at a time.
//!
//! A driver may also send a frame without copying it
//! ([`NetDevice::xmit_ref`]: it keeps the frame's [`TxSkb`], describes its
//! bytes with a scatterlist, and completes it through its [`Handle`]), and
//! receive one into an skb it fills itself ([`Handle::rx_alloc`],
//! [`Handle::rx_skb`]). `xmit_ref` is called from `ndo_start_xmit`, in
//! softirq context: what it shares with process context is behind a
//! `BhLock` (`rust/bh_lock.rs`).
//!
//! Include with `#[path = ".../rust/netdev.rs"] pub mod netdev;` and
//! `#[path = ".../rust/work_handle.rs"] pub mod work_handle;` next to `mod
//! bindings;`, link `rust/netdev_glue.o`, and include
//! `rust/netdev_glue.h` and `<linux/delay.h>` in the module's
//! `bindings_helper.h`.

use crate::bindings;
use crate::work_handle::{self, Owner, Target};
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::error::{from_err_ptr, from_result, to_result};
use kernel::ffi::{c_char, c_int, c_uint, c_void};
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::{Arc, ArcBorrow};

/// The most `ethtool -S` counters a driver has.
pub const MAX_STATS: usize = 64;
/// Length of a frame's offloads, a `struct virtio_net_hdr_v1`.
pub const META_LEN: usize = 12;
/// Length of an Ethernet header.
pub const ETH_HLEN: usize = 14;

/// What [`NetDevice::xmit_ref`] did with a frame.
pub enum XmitRef {
    /// The driver keeps it until it hands it to [`Handle::tx_complete`].
    Taken,
    /// Send it by [`NetDevice::xmit`] (the copy path), now.
    Copy(TxSkb),
    /// No room: retry it after [`Handle::wake_tx`] (the queue stops).
    Busy(TxSkb),
}

/// How a frame [`NetDevice::xmit_ref`] took ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxDone {
    /// It left: counted as sent (`ip -s link`), freed.
    Sent,
    /// Send it by [`NetDevice::xmit`] after all (not offered to
    /// [`NetDevice::xmit_ref`] again); dropped if the interface is down.
    Copy,
    /// Lost: counted as `tx_dropped`, freed.
    Drop,
}

/// A frame being transmitted, held by the driver ([`NetDevice::xmit_ref`]);
/// freed (counted nowhere) if dropped without [`Handle::tx_complete`].
///
/// # Invariants
///
/// `skb` is an skb the C half handed over, owned by this value.
pub struct TxSkb {
    skb: NonNull<bindings::sk_buff>,
    len: u32,
}

// SAFETY: an skb may be used and freed from any thread; `TxSkb` owns it.
unsafe impl Send for TxSkb {}
// SAFETY: `&TxSkb` only reads `len`.
unsafe impl Sync for TxSkb {}

/// Describes `skb`'s bytes in `sg`.
///
/// # Safety
///
/// `skb` is an skb the caller owns, or holds exclusively (lent).
unsafe fn skb_to_sg(
    skb: NonNull<bindings::sk_buff>,
    sg: &mut [bindings::scatterlist],
) -> Result<usize> {
    let max = u32::try_from(sg.len()).map_err(|_| EINVAL)?;
    // SAFETY: `skb` is owned by the caller; `sg` has `max` entries
    // (rust/netdev_glue.h).
    let n = unsafe { bindings::rvio_netdev_skb_to_sg(skb.as_ptr(), sg.as_mut_ptr(), max) };
    to_result(n.min(0))?;
    Ok(n as usize)
}

impl TxSkb {
    /// The frame's length.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the frame is empty (never: an Ethernet header at least).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Describes the frame's bytes in `sg` (linearizing it if it has more
    /// pieces than `sg` has entries): returns the entries used, the last
    /// one marked as the end. They describe the frame while `self` lives.
    pub fn to_sg(&mut self, sg: &mut [bindings::scatterlist]) -> Result<usize> {
        // SAFETY: `skb` is owned by `self` (type invariant).
        unsafe { skb_to_sg(self.skb, sg) }
    }

    /// Detaches the frame from its socket (and conntrack), for a driver
    /// that holds it a long time (`rvio_netdev_skb_orphan()`).
    pub fn orphan(&mut self) {
        // SAFETY: `skb` is owned by `self` (type invariant).
        unsafe { bindings::rvio_netdev_skb_orphan(self.skb.as_ptr()) };
    }

    fn into_raw(self) -> *mut bindings::sk_buff {
        core::mem::ManuallyDrop::new(self).skb.as_ptr()
    }
}

impl Drop for TxSkb {
    fn drop(&mut self) {
        // SAFETY: owned (type invariant) and not used after this.
        unsafe { bindings::rvio_netdev_skb_free(self.skb.as_ptr()) };
    }
}

/// A frame [`NetDevice::xmit`] sends, lent for the call (the C half
/// keeps its skb).
///
/// # Invariants
///
/// `skb` is an skb of `len` bytes the C half's transmit work owns and
/// does not touch for `'a`.
pub struct TxFrame<'a> {
    skb: NonNull<bindings::sk_buff>,
    len: u32,
    _lent: PhantomData<&'a mut bindings::sk_buff>,
}

impl TxFrame<'_> {
    /// The frame's length.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the frame is empty (never: an Ethernet header at least).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Describes the frame's bytes in `sg`, as [`TxSkb::to_sg`]; they
    /// describe the frame during the call that lent it.
    pub fn to_sg(&mut self, sg: &mut [bindings::scatterlist]) -> Result<usize> {
        // SAFETY: `skb` is lent to us, untouched by its owner, for `'a`
        // (type invariant).
        unsafe { skb_to_sg(self.skb, sg) }
    }
}

/// A received frame's skb for the driver to fill ([`Handle::rx_alloc`]),
/// then to hand in ([`Handle::rx_skb`]); freed if dropped.
///
/// # Invariants
///
/// `skb` is an skb from `rvio_netdev_rx_alloc()`, owned by this value.
pub struct RxSkb {
    skb: NonNull<bindings::sk_buff>,
}

// SAFETY: as for `TxSkb`.
unsafe impl Send for RxSkb {}
// SAFETY: `&RxSkb` gives nothing.
unsafe impl Sync for RxSkb {}

impl RxSkb {
    /// Describes the frame's bytes (its length as allocated, not
    /// initialized yet) in `sg`, as [`TxSkb::to_sg`]. Whoever writes
    /// through the entries must be done before `self` is handed in or
    /// dropped.
    pub fn to_sg(&mut self, sg: &mut [bindings::scatterlist]) -> Result<usize> {
        // SAFETY: `skb` is owned by `self` (type invariant).
        unsafe { skb_to_sg(self.skb, sg) }
    }

    /// Copies the first `len` bytes of `src` into this skb's linear part
    /// (`EINVAL` if either is shorter): a copybreak, so that a small frame
    /// leaves a large buffer free for the next.
    pub fn copy_from(&mut self, src: &RxSkb, len: usize) -> Result {
        let len = u32::try_from(len).map_err(|_| EINVAL)?;
        // SAFETY: both skbs are owned (type invariant), so neither is in
        // use elsewhere; the C half checks the lengths before it copies.
        to_result(unsafe {
            bindings::rvio_netdev_rx_copy(self.skb.as_ptr(), src.skb.as_ptr(), len)
        })
    }

    fn into_raw(self) -> *mut bindings::sk_buff {
        core::mem::ManuallyDrop::new(self).skb.as_ptr()
    }
}

impl Drop for RxSkb {
    fn drop(&mut self) {
        // SAFETY: owned (type invariant) and not used after this.
        unsafe { bindings::rvio_netdev_skb_free(self.skb.as_ptr()) };
    }
}

/// A network driver's callbacks.
pub trait NetDevice: Send + Sync + Sized + 'static {
    /// `ethtool -i`'s driver name.
    const DRIVER: &'static CStr;
    /// The names of the driver's `ethtool -S` counters ([`MAX_STATS`] at
    /// most, each under 32 bytes).
    const STATS: &'static [&'static CStr];
    /// `ip link set up` (under RTNL).
    fn open(&self) -> Result;
    /// `ip link set down` (under RTNL), after transmit has stopped.
    fn stop(&self);
    /// Sends one frame with its offloads (`meta`: a little-endian `struct
    /// virtio_net_hdr_v1`), copying its bytes ([`TxFrame::to_sg`]) during
    /// the call. `EAGAIN`: no room, the frame is retried after
    /// [`Handle::wake_tx`]; any other error drops it (`tx_dropped`).
    /// Process context, one call at a time.
    fn xmit(&self, frame: &mut TxFrame<'_>, meta: &[u8; META_LEN]) -> Result;
    /// Fills `out` (one value per name of [`NetDevice::STATS`]).
    fn stats(&self, out: &mut [u64]);
    /// Whether the driver has [`NetDevice::xmit_ref`].
    const HAS_XMIT_REF: bool = false;
    /// Offered each frame first (not one sent back with [`TxDone::Copy`]),
    /// with its offloads and Ethernet header, when
    /// [`NetDevice::HAS_XMIT_REF`]: the driver may keep it and send it
    /// without a copy. Called from `ndo_start_xmit` (softirq) or, for
    /// frames queued behind others, from the transmit work (process
    /// context), possibly both at once on two CPUs: it must not sleep, and
    /// takes what it shares with process context through a `BhLock`
    /// (`rust/bh_lock.rs`).
    fn xmit_ref(&self, skb: TxSkb, _meta: &[u8; META_LEN], _eth: &[u8; ETH_HLEN]) -> XmitRef {
        XmitRef::Copy(skb)
    }
    /// If not 0, the `sk_pacing_shift` of the sockets whose frames the
    /// device sends (as mac80211's `tx_sk_pacing_shift`): TCP builds TSO
    /// frames of 2^-shift seconds of data at its pacing rate (the stack's
    /// default, 10, is about 1 ms). For a device whose cost is per frame
    /// rather than per byte.
    const TX_PACING_SHIFT: u8 = 0;
}

/// The C half's device, as a [`work_handle::Target`]: its "work" is the
/// transmitter.
pub struct Dev;

impl Target for Dev {
    type Device = bindings::rvio_netdev;

    unsafe fn schedule(dev: *mut bindings::rvio_netdev) {
        // SAFETY: the caller (`work_handle`) guarantees `dev` is live;
        // `rvio_netdev_wake_tx()` may be called from any context.
        unsafe { bindings::rvio_netdev_wake_tx(dev) }
    }
}

/// A registered interface's data path, for use outside its callbacks; does
/// nothing once the [`Registration`] is dropped.
#[derive(Clone)]
pub struct Handle {
    h: work_handle::Handle<Dev>,
}

impl Handle {
    /// Hands one received frame with its offloads (`meta`, as for
    /// [`NetDevice::xmit`]; checked as virtio-net checks them) to the
    /// stack (NAPI, GRO): `ENETDOWN`, `ENOBUFS`, `ENOMEM` or `EINVAL` when
    /// it is dropped (counted as `rx_dropped`), `ENODEV` once the
    /// interface is gone. Process context.
    pub fn rx(&self, meta: &[u8; META_LEN], frame: &[u8]) -> Result {
        let len = u32::try_from(frame.len()).map_err(|_| EINVAL)?;
        self.h
            .with(|nd| {
                // SAFETY: `with` runs this while the registration is
                // attached, so `nd` is a registered device; `meta` is 12
                // bytes and `frame` `len` bytes, valid during the call,
                // which copies them.
                to_result(unsafe {
                    bindings::rvio_netdev_rx(nd, meta.as_ptr().cast(), frame.as_ptr().cast(), len)
                })
            })
            .unwrap_or(Err(ENODEV))
    }

    /// Allocates the skb of a received frame of `len` bytes with offloads
    /// `meta`, for the driver to fill: the checks of [`Handle::rx`], and its
    /// errors (counted as `rx_dropped`). Process context.
    pub fn rx_alloc(&self, meta: &[u8; META_LEN], len: usize) -> Result<RxSkb> {
        let len = u32::try_from(len).map_err(|_| EINVAL)?;
        self.h
            .with(|nd| {
                // SAFETY: `with` runs this while `nd` is registered; `meta`
                // is 12 bytes, read during the call. The C half returns an
                // skb the caller owns or an `ERR_PTR()`.
                let skb = from_err_ptr(unsafe {
                    bindings::rvio_netdev_rx_alloc(nd, meta.as_ptr().cast(), len)
                })?;
                // INVARIANT: from `rvio_netdev_rx_alloc()`, ours.
                NonNull::new(skb).map(|skb| RxSkb { skb }).ok_or(ENOMEM)
            })
            .unwrap_or(Err(ENODEV))
    }

    /// Hands in a frame the driver filled, with its offloads (as
    /// [`Handle::rx`]; `ENODEV` once the interface is gone). Process
    /// context.
    pub fn rx_skb(&self, skb: RxSkb, meta: &[u8; META_LEN]) -> Result {
        self.h
            .with(|nd| {
                // SAFETY: `nd` is live (`with`); the skb is from its
                // `rvio_netdev_rx_alloc()` and handed over (consumed);
                // `meta` is 12 bytes.
                to_result(unsafe {
                    bindings::rvio_netdev_rx_skb(nd, skb.into_raw(), meta.as_ptr().cast())
                })
            })
            .unwrap_or(Err(ENODEV))
    }

    /// The interface's MTU (0 once it is gone). Any context.
    pub fn mtu(&self) -> u32 {
        self.h
            // SAFETY: `with` runs this while `nd` is registered; the
            // getter only reads it.
            .with(|nd| unsafe { bindings::rvio_netdev_mtu(nd) })
            .unwrap_or(0)
    }

    /// Allocates an skb of `len` bytes for a buffer posted before its
    /// frame is known (laid out as [`Handle::rx_alloc`]'s; nothing checked
    /// but `len`, nothing counted). Process context.
    pub fn rx_alloc_buf(&self, len: usize) -> Result<RxSkb> {
        let len = u32::try_from(len).map_err(|_| EINVAL)?;
        self.h
            .with(|nd| {
                // SAFETY: `with` runs this while `nd` is registered. The C
                // half returns an skb the caller owns or an `ERR_PTR()`.
                let skb = from_err_ptr(unsafe { bindings::rvio_netdev_rx_alloc_buf(nd, len) })?;
                // INVARIANT: from `rvio_netdev_rx_alloc_buf()`, ours.
                NonNull::new(skb).map(|skb| RxSkb { skb }).ok_or(ENOMEM)
            })
            .unwrap_or(Err(ENODEV))
    }

    /// Hands in a buffer from [`Handle::rx_alloc_buf`] that now holds a
    /// frame of `len` bytes with offloads `meta`: checked as
    /// [`Handle::rx`] checks a frame, trimmed to `len` (`ENODEV` once the
    /// interface is gone). Process context.
    pub fn rx_buf(&self, skb: RxSkb, meta: &[u8; META_LEN], len: u32) -> Result {
        self.h
            .with(|nd| {
                // SAFETY: `nd` is live (`with`); the skb is from its
                // `rvio_netdev_rx_alloc_buf()` and handed over (consumed);
                // `meta` is 12 bytes.
                to_result(unsafe {
                    bindings::rvio_netdev_rx_buf(nd, skb.into_raw(), meta.as_ptr().cast(), len)
                })
            })
            .unwrap_or(Err(ENODEV))
    }

    /// A frame that could not be filled: freed, counted as `rx_dropped`.
    pub fn rx_drop(&self, skb: RxSkb) {
        self.h.with(|nd| {
            // SAFETY: `nd` is live (`with`); the skb is handed over.
            unsafe { bindings::rvio_netdev_rx_drop(nd, skb.into_raw()) }
        });
    }

    /// A frame [`NetDevice::xmit_ref`] took is done with (freed, without
    /// counting, once the interface is gone). Process context or softirq.
    pub fn tx_complete(&self, skb: TxSkb, how: TxDone) {
        let how = match how {
            TxDone::Sent => bindings::rvio_netdev_tx_how_RVIO_NETDEV_TX_SENT,
            TxDone::Copy => bindings::rvio_netdev_tx_how_RVIO_NETDEV_TX_COPY,
            TxDone::Drop => bindings::rvio_netdev_tx_how_RVIO_NETDEV_TX_DROP,
        };
        self.h.with(|nd| {
            // SAFETY: `nd` is live (`with`); the skb came from its
            // `xmit_ref` and is handed back (consumed).
            unsafe { bindings::rvio_netdev_tx_complete(nd, skb.into_raw(), how as c_int) }
        });
    }

    /// There is room again after an `EAGAIN` from [`NetDevice::xmit`].
    pub fn wake_tx(&self) {
        self.h.schedule();
    }

    /// Announces the interface to its peers (a gratuitous ARP per IPv4
    /// address), now if it is up, else when it next comes up. Any context.
    pub fn notify_peers(&self) {
        self.h.with(|nd| {
            // SAFETY: `with` runs this while `nd` is live; the C half
            // queues nothing for a device that is not registered.
            unsafe { bindings::rvio_netdev_notify_peers(nd) }
        });
    }

    /// Takes the interface named `name` in this one's namespace as its
    /// lower device (a VF with this interface's MAC): frames sent through
    /// it with [`Handle::lower_xmit`] leave by it, and every frame it
    /// receives is this interface's (`rvio_netdev_lower_take()`: `EBUSY`,
    /// `ENODEV`, `EINVAL`, `EADDRNOTAVAIL`). Process context; it sleeps
    /// (RTNL) counted in (`Handle::with`), so the caller keeps the
    /// [`Registration`] from being dropped meanwhile, and holds no lock
    /// that a holder of RTNL may wait for.
    pub fn lower_take(&self, name: &CStr) -> Result {
        self.h
            .with(|nd| {
                // SAFETY: `nd` is live (`with`); `name` is
                // NUL-terminated and valid during the call.
                to_result(unsafe { bindings::rvio_netdev_lower_take(nd, name.as_char_ptr()) })
            })
            .unwrap_or(Err(ENODEV))
    }

    /// Auto mode: takes any interface of this one's namespace that
    /// [`Handle::lower_take`] would take, now and whenever one appears
    /// there (`rvio_netdev_lower_auto()`), until the next `lower_take` or
    /// `lower_release`. Process context, as [`Handle::lower_take`].
    pub fn lower_auto(&self) {
        self.h.with(|nd| {
            // SAFETY: `nd` is live (`with`).
            unsafe { bindings::rvio_netdev_lower_auto(nd) }
        });
    }

    /// Lets the lower device go and ends auto mode (`ENOENT` if there is
    /// neither). Process context, as [`Handle::lower_take`].
    pub fn lower_release(&self) -> Result {
        self.h
            .with(|nd| {
                // SAFETY: `nd` is live (`with`).
                to_result(unsafe { bindings::rvio_netdev_lower_release(nd) })
            })
            .unwrap_or(Err(ENODEV))
    }

    /// The interface's current name, NUL-padded (empty once the
    /// registration is dropped).
    pub fn name(&self) -> [u8; 16] {
        let mut buf = [0u8; 16];
        self.h.with(|nd| {
            // SAFETY: `nd` is live (`with`); its name is a NUL-terminated
            // string of at most 16 bytes in the `net_device`.
            copy_name(
                unsafe { CStr::from_char_ptr(bindings::rvio_netdev_name(nd)) },
                &mut buf,
            )
        });
        buf
    }

    /// Writes the lower device's name into `buf` (NUL-padded): whether
    /// there is one, and whether the interface is in auto mode
    /// ([`Handle::lower_auto`]). Process context, as
    /// [`Handle::lower_take`].
    pub fn lower_name(&self, buf: &mut [u8; 16]) -> (bool, bool) {
        buf.fill(0);
        let mut auto_mode = false;
        let has = self
            .h
            .with(|nd| {
                // SAFETY: `nd` is live (`with`); `buf` holds
                // IFNAMSIZ (16) bytes; `auto_mode` is a local.
                unsafe {
                    bindings::rvio_netdev_lower_name(nd, buf.as_mut_ptr().cast(), &mut auto_mode)
                }
            })
            .unwrap_or(false);
        (has, auto_mode)
    }

    /// Sends a frame [`NetDevice::xmit_ref`] has through the lower device
    /// (counted as sent, or dropped if its queue drops it); the frame
    /// back if there is none, it is down, or the frame is over its MTU.
    /// From `xmit_ref`, holding none of the driver's locks (the lower
    /// device's transmit path could reach this interface again).
    pub fn lower_xmit(&self, skb: TxSkb) -> core::result::Result<(), TxSkb> {
        let skb = core::mem::ManuallyDrop::new(skb);
        let sent = self
            .h
            .with(|nd| {
                // SAFETY: `nd` is live (`with`); the skb is one its
                // `xmit_ref` has, consumed only when 0 is returned.
                unsafe { bindings::rvio_netdev_lower_xmit(nd, skb.skb.as_ptr()) == 0 }
            })
            .unwrap_or(false);
        if sent {
            Ok(())
        } else {
            Err(core::mem::ManuallyDrop::into_inner(skb))
        }
    }

    /// Frames received from, and sent through, lower devices.
    pub fn lower_stats(&self) -> (u64, u64) {
        let (mut rx, mut tx) = (0u64, 0u64);
        self.h.with(|nd| {
            // SAFETY: `nd` is live (`with`); both pointers are to
            // locals.
            unsafe { bindings::rvio_netdev_lower_stats(nd, &mut rx, &mut tx) }
        });
        (rx, tx)
    }

    /// Carrier on or off.
    pub fn set_carrier(&self, on: bool) {
        self.h.with(|nd| {
            // SAFETY: `with` runs this while `nd` is registered.
            unsafe { bindings::rvio_netdev_set_carrier(nd, on) }
        });
    }
}

/// A link kind: the module's interfaces are made by `ip link add NAME
/// parentdev PARENT type KIND` or by the driver's own [`add`] (a sysfs
/// write), and removed by `ip link del` (rust/netdev_glue.h). One per
/// module.
pub trait Kind: Send + Sync + Sized + 'static {
    /// The driver of its interfaces.
    type Dev: NetDevice;
    /// What [`add`] passes to [`Kind::newlink`] (`ip link add` passes
    /// nothing).
    type Opts;
    /// `ip link`'s `type`.
    const KIND: &'static CStr;
    /// The interfaces' largest MTU.
    const MAX_MTU: u32;
    /// Their largest frame (TSO), in bytes.
    const MAX_FRAME: u32;
    /// An interface over `parent` is wanted: builds its driver and
    /// registers `link` ([`Registration::new`], [`Registration::register`]),
    /// or fails (dropping the unregistered [`Registration`] before it
    /// returns). Under RTNL.
    fn newlink(
        this: ArcBorrow<'_, Self>,
        link: NewLink<'_, Self::Dev>,
        parent: &CStr,
        opts: Option<&Self::Opts>,
    ) -> Result;
    /// Interface `dev` is being unregistered (`ip link del`, the kind's
    /// unregistering): its driver drops its [`Registration`] later, not
    /// under RTNL. Under RTNL: must not sleep long.
    fn dellink(this: ArcBorrow<'_, Self>, dev: &Self::Dev);
}

/// The registered [`Kind`] `K`, with its context; every interface of the
/// kind is unregistered when dropped.
///
/// # Invariants
///
/// `ctx` is `Arc::into_raw` of the context the C half calls `K`'s
/// callbacks with, registered until `drop`.
pub struct KindRegistration<K: Kind> {
    ctx: *const K,
}

// SAFETY: it only holds an `Arc<K>` (`K: Send + Sync`) in raw form.
unsafe impl<K: Kind> Send for KindRegistration<K> {}
// SAFETY: as for `Send`; `&self` gives nothing.
unsafe impl<K: Kind> Sync for KindRegistration<K> {}

impl<K: Kind> KindRegistration<K> {
    const KIND: bindings::rvio_netdev_kind = bindings::rvio_netdev_kind {
        kind: K::KIND.as_char_ptr(),
        max_mtu: K::MAX_MTU,
        max_frame: K::MAX_FRAME,
        newlink: Some(Self::newlink),
        dellink: Some(Self::dellink),
    };

    const fn table() -> &'static bindings::rvio_netdev_kind {
        &Self::KIND
    }

    /// Registers kind `K` with its context `ctx`.
    pub fn new(ctx: Arc<K>) -> Result<Self> {
        let raw = Arc::into_raw(ctx);
        // SAFETY: the table is a constant of `K`'s type; `raw` stays valid
        // until `drop` (or below), after `rvio_netdev_kind_unregister()`,
        // after which no callback runs (rust/netdev_glue.h).
        if let Err(e) = to_result(unsafe {
            bindings::rvio_netdev_kind_register(Self::table(), raw as *mut c_void)
        }) {
            // SAFETY: from `into_raw` above; the C half keeps nothing.
            drop(unsafe { Arc::from_raw(raw) });
            return Err(e);
        }
        // INVARIANT: registered with `raw`.
        Ok(Self { ctx: raw })
    }

    /// # Safety
    ///
    /// Called by the C half with the registered context, a device
    /// allocated for the call, a NUL-terminated parent name and `opts`:
    /// null, or what [`add`] passed (a `K::Opts`).
    unsafe extern "C" fn newlink(
        ctx: *mut c_void,
        nd: *mut bindings::rvio_netdev,
        parent: *const c_char,
        opts: *const c_void,
    ) -> c_int {
        from_result(|| {
            let nd = NonNull::new(nd).ok_or(EINVAL)?;
            // SAFETY: the registered context (type invariant), alive
            // until the kind is unregistered, after which no callback runs.
            let this = unsafe { ArcBorrow::from_raw(ctx as *const K) };
            // SAFETY: the C half passes a NUL-terminated name.
            let parent = unsafe { CStr::from_char_ptr(parent) };
            // SAFETY: null or a `K::Opts` of `add`'s caller, alive during
            // the call (`add` checks that the registered kind is `K`).
            let opts = unsafe { opts.cast::<K::Opts>().as_ref() };
            // INVARIANT: allocated, not registered, its allocator frees it
            // after this call unless it is registered.
            let link = NewLink {
                nd,
                _call: PhantomData,
                _driver: PhantomData,
            };
            K::newlink(this, link, parent, opts)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the C half with the registered context and the `priv`
    /// of a device registered through [`KindRegistration::newlink`]: a
    /// `K::Dev` of a live [`Registration`].
    unsafe extern "C" fn dellink(ctx: *mut c_void, user: *mut c_void) {
        // SAFETY: as in `newlink`.
        let this = unsafe { ArcBorrow::from_raw(ctx as *const K) };
        // SAFETY: every device of the kind was registered by a
        // `Registration<K::Dev>` (`NewLink<K::Dev>`) with its `user`'s
        // pointer, which that registration keeps until it frees the
        // device, after this call.
        let dev = unsafe { &*(user as *const K::Dev) };
        K::dellink(this, dev);
    }
}

impl<K: Kind> Drop for KindRegistration<K> {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant); after this no callback of
        // the kind runs.
        unsafe { bindings::rvio_netdev_kind_unregister() };
        // SAFETY: from `Arc::into_raw` in `new`; the C half no longer has it.
        drop(unsafe { Arc::from_raw(self.ctx) });
    }
}

/// Module exit, after the last interface is freed (its owner dropped):
/// waits until a thread that ran an interface's last callback (on the
/// thread that unregistered it: `ip link del`'s) has left this module's
/// code, which module exit is about to free.
pub fn exit_barrier() {
    // SAFETY: no precondition; process context (module exit).
    unsafe { bindings::rvio_netdev_exit_barrier() };
}

/// Makes an interface of kind `K` named `name` (a name, or a pattern
/// such as `env%d`) over `parent`, as `ip link add` would, calling
/// [`Kind::newlink`] with `opts`: its result, or `ENODEV` if `K` is not
/// the registered kind. Process context, not under RTNL.
pub fn add<K: Kind>(name: &CStr, parent: &CStr, opts: &K::Opts) -> Result {
    // SAFETY: the strings are NUL-terminated; the C half calls `K`'s
    // `newlink` with `opts` during the call, only if the registered kind
    // is `K`'s table.
    to_result(unsafe {
        bindings::rvio_netdev_add(
            KindRegistration::<K>::table(),
            name.as_char_ptr(),
            parent.as_char_ptr(),
            opts as *const K::Opts as *const c_void,
        )
    })
}

/// A device [`Kind::newlink`] was handed: allocated (its name, MAC and
/// MTU as asked), not registered, freed by its allocator when the call
/// returns unless it was registered.
///
/// # Invariants
///
/// `nd` is such a device, valid for the call (`'a`).
pub struct NewLink<'a, T: NetDevice> {
    nd: NonNull<bindings::rvio_netdev>,
    _call: PhantomData<&'a ()>,
    _driver: PhantomData<fn(T)>,
}

/// An interface of driver `T`: bound to its device by
/// [`Registration::new`], registered by [`Registration::register`],
/// unregistered and freed when dropped.
///
/// # Invariants
///
/// `nd` is a device bound to `user`'s pointer, live until `drop` (an
/// unregistered one is dropped within [`Kind::newlink`], while its
/// allocator keeps it); `owner` is attached to it until `drop`;
/// `registered`: `rvio_netdev_register()` registered it with `user`'s
/// pointer and `VTable::<T>::VTABLE`.
pub struct Registration<T: NetDevice> {
    nd: NonNull<bindings::rvio_netdev>,
    owner: Owner<Dev>,
    user: Arc<T>,
    registered: bool,
}

// SAFETY: the C half may be used from any thread; `T: Send + Sync`.
unsafe impl<T: NetDevice> Send for Registration<T> {}
// SAFETY: `&Registration` gives `&Arc<T>` (`Sync`) and handles, whose
// calls the C half allows from any thread.
unsafe impl<T: NetDevice> Sync for Registration<T> {}

impl<T: NetDevice> Registration<T> {
    /// A driver with more counters than [`MAX_STATS`] does not build.
    const STATS_FIT: () = assert!(T::STATS.len() <= MAX_STATS, "more than MAX_STATS counters");
    /// Nor one whose [`NetDevice::TX_PACING_SHIFT`] is beyond any use (20:
    /// TSO frames of a microsecond of data; TCP shifts its pacing rate, a
    /// `u64`, by it).
    const PACING_FITS: () = assert!(T::TX_PACING_SHIFT <= 20, "TX_PACING_SHIFT above 20");

    /// Binds `user` to `link`'s device: its [`Handle`]s work from now on
    /// (received frames are dropped until it is registered and up). Drop
    /// it within [`Kind::newlink`] unless it gets registered.
    pub fn new(link: NewLink<'_, T>, user: Arc<T>) -> Result<Self> {
        let () = Self::STATS_FIT;
        let () = Self::PACING_FITS;
        // SAFETY: `link`'s device stays live while its allocator keeps it
        // (during `newlink`, in which an unregistered registration is
        // dropped), and once registered until `drop` frees it; `drop`
        // detaches the owner first. The C half's functions are callable
        // on an allocated device (rust/netdev_glue.h).
        let owner = unsafe { Owner::new(link.nd.as_ptr()) }?;
        // INVARIANT: bound, owner attached, not registered yet.
        Ok(Self {
            nd: link.nd,
            owner,
            user,
            registered: false,
        })
    }

    /// Registers the interface. Under RTNL (in [`Kind::newlink`]).
    pub fn register(&mut self) -> Result {
        if self.registered {
            return Err(EINVAL);
        }
        // SAFETY: the device is bound and unregistered (type invariant);
        // the table and its strings are constants of `T`'s type; `user`'s
        // pointer stays valid until `drop` frees the device (we hold the
        // `Arc`). `newlink` runs under RTNL.
        to_result(unsafe {
            bindings::rvio_netdev_register(
                self.nd.as_ptr(),
                VTable::<T>::build(),
                &*self.user as *const T as *mut c_void,
            )
        })?;
        // INVARIANT: registered with `user` and the table.
        self.registered = true;
        Ok(())
    }

    /// Unregisters the interface if it is registered: the stack sends it
    /// nothing more; handles stay usable (frames are dropped) until
    /// `drop`. Process context, not under RTNL.
    pub fn unregister(&self) {
        if self.registered {
            // SAFETY: registered (type invariant); the C half allows it
            // once or more, not under RTNL (the caller's duty).
            unsafe { bindings::rvio_netdev_unregister(self.nd.as_ptr()) };
        }
    }

    /// A handle of the data path.
    pub fn handle(&self) -> Handle {
        Handle {
            h: self.owner.handle(),
        }
    }

    /// The driver.
    pub fn user(&self) -> &Arc<T> {
        &self.user
    }

    /// Writes the interface's current name into `buf` (NUL-padded).
    pub fn name(&self, buf: &mut [u8; 16]) {
        // SAFETY: live (type invariant); the name is a NUL-terminated
        // string of at most 16 bytes in the `net_device`.
        let name = unsafe { CStr::from_char_ptr(bindings::rvio_netdev_name(self.nd.as_ptr())) };
        copy_name(name, buf);
    }
}

/// `name` into `buf`, NUL-padded (at most 15 bytes of it).
fn copy_name(name: &CStr, buf: &mut [u8; 16]) {
    let b = name.as_bytes();
    let n = b.len().min(15);
    buf.fill(0);
    buf[..n].copy_from_slice(&b[..n]);
}

impl<T: NetDevice> Drop for Registration<T> {
    fn drop(&mut self) {
        // Handles stop using the device, and those in a call have left.
        self.owner.detach();
        if self.registered {
            // SAFETY: registered (type invariant), and no handle uses it
            // any more; after this no callback runs, so `user` may go.
            // Not under RTNL: only an unregistered registration is
            // dropped in `newlink`.
            unsafe { bindings::rvio_netdev_free(self.nd.as_ptr()) };
        }
    }
}

/// The C half's table for `T`: one constant per type.
struct VTable<T: NetDevice>(PhantomData<T>);

impl<T: NetDevice> VTable<T> {
    const NAMES: [*const c_char; MAX_STATS] = {
        let mut names = [core::ptr::null(); MAX_STATS];
        let mut i = 0;
        while i < T::STATS.len() && i < MAX_STATS {
            names[i] = T::STATS[i].as_char_ptr();
            i += 1;
        }
        names
    };

    const VTABLE: bindings::rvio_netdev_vtable = bindings::rvio_netdev_vtable {
        driver: T::DRIVER.as_char_ptr(),
        stat_names: Self::build_names().as_ptr(),
        n_stats: if T::STATS.len() < MAX_STATS {
            T::STATS.len() as c_uint
        } else {
            MAX_STATS as c_uint
        },
        open: Some(Self::open),
        stop: Some(Self::stop),
        xmit: Some(Self::xmit),
        get_stats: Some(Self::get_stats),
        xmit_ref: if T::HAS_XMIT_REF {
            Some(Self::xmit_ref)
        } else {
            None
        },
        tx_pacing_shift: T::TX_PACING_SHIFT as c_uint,
    };

    const fn build_names() -> &'static [*const c_char; MAX_STATS] {
        &Self::NAMES
    }

    const fn build() -> &'static bindings::rvio_netdev_vtable {
        &Self::VTABLE
    }

    /// # Safety
    ///
    /// `user` is the pointer `Registration::new` registered, and the
    /// device is registered.
    unsafe fn user<'a>(user: *mut c_void) -> &'a T {
        // SAFETY: the `Registration` holds the `Arc` until after
        // `rvio_netdev_free()`, after which no callback runs
        // (rust/netdev_glue.h).
        unsafe { &*(user as *const T) }
    }

    /// # Safety
    ///
    /// Called by the C half's `ndo_open` with the registered pointer.
    unsafe extern "C" fn open(user: *mut c_void) -> c_int {
        from_result(|| {
            // SAFETY: called by `rvio_netdev_open()` for a registered device.
            unsafe { Self::user(user) }.open()?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the C half's `ndo_stop` with the registered pointer.
    unsafe extern "C" fn stop(user: *mut c_void) {
        // SAFETY: called by `rvio_netdev_stop()` for a registered device.
        unsafe { Self::user(user) }.stop();
    }

    /// # Safety
    ///
    /// Called by the C half's transmit work with the registered pointer,
    /// an skb of `len` bytes it owns and lends for the call, and 12 bytes
    /// of offloads.
    unsafe extern "C" fn xmit(
        user: *mut c_void,
        skb: *mut bindings::sk_buff,
        meta: *const c_void,
        len: c_uint,
    ) -> c_int {
        from_result(|| {
            let skb = NonNull::new(skb).ok_or(EINVAL)?;
            // INVARIANT: `rvio_netdev_tx_work()` owns the skb and does not
            // touch it until we return.
            let mut frame = TxFrame {
                skb,
                len,
                _lent: PhantomData,
            };
            // SAFETY: `rvio_netdev_tx_work()` passes its `struct
            // virtio_net_hdr_v1` (12 bytes, on its stack during the call).
            let meta = unsafe { &*meta.cast::<[u8; META_LEN]>() };
            // SAFETY: called by the transmit work of a registered device
            // (it is cancelled before the device is freed).
            unsafe { Self::user(user) }.xmit(&mut frame, meta)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the C half (`ndo_start_xmit` or its transmit work) with
    /// the registered pointer, an skb it hands over, 12 bytes of offloads,
    /// the frame's first 14 bytes and its length.
    unsafe extern "C" fn xmit_ref(
        user: *mut c_void,
        skb: *mut bindings::sk_buff,
        meta: *const c_void,
        eth: *const u8,
        len: c_uint,
    ) -> c_int {
        let Some(skb) = NonNull::new(skb) else {
            return EINVAL.to_errno();
        };
        // INVARIANT: the C half hands the skb over (rust/netdev_glue.h).
        let skb = TxSkb { skb, len };
        // SAFETY: `rvio_netdev_tx_ref()` passes 12 bytes of offloads and
        // 14 header bytes, valid during the call.
        let (meta, eth) = unsafe {
            (
                &*meta.cast::<[u8; META_LEN]>(),
                &*eth.cast::<[u8; ETH_HLEN]>(),
            )
        };
        // SAFETY: called for a registered device, with its pointer.
        match unsafe { Self::user(user) }.xmit_ref(skb, meta, eth) {
            XmitRef::Taken => 0,
            XmitRef::Copy(skb) => {
                // Back to the C half, which sends it by copy.
                let _ = skb.into_raw();
                bindings::rvio_netdev_tx_how_RVIO_NETDEV_TX_COPY as c_int
            }
            XmitRef::Busy(skb) => {
                // Back to the C half, which requeues it.
                let _ = skb.into_raw();
                EAGAIN.to_errno()
            }
        }
    }

    /// # Safety
    ///
    /// Called by the C half's ethtool op with the registered pointer and
    /// room for `n_stats` values.
    unsafe extern "C" fn get_stats(user: *mut c_void, vals: *mut u64) {
        let n = T::STATS.len().min(MAX_STATS);
        // SAFETY: `rvio_netdev_get_ethtool_stats()` passes ethtool's
        // array of `get_sset_count()` = `n_stats` = `n` values.
        let out = unsafe { core::slice::from_raw_parts_mut(vals, n) };
        out.fill(0);
        // SAFETY: called by ethtool for a registered device.
        unsafe { Self::user(user) }.stats(out);
    }
}
