// SPDX-License-Identifier: GPL-2.0

//! `vmpi`: the transport-independent part of VMPI (the paper's VMPI-HL).
//! Transports (`vmpi_guest`, `vmpi_host`) register each device through the
//! C-ABI of `include/rvio/vmpi.h` and move fragments between their rings
//! and this module, which runs the protocol ([`proto::endpoint`]), keeps
//! the channels' queues and gives each device a char device `/dev/vmpiN`
//! (`include/uapi/rvio/vmpi.h`).
//!
//! Locking: one mutex per device covers the protocol state and every queue
//! of that device. Transports call in holding their own lock; this module
//! calls a transport only through `ops->kick`, which schedules work.

use core::sync::atomic::{AtomicU32, Ordering};
use kernel::ffi::{c_int, c_uint, c_void};
use kernel::fmt;
use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::{new_mutex, Arc, ArcBorrow, Mutex};
use kernel::uaccess::{UserSlice, UserSliceReader, UserSliceWriter};

#[path = "../rust/bindings.rs"]
mod bindings;
#[path = "../rust/errno.rs"]
pub mod errno;
// `pub`: the abstraction's whole API stays reachable (unreachable_pub).
#[path = "../rust/miscdev.rs"]
pub mod miscdev;
// Pure logic, shared with the host crate rust/pure.
#[path = "proto/mod.rs"]
pub mod proto;

use miscdev::{POLLERR, POLLIN, POLLOUT};
use proto::ctrl::AllocResult;
use proto::endpoint::{Endpoint, Received};
use proto::link::{Chan, Event, Role};
use proto::wire::{next_fragment, Config, DropReason, Header, CONFIG_LEN, HDR_LEN};

module! {
    type: VmpiCore,
    name: "vmpi",
    author: "rvio developers",
    description: "VMPI: channels, control protocol and char devices over VMPI transports",
    license: "GPL",
}

/// SDUs a raw channel's receive queue holds.
const RAW_RXQ_LEN: usize = 64;
/// SDUs waiting to be sent, per device.
const TXQ_LEN: usize = 256;

/// A bounded FIFO.
struct Ring<T> {
    slots: KVec<Option<T>>,
    head: usize,
    count: usize,
}

impl<T> Ring<T> {
    fn new(cap: usize) -> Result<Self> {
        let mut slots = KVec::with_capacity(cap, GFP_KERNEL)?;
        for _ in 0..cap {
            slots.push(None, GFP_KERNEL)?;
        }
        Ok(Self { slots, head: 0, count: 0 })
    }
    fn is_full(&self) -> bool {
        self.count == self.slots.len()
    }
    fn is_empty(&self) -> bool {
        self.count == 0
    }
    fn push(&mut self, v: T) -> core::result::Result<(), T> {
        if self.is_full() {
            return Err(v);
        }
        let i = (self.head + self.count) % self.slots.len();
        self.slots[i] = Some(v);
        self.count += 1;
        Ok(())
    }
    fn front_mut(&mut self) -> Option<&mut T> {
        if self.count == 0 {
            return None;
        }
        self.slots[self.head].as_mut()
    }
    fn pop(&mut self) -> Option<T> {
        if self.count == 0 {
            return None;
        }
        let v = self.slots[self.head].take();
        self.head = (self.head + 1) % self.slots.len();
        self.count -= 1;
        v
    }
    fn clear(&mut self) {
        while self.pop().is_some() {}
    }
}

/// An SDU waiting to be sent: its channel, bytes, and how much of it the
/// transport has taken (fragments).
struct TxSdu {
    channel: u16,
    data: KVec<u8>,
    sent: usize,
}

/// Everything of a device that its mutex covers.
struct Inner {
    /// The transport is registered (`false` once it went away).
    alive: bool,
    ep: Endpoint,
    chans: KVec<Chan>,
    /// The message being reassembled.
    msg: KVec<u8>,
    /// Receive queues of bound channels, by channel.
    rx: KVec<Option<Ring<KVec<u8>>>>,
    tx: Ring<TxSdu>,
    /// Whether a control message is being fragmented (it goes first).
    ctrl_partial: bool,
    misc: Option<miscdev::Registration<Dev>>,
}

/// The transport's ops and private pointer, used only while alive.
struct Ops {
    ops: *const bindings::vmpi_transport_ops,
    priv_: *mut c_void,
}

/// One VMPI device (one side of it).
#[pin_data]
struct Dev {
    id: c_int,
    role: Role,
    /// The transport's name of the device (vDPA or virtio device).
    transport: CString,
    cfg: Config,
    ops: Ops,
    #[pin]
    inner: Mutex<Inner>,
}

// SAFETY: `ops` is used only under `inner`'s lock while the transport is
// registered, which the transport guarantees to be any-context safe
// (`include/rvio/vmpi.h`); everything else is `Send`.
unsafe impl Send for Dev {}
// SAFETY: as above; shared access goes through `inner`.
unsafe impl Sync for Dev {}

fn random_epoch() -> u32 {
    // SAFETY: no preconditions.
    unsafe { bindings::get_random_u32() }.max(1)
}

impl Dev {
    /// Asks the transport for a pass (it calls `vmpi_transport_tx`).
    fn kick(&self, inner: &Inner) {
        if inner.alive {
            // SAFETY: while alive the transport's ops and priv are valid
            // and `kick` may be called with our lock held (it only
            // schedules work).
            unsafe {
                if let Some(k) = (*self.ops.ops).kick {
                    k(self.ops.priv_);
                }
            }
        }
    }

    fn wake(inner: &Inner) {
        if let Some(m) = &inner.misc {
            m.wake();
        }
    }

    /// After a reset of the link: raw bindings survive it.
    fn rebind_raw(inner: &mut Inner) {
        let Inner { ep, chans, rx, .. } = inner;
        for (c, q) in rx.iter().enumerate() {
            if q.is_some() {
                let _ = ep.link.bind_raw(chans, c as u16);
            }
        }
    }

    fn restart(inner: &mut Inner) {
        let Inner { ep, chans, tx, rx, .. } = inner;
        ep.restart(chans, random_epoch());
        tx.clear();
        for q in rx.iter_mut().flatten() {
            q.clear();
        }
        inner.ctrl_partial = false;
        Self::rebind_raw(inner);
    }

    fn rx(&self, frag: &[u8]) {
        let mut g = self.inner.lock();
        let inner = &mut *g;
        if !inner.alive {
            return;
        }
        let got = {
            let Inner { ep, chans, msg, .. } = inner;
            ep.on_fragment(chans, frag, msg)
        };
        match got {
            Received::Data { channel, len } => {
                let copy = KVec::with_capacity(len, GFP_KERNEL).and_then(|mut v| {
                    v.extend_from_slice(&inner.msg[..len], GFP_KERNEL)?;
                    Ok(v)
                });
                let queued = match (inner.rx.get_mut(usize::from(channel)), copy) {
                    (Some(Some(q)), Ok(v)) => q.push(v).is_ok(),
                    _ => false,
                };
                if !queued {
                    inner.ep.counters.drop_one(DropReason::RxFull);
                }
                Self::wake(inner);
            }
            Received::Event(Event::LinkUp) => {
                pr_info!("vmpi{}: link up ({})\n", self.id, role_name(self.role));
                Self::rebind_raw(inner);
                Self::wake(inner);
            }
            Received::Event(Event::PeerRestarted) => {
                // Not logged: a peer could flood the log with HELLOs.
                Self::rebind_raw(inner);
                Self::wake(inner);
            }
            Received::Event(Event::Incoming { channel, .. }) => {
                // No application registry yet (flow allocation is not
                // wired to the char device): every name is unknown.
                let Inner { ep, chans, .. } = inner;
                if let Ok(m) = ep.link.refuse(chans, channel, AllocResult::NoSuchApp) {
                    ep.send_ctrl(&m);
                }
            }
            Received::Event(_) | Received::Nothing => {}
        }
        if !inner.ep.outbox.is_empty() {
            self.kick(inner);
        }
    }

    fn tx(&self, buf: &mut [u8]) -> Result<usize> {
        let mut g = self.inner.lock();
        let inner = &mut *g;
        if !inner.alive {
            return Ok(0);
        }
        // rxq buffers (written by the host) have a minimum; the guest
        // sizes each txq buffer to the fragment (a bare header for an
        // empty SDU).
        let min = if self.role == Role::Device { self.cfg.min_rx_buf } else { HDR_LEN as u32 };
        let data_partial = inner.tx.front_mut().is_some_and(|s| s.sent > 0);
        if !data_partial && (inner.ctrl_partial || !inner.ep.outbox.is_empty()) {
            let n = inner.ep.outbox.next_fragment(buf, min).ok_or_else(errno::emsgsize)?;
            inner.ctrl_partial = Header::parse(buf).is_ok_and(|h| h.more);
            return Ok(n);
        }
        let Some(sdu) = inner.tx.front_mut() else { return Ok(0) };
        let (n, more) = next_fragment(sdu.data.len() - sdu.sent, buf.len(), min).ok_or_else(errno::emsgsize)?;
        buf[..HDR_LEN].copy_from_slice(&Header { channel: sdu.channel, more }.to_bytes());
        buf[HDR_LEN..HDR_LEN + n].copy_from_slice(&sdu.data[sdu.sent..sdu.sent + n]);
        sdu.sent += n;
        if !more {
            let len = sdu.data.len();
            inner.tx.pop();
            inner.ep.counters.tx_sdus += 1;
            inner.ep.counters.tx_bytes += len as u64;
            // Room in the send queue.
            Self::wake(inner);
        }
        Ok(HDR_LEN + n)
    }

    fn tx_len(&self) -> usize {
        let mut g = self.inner.lock();
        let inner = &mut *g;
        if !inner.alive {
            return 0;
        }
        let data_partial = inner.tx.front_mut().is_some_and(|s| s.sent > 0);
        if !data_partial && (inner.ctrl_partial || !inner.ep.outbox.is_empty()) {
            return HDR_LEN + inner.ep.outbox.head_remaining();
        }
        inner.tx.front_mut().map_or(0, |s| HDR_LEN + s.data.len() - s.sent)
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Device => "host",
        Role::Driver => "guest",
    }
}

/// An open `/dev/vmpiN`.
struct File {
    dev: Arc<Dev>,
    /// The bound channel, 0 if none.
    channel: AtomicU32,
}

impl File {
    fn channel(&self) -> Result<u16> {
        match self.channel.load(Ordering::Acquire) {
            0 => Err(errno::enotconn()),
            c => Ok(c as u16),
        }
    }
}

/// Names of the sysfs attributes (`docs/vmpi-sysfs.md`), in `show` order;
/// the drop counters follow, one per `DropReason`.
const ATTRS: [&kernel::str::CStr; 13 + DropReason::COUNT] = [
    kernel::c_str!("id"),
    kernel::c_str!("role"),
    kernel::c_str!("transport"),
    kernel::c_str!("channels"),
    kernel::c_str!("max_sdu"),
    kernel::c_str!("link"),
    kernel::c_str!("bound_channels"),
    kernel::c_str!("rx_sdus"),
    kernel::c_str!("rx_bytes"),
    kernel::c_str!("tx_sdus"),
    kernel::c_str!("tx_bytes"),
    kernel::c_str!("ctrl_rx"),
    kernel::c_str!("ctrl_dropped"),
    kernel::c_str!("drops_bad_header"),
    kernel::c_str!("drops_bad_channel"),
    kernel::c_str!("drops_oversized"),
    kernel::c_str!("drops_bad_fragment"),
    kernel::c_str!("drops_bad_desc"),
    kernel::c_str!("drops_no_credit"),
    kernel::c_str!("drops_bad_control"),
    kernel::c_str!("drops_rx_full"),
];

impl miscdev::FileOps for Dev {
    type File = File;
    const ATTRS: &'static [&'static kernel::str::CStr] = &ATTRS;

    fn show(&self, idx: usize, out: &mut miscdev::SysfsBuf<'_>) {
        use core::fmt::Write;
        let g = self.inner.lock();
        let c = &g.ep.counters;
        let _ = match idx {
            0 => writeln!(out, "{}", self.id),
            1 => writeln!(out, "{}", role_name(self.role)),
            2 => writeln!(out, "{}", &*self.transport),
            3 => writeln!(out, "{}", self.cfg.num_channels),
            4 => writeln!(out, "{}", self.cfg.max_sdu),
            5 => writeln!(out, "{}", if g.alive && g.ep.link.is_up() { "up" } else { "down" }),
            6 => writeln!(out, "{}", g.rx.iter().filter(|q| q.is_some()).count()),
            7 => writeln!(out, "{}", c.rx_sdus),
            8 => writeln!(out, "{}", c.rx_bytes),
            9 => writeln!(out, "{}", c.tx_sdus),
            10 => writeln!(out, "{}", c.tx_bytes),
            11 => writeln!(out, "{}", c.ctrl_rx),
            12 => writeln!(out, "{}", c.ctrl_dropped),
            i => writeln!(out, "{}", c.drops.get(i - 13).copied().unwrap_or(0)),
        };
    }

    fn open(dev: ArcBorrow<'_, Self>) -> Result<File> {
        Ok(File { dev: dev.into(), channel: AtomicU32::new(0) })
    }

    fn read(file: &File, out: &mut UserSliceWriter) -> Result<usize> {
        let ch = file.channel()?;
        let sdu = {
            let mut g = file.dev.inner.lock();
            if !g.alive {
                return Err(ENODEV);
            }
            let q = g.rx.get_mut(usize::from(ch)).and_then(|q| q.as_mut()).ok_or_else(errno::enotconn)?;
            match q.front_mut() {
                None => return Err(EAGAIN),
                Some(s) if s.len() > out.len() => return Err(errno::emsgsize()),
                Some(_) => {}
            }
            q.pop().ok_or(EAGAIN)?
        };
        out.write_slice(&sdu)?;
        Ok(sdu.len())
    }

    fn write(file: &File, input: &mut UserSliceReader, len: usize) -> Result<usize> {
        let ch = file.channel()?;
        if len > file.dev.cfg.max_sdu as usize {
            return Err(errno::emsgsize());
        }
        let mut data = KVec::from_elem(0u8, len, GFP_KERNEL)?;
        input.read_slice(&mut data)?;
        let mut g = file.dev.inner.lock();
        let inner = &mut *g;
        if !inner.alive {
            return Err(ENODEV);
        }
        match inner.ep.link.can_send(&inner.chans, ch, len) {
            Ok(true) => {}
            Ok(false) => return Err(EAGAIN),
            Err(_) => return Err(errno::econnreset()),
        }
        if inner.tx.push(TxSdu { channel: ch, data, sent: 0 }).is_err() {
            return Err(EAGAIN);
        }
        inner.ep.link.sent(&mut inner.chans, ch, len);
        file.dev.kick(inner);
        Ok(len)
    }

    fn poll(file: &File) -> u32 {
        let g = file.dev.inner.lock();
        if !g.alive {
            return POLLERR;
        }
        let mut mask = 0;
        if !g.tx.is_full() {
            mask |= POLLOUT;
        }
        if let Ok(ch) = file.channel() {
            if g.rx.get(usize::from(ch)).and_then(|q| q.as_ref()).is_some_and(|q| !q.is_empty()) {
                mask |= POLLIN;
            }
        }
        mask
    }

    fn ioctl(file: &File, cmd: u32, arg: usize) -> Result<isize> {
        if cmd != kernel::ioctl::_IOW::<u32>(bindings::VMPI_IOC_MAGIC, 1) {
            return Err(ENOTTY);
        }
        let mut b = [0u8; 4];
        UserSlice::new(arg, 4).reader().read_slice(&mut b)?;
        let want = u32::from_ne_bytes(b);
        let ch = u16::try_from(want).map_err(|_| EINVAL)?;
        if ch == 0 || ch >= file.dev.cfg.num_channels || file.channel.load(Ordering::Acquire) != 0 {
            return Err(EINVAL);
        }
        let q = Ring::new(RAW_RXQ_LEN)?;
        let mut g = file.dev.inner.lock();
        let inner = &mut *g;
        if !inner.alive {
            return Err(ENODEV);
        }
        if inner.rx.get(usize::from(ch)).is_some_and(|q| q.is_some()) {
            return Err(EBUSY);
        }
        inner.ep.link.bind_raw(&mut inner.chans, ch).map_err(|_| EBUSY)?;
        if file.channel.compare_exchange(0, want, Ordering::AcqRel, Ordering::Acquire).is_err() {
            // Another thread bound this file meanwhile.
            let _ = inner.ep.link.close(&mut inner.chans, ch);
            return Err(EINVAL);
        }
        inner.rx[usize::from(ch)] = Some(q);
        Ok(0)
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let Ok(ch) = self.channel() else { return };
        let mut g = self.dev.inner.lock();
        let inner = &mut *g;
        if let Some(q) = inner.rx.get_mut(usize::from(ch)) {
            *q = None;
        }
        let _ = inner.ep.link.close(&mut inner.chans, ch);
    }
}

// --- the C-ABI (include/rvio/vmpi.h), exported by vmpi_core_exports.c ---------

/// # Safety
///
/// `t` is a handle returned by `vmpi_transport_register` and not yet
/// unregistered.
unsafe fn dev<'a>(t: *mut bindings::vmpi_transport) -> ArcBorrow<'a, Dev> {
    // SAFETY: the handle is `Arc::into_raw` of a `Dev` whose count it
    // holds until `vmpi_transport_unregister`.
    unsafe { ArcBorrow::from_raw(t as *const Dev) }
}

fn register(role: Role, transport: CString, cfg: Config, ops: Ops) -> Result<Arc<Dev>> {
    // SAFETY: no preconditions.
    let id = unsafe { bindings::vmpi_core_id_alloc() };
    if id < 0 {
        return Err(Error::from_errno(id));
    }
    let r = (|| {
        let n = usize::from(cfg.num_channels);
        let mut chans = KVec::with_capacity(n, GFP_KERNEL)?;
        let mut rx = KVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            chans.push(Chan::Free, GFP_KERNEL)?;
            rx.push(None, GFP_KERNEL)?;
        }
        let mut inner = Inner {
            alive: true,
            ep: Endpoint::new(role, cfg, random_epoch()),
            chans,
            msg: KVec::from_elem(0u8, cfg.max_sdu as usize, GFP_KERNEL)?,
            rx,
            tx: Ring::new(TXQ_LEN)?,
            ctrl_partial: false,
            misc: None,
        };
        Dev::restart(&mut inner);
        let dev = Arc::pin_init(
            pin_init!(Dev { id, role, transport, cfg, ops, inner <- new_mutex!(inner, "vmpi::Dev::inner") }),
            GFP_KERNEL,
        )?;
        let name = CString::try_from_fmt(fmt!("vmpi{}", id))?;
        let misc = miscdev::Registration::new(&name, dev.clone())?;
        dev.inner.lock().misc = Some(misc);
        pr_info!(
            "vmpi{}: {} side of {}, {} channels\n",
            id,
            role_name(role),
            &*dev.transport,
            cfg.num_channels
        );
        Ok(dev)
    })();
    if r.is_err() {
        // SAFETY: `id` came from `vmpi_core_id_alloc` and is unused.
        unsafe { bindings::vmpi_core_id_free(id) };
    }
    r
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `name` is NUL-terminated; `cfg` is valid for `cfg_len` reads; `ops` and
/// `priv_` stay valid until
/// `vmpi_transport_unregister` (and `ops->kick` may be called from any
/// context); `err` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_register(
    role: c_uint,
    name: *const kernel::ffi::c_char,
    cfg: *const c_void,
    cfg_len: usize,
    ops: *const bindings::vmpi_transport_ops,
    priv_: *mut c_void,
    err: *mut c_int,
) -> *mut bindings::vmpi_transport {
    let role = match role {
        bindings::vmpi_role_VMPI_ROLE_HOST => Role::Device,
        bindings::vmpi_role_VMPI_ROLE_GUEST => Role::Driver,
        _ => Role::Device,
    };
    let r = (|| {
        if name.is_null() || cfg.is_null() || ops.is_null() || cfg_len < CONFIG_LEN {
            return Err(EINVAL);
        }
        // SAFETY: `name` is a NUL-terminated string (the header's contract).
        let name = unsafe { kernel::str::CStr::from_char_ptr(name) };
        let name = CString::try_from_fmt(fmt!("{}", name))?;
        let mut raw = [0u8; CONFIG_LEN];
        // SAFETY: `cfg` is valid for `cfg_len >= CONFIG_LEN` reads.
        raw.copy_from_slice(unsafe { core::slice::from_raw_parts(cfg.cast::<u8>(), CONFIG_LEN) });
        let cfg = Config::from_bytes(&raw).map_err(|_| EINVAL)?;
        register(role, name, cfg, Ops { ops, priv_ })
    })();
    match r {
        Ok(dev) => Arc::into_raw(dev) as *mut bindings::vmpi_transport,
        Err(e) => {
            // SAFETY: `err` is valid for a write.
            unsafe { *err = e.to_errno() };
            core::ptr::null_mut()
        }
    }
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `t` is a registered handle; it is not used after this.
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_unregister(t: *mut bindings::vmpi_transport) {
    // SAFETY: by the function's contract we take back the handle's count.
    let dev = unsafe { Arc::from_raw(t as *const Dev) };
    let misc = {
        let mut g = dev.inner.lock();
        g.alive = false;
        Dev::wake(&g);
        g.misc.take()
    };
    // Removes /dev/vmpiN and wakes blocked callers (they see ENODEV);
    // dropping it breaks the device <-> registration cycle.
    drop(misc);
    pr_info!("vmpi{}: removed\n", dev.id);
    // SAFETY: the id came from `vmpi_core_id_alloc`; the node is gone.
    unsafe { bindings::vmpi_core_id_free(dev.id) };
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `t` is a registered handle.
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_restart(t: *mut bindings::vmpi_transport) {
    // SAFETY: by the function's contract.
    let dev = unsafe { dev(t) };
    let mut g = dev.inner.lock();
    Dev::restart(&mut g);
    Dev::wake(&g);
    dev.kick(&g);
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `t` is a registered handle; `frag` is valid for `len` reads.
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_rx(t: *mut bindings::vmpi_transport, frag: *const c_void, len: usize) {
    if frag.is_null() {
        return;
    }
    // SAFETY: by the function's contract.
    let (dev, frag) = unsafe { (dev(t), core::slice::from_raw_parts(frag.cast::<u8>(), len)) };
    dev.rx(frag);
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `t` is a registered handle; `buf` is valid for `room` writes.
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_tx(t: *mut bindings::vmpi_transport, buf: *mut c_void, room: usize) -> isize {
    if buf.is_null() {
        return EINVAL.to_errno() as isize;
    }
    // SAFETY: by the function's contract.
    let (dev, buf) = unsafe { (dev(t), core::slice::from_raw_parts_mut(buf.cast::<u8>(), room)) };
    match dev.tx(buf) {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `t` is a registered handle.
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_tx_len(t: *mut bindings::vmpi_transport) -> usize {
    // SAFETY: by the function's contract.
    unsafe { dev(t) }.tx_len()
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `t` is a registered handle.
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_drop(t: *mut bindings::vmpi_transport, reason: c_uint) {
    // SAFETY: by the function's contract.
    let dev = unsafe { dev(t) };
    if let Some(&why) = DropReason::ALL.get(reason as usize) {
        let mut g = dev.inner.lock();
        g.ep.counters.drop_one(why);
        // The lost buffer may have been part of a message.
        g.ep.rx_lost();
    }
}

// The header's declarations (through bindgen) and these definitions must
// agree: each pair must coerce to one function pointer type.
const _: [unsafe extern "C" fn(
    c_uint,
    *const kernel::ffi::c_char,
    *const c_void,
    usize,
    *const bindings::vmpi_transport_ops,
    *mut c_void,
    *mut c_int,
) -> *mut bindings::vmpi_transport; 2] = [bindings::vmpi_transport_register, vmpi_transport_register];
const _: [unsafe extern "C" fn(*mut bindings::vmpi_transport); 3] =
    [bindings::vmpi_transport_unregister, vmpi_transport_unregister, vmpi_transport_restart];
const _: [unsafe extern "C" fn(*mut bindings::vmpi_transport, *const c_void, usize); 2] =
    [bindings::vmpi_transport_rx, vmpi_transport_rx];
const _: [unsafe extern "C" fn(*mut bindings::vmpi_transport, *mut c_void, usize) -> isize; 2] =
    [bindings::vmpi_transport_tx, vmpi_transport_tx];
const _: [unsafe extern "C" fn(*mut bindings::vmpi_transport) -> usize; 2] =
    [bindings::vmpi_transport_tx_len, vmpi_transport_tx_len];
const _: [unsafe extern "C" fn(*mut bindings::vmpi_transport, c_uint); 2] =
    [bindings::vmpi_transport_drop, vmpi_transport_drop];
const _: [unsafe extern "C" fn(*mut bindings::vmpi_transport); 2] =
    [bindings::vmpi_transport_restart, vmpi_transport_restart];

struct VmpiCore;

impl kernel::Module for VmpiCore {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("loaded, ABI version {}\n", bindings::VMPI_ABI_VERSION);
        Ok(VmpiCore)
    }
}
