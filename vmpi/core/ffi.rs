// SPDX-License-Identifier: GPL-2.0

//! The C-ABI of `include/rvio/vmpi.h` (exported by `vmpi_core_exports.c`):
//! every `#[no_mangle]` function, and the compile-time checks that they
//! match the header.

use core::sync::atomic::Ordering;
use kernel::error::from_result;
use kernel::ffi::{c_char, c_int, c_uint, c_void};
use kernel::fmt;
use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::{Arc, ArcBorrow};

use crate::bindings;
use crate::buf_cache::{self, Bytes};
use crate::device::{register, Dev, Kick, Registered};
use crate::errno;
use crate::grants::{check_copy, check_grant, Domains, TransportGate, MAX_FRAME, MIN_FRAME};
use crate::kernel_port::{port_open, KernelPort};
use crate::proto::link::Role;
use crate::proto::wire::{Config, DropReason, CONFIG_LEN};
use crate::registry::find;

/// # Safety
///
/// `t` is a handle returned by `vmpi_transport_register` and not yet
/// unregistered.
unsafe fn dev<'a>(t: *mut bindings::vmpi_transport) -> ArcBorrow<'a, Dev> {
    // SAFETY: a handle is `KBox::into_raw` of a `Registered`
    // (`vmpi_transport_register` below), freed only by
    // `vmpi_transport_unregister`, which the caller has not called yet.
    let reg = unsafe { &*(t as *const Registered) };
    reg.dev.as_arc_borrow()
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `name` is NUL-terminated; `cfg` is valid for `cfg_len` reads; `ops` and
/// `priv_` stay valid until `vmpi_transport_unregister` (and `ops->kick`,
/// `ops->bind_domain`, `ops->unbind_domain` and `ops->domain_stats` may be
/// called in process context, `ops->grant` and `ops->copy` in any context).
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_register(
    role: c_uint,
    name: *const c_char,
    cfg: *const c_void,
    cfg_len: usize,
    ops: *const bindings::vmpi_transport_ops,
    priv_: *mut c_void,
) -> *mut bindings::vmpi_transport {
    let r = (|| {
        let role = Role::from_abi(role).ok_or(EINVAL)?;
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
        // SAFETY: the caller keeps `ops` and `priv_` valid, and `ops->kick`
        // callable in process context, until `vmpi_transport_unregister`
        // (see `# Safety`), which drops the `Registered` that owns the
        // device's `Kick`.
        let kick = unsafe { Kick::new(ops, priv_) };
        // SAFETY: as for `kick`: valid until `vmpi_transport_unregister`,
        // which closes the gate (`Dev::shut_down`) before it returns, with
        // `ops->kick`, `ops->grant`, `ops->copy` and `ops->deliver`
        // callable in any context (include/rvio/vmpi.h).
        let gate = unsafe { TransportGate::new(ops, priv_) };
        // SAFETY: as for `kick`: valid until `vmpi_transport_unregister`,
        // which shuts the domain ops down (`Dev::shut_down`) before it
        // returns, with the domain ops callable in process context.
        let domains = unsafe { Domains::new(ops, priv_) };
        register(role, name, cfg, kick, gate, domains)
    })();
    match r {
        Ok(reg) => KBox::into_raw(reg).cast(),
        Err(e) => e.to_ptr(),
    }
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `t` is a registered handle; it is not used after this.
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_unregister(t: *mut bindings::vmpi_transport) {
    // SAFETY: the caller guarantees that `t` is a registered handle, not used
    // after this (see `# Safety`; include/rvio/vmpi.h). A handle is
    // `KBox::into_raw` of a `Registered` (`vmpi_transport_register` above);
    // this takes the box back, once. Dropping it shuts the device down and
    // removes `/dev/vmpiN` (`Registered`'s drop).
    drop(unsafe { KBox::from_raw(t.cast::<Registered>()) });
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `t` is a registered handle.
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_restart(t: *mut bindings::vmpi_transport) {
    // SAFETY: the caller guarantees that `t` is a registered handle (see
    // `# Safety`; include/rvio/vmpi.h: a handle from
    // `vmpi_transport_register()` not yet unregistered), which is what `dev`
    // needs.
    let dev = unsafe { dev(t) };
    let mut g = dev.inner.lock();
    // What waits to be sent goes, as the send queue does in `restart`.
    dev.forget_any_context(&mut g, None);
    g.restart();
    g.ep.counters.restarts += 1;
    Dev::wake(dev, &g);
    g.kick();
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `t` is a registered handle; `buf` is valid for reads and writes, and its
/// `data`, if not NULL, with `len` and `cap`, are the raw parts of a
/// `Bytes` that the caller owns (it gives it up if this returns `true`, and
/// owns what `buf` holds then). Its bytes are zeros or the device's (not a
/// safety condition, but what readers may be shown: include/rvio/vmpi.h).
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_rx_buf(
    t: *mut bindings::vmpi_transport,
    buf: *mut bindings::vmpi_sdu,
    len: usize,
) -> bool {
    if buf.is_null() {
        return false;
    }
    // SAFETY: the caller guarantees that `t` is a registered handle, which is
    // what `dev` needs, and that `buf` is valid for reads and writes (see
    // `# Safety`; include/rvio/vmpi.h); `buf` is not NULL (checked above).
    let (dev, b) = unsafe { (dev(t), &mut *buf) };
    if b.data.is_null() || b.cap == 0 || b.len > b.cap {
        // No payload part (a fragment longer than its header is a bad
        // buffer, counted), or not a buffer's raw parts: not touched.
        Dev::rx_buf(dev, &b.hdr, &mut Bytes::new(), len);
        return false;
    }
    // SAFETY: (data, len, cap) are the raw parts of a `Bytes` the caller
    // owns (see `# Safety`); it is given back below unless the core took it.
    let mut data = unsafe { Bytes::from_raw_parts(b.data.cast::<u8>(), b.len, b.cap) };
    let cap = b.cap;
    let taken = Dev::rx_buf(dev, &b.hdr, &mut data, len);
    if taken {
        // Its place: a receive buffer of its size read before, if one is
        // kept (its bytes are the device's or zeros), else none.
        data = dev.rx_buf_again(cap).unwrap_or_else(Bytes::new);
    }
    let (p, l, c) = data.into_raw_parts();
    (b.data, b.len, b.cap) = if c == 0 {
        (core::ptr::null_mut(), 0, 0)
    } else {
        (p.cast(), l, c)
    };
    taken
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `t` is a registered handle; `read`, with `ctx`, copies at most the
/// `len` bytes asked for to the destination it is given, and returns `len`
/// only once it wrote all of them.
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_rx_from(
    t: *mut bindings::vmpi_transport,
    len: usize,
    read: bindings::vmpi_frag_read_t,
    ctx: *mut c_void,
) {
    let Some(read) = read else {
        return;
    };
    // SAFETY: the caller guarantees that `t` is a registered handle, which is
    // what `dev` needs (see `# Safety`; include/rvio/vmpi.h).
    let dev = unsafe { dev(t) };
    let mut read = |dst: &mut [core::mem::MaybeUninit<u8>]| {
        // SAFETY: `dst` is valid for `dst.len()` writes, which is what
        // `read` asks of its destination; `ctx` is the caller's (see
        // `# Safety`).
        let n = unsafe { read(ctx, dst.as_mut_ptr().cast(), dst.len()) };
        match usize::try_from(n) {
            Ok(n) if n == dst.len() => Ok(()),
            _ => Err(EFAULT),
        }
    };
    // SAFETY: `read` succeeds only when the transport's `read` returned
    // the whole length, having written all of it (see `# Safety`).
    unsafe { Dev::rx_from(dev, len, &mut read) };
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `t` is a registered handle; `buf` is valid for `room` writes.
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_tx(
    t: *mut bindings::vmpi_transport,
    buf: *mut c_void,
    room: usize,
) -> isize {
    from_result(|| {
        if buf.is_null() {
            return Err(EINVAL);
        }
        // SAFETY: the caller guarantees that `t` is a registered handle,
        // which is what `dev` needs, and that `buf` is valid for `room`
        // writes (see `# Safety`; include/rvio/vmpi.h: "a ring buffer of
        // @room bytes"); `buf` is not NULL (checked above).
        let (dev, buf) = unsafe {
            (
                dev(t),
                core::slice::from_raw_parts_mut(buf.cast::<u8>(), room),
            )
        };
        Ok(Dev::tx(dev, buf)? as isize)
    })
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `t` is a registered handle; `write` reads at most the `len` bytes it is
/// given, with `ctx`.
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_tx_to(
    t: *mut bindings::vmpi_transport,
    room: usize,
    write: bindings::vmpi_frag_write_t,
    ctx: *mut c_void,
) -> isize {
    from_result(|| {
        let write = write.ok_or(EINVAL)?;
        // SAFETY: the caller guarantees that `t` is a registered handle,
        // which is what `dev` needs (see `# Safety`; include/rvio/vmpi.h).
        let dev = unsafe { dev(t) };
        let n = Dev::tx_to(dev, room, &mut |part| {
            // SAFETY: `part` is valid for `part.len()` reads, which is what
            // `write` asks of its source; `ctx` is the caller's (see
            // `# Safety`).
            let n = unsafe { write(ctx, part.as_ptr().cast(), part.len()) };
            match usize::try_from(n) {
                Ok(n) if n == part.len() => Ok(()),
                _ => Err(EFAULT),
            }
        })?;
        Ok(n as isize)
    })
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `t` is a registered handle; `sdu` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_tx_take(
    t: *mut bindings::vmpi_transport,
    max_len: usize,
    sdu: *mut bindings::vmpi_sdu,
) -> c_int {
    from_result(|| {
        if sdu.is_null() {
            return Err(EINVAL);
        }
        // SAFETY: the caller guarantees that `t` is a registered handle (see
        // `# Safety`; include/rvio/vmpi.h), which is what `dev` needs.
        let dev = unsafe { dev(t) };
        if dev.role != Role::Guest {
            return Err(EINVAL);
        }
        let Some((hdr, data)) = Dev::tx_take(dev, max_len) else {
            return Ok(0);
        };
        let (data, len, cap) = data.into_raw_parts();
        // SAFETY: the caller guarantees that `sdu` is valid for a write (see
        // `# Safety`), and it is not NULL (checked above); the taker owns
        // the bytes from here (`struct vmpi_sdu` in include/rvio/vmpi.h).
        unsafe {
            sdu.write(bindings::vmpi_sdu {
                hdr,
                data: data.cast(),
                len,
                cap,
            })
        };
        Ok(1)
    })
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `t` is a registered handle; `sdu` is valid for reads and came from
/// `vmpi_transport_tx_take` of any device (the caller gives up its bytes).
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_tx_done(
    t: *mut bindings::vmpi_transport,
    sdu: *mut bindings::vmpi_sdu,
) {
    if sdu.is_null() {
        return;
    }
    // SAFETY: the caller guarantees that `t` is a registered handle, which is
    // what `dev` needs, and that `sdu` is valid for reads (see `# Safety`;
    // include/rvio/vmpi.h); `sdu` is not NULL (checked above).
    let (dev, sdu) = unsafe { (dev(t), sdu.read()) };
    // SAFETY: (data, len, cap) are a `Bytes`'s raw parts, from
    // `vmpi_transport_tx_take`, whose ownership the caller gives back.
    let data = unsafe { Bytes::from_raw_parts(sdu.data.cast::<u8>(), sdu.len, sdu.cap) };
    dev.free_bytes(data);
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `t` is a registered handle.
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_tx_len(t: *mut bindings::vmpi_transport) -> usize {
    // SAFETY: the caller guarantees that `t` is a registered handle (see
    // `# Safety`; include/rvio/vmpi.h: a handle from
    // `vmpi_transport_register()` not yet unregistered), which is what `dev`
    // needs.
    unsafe { dev(t) }.tx_len()
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `t` is a registered handle.
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_tx_lost(t: *mut bindings::vmpi_transport, sent: bool) {
    // SAFETY: the caller guarantees that `t` is a registered handle (see
    // `# Safety`; include/rvio/vmpi.h), which is what `dev` needs.
    let dev = unsafe { dev(t) };
    Dev::tx_lost(dev, sent);
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `t` is a registered handle.
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_drop(t: *mut bindings::vmpi_transport, reason: c_uint) {
    // SAFETY: the caller guarantees that `t` is a registered handle (see
    // `# Safety`; include/rvio/vmpi.h: a handle from
    // `vmpi_transport_register()` not yet unregistered), which is what `dev`
    // needs.
    let dev = unsafe { dev(t) };
    if let Some(&why) = DropReason::ALL.get(reason as usize) {
        let mut g = dev.inner.lock();
        g.ep.counters.drop_one(why);
        // The lost buffer may have been part of a message.
        g.rx_lost();
    }
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `transport` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn vmpi_dev_find(role: c_uint, transport: *const c_char) -> c_int {
    from_result(|| {
        let role = Role::from_abi(role).ok_or(ENODEV)?;
        let name = if transport.is_null() {
            None
        } else {
            // SAFETY: the caller guarantees that `transport` is NULL or
            // NUL-terminated (see `# Safety`; include/rvio/vmpi.h: "NULL:
            // any"), and it is not NULL here, so it is a NUL-terminated
            // string.
            Some(unsafe { kernel::str::CStr::from_char_ptr(transport) })
        };
        let dev = find(|d| d.role == role && name.is_none_or_eq(&d.transport)).ok_or(ENODEV)?;
        Ok(dev.id)
    })
}

/// See `include/rvio/vmpi.h`.
#[no_mangle]
pub extern "C" fn vmpi_dev_reset(id: c_int) -> c_int {
    match find(|d| d.id == id) {
        Some(dev) => dev.gate.reset(),
        None => ENODEV.to_errno(),
    }
}

/// `Option<&CStr>` matches a name: `None` matches any.
trait NameFilter {
    fn is_none_or_eq(&self, name: &kernel::str::CStr) -> bool;
}

impl NameFilter for Option<&kernel::str::CStr> {
    fn is_none_or_eq(&self, name: &kernel::str::CStr) -> bool {
        self.map_or(true, |n| n.as_bytes() == name.as_bytes())
    }
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `ops` and `priv_` stay valid until `vmpi_port_close`.
#[no_mangle]
pub unsafe extern "C" fn vmpi_port_open(
    id: c_int,
    channel: u16,
    ops: *const bindings::vmpi_port_ops,
    priv_: *mut c_void,
) -> *mut bindings::vmpi_port {
    // SAFETY: `ops` is not NULL (checked first), and the caller guarantees it
    // stays valid until `vmpi_port_close` (see `# Safety`), so it points to
    // a readable `struct vmpi_port_ops` now.
    let usable = !ops.is_null() && unsafe { (*ops).rx.is_some() && (*ops).down.is_some() };
    let r = if usable {
        port_open(id, channel, ops, priv_)
    } else {
        Err(EINVAL)
    };
    match r {
        Ok(kp) => Arc::into_raw(kp) as *mut bindings::vmpi_port,
        Err(e) => e.to_ptr(),
    }
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `p` is an open port; `sdu` is valid for `len` reads.
#[no_mangle]
pub unsafe extern "C" fn vmpi_port_send(
    p: *mut bindings::vmpi_port,
    sdu: *const c_void,
    len: usize,
) -> c_int {
    // SAFETY: an open port is `Arc::into_raw` of a `KernelPort`.
    let kp = unsafe { ArcBorrow::from_raw(p as *const KernelPort) };
    from_result(|| {
        if len > kp.dev.cfg.max_sdu as usize {
            return Err(errno::emsgsize());
        }
        if sdu.is_null() && len > 0 {
            return Err(EINVAL);
        }
        let mut data = kp.dev.new_bytes(len, GFP_KERNEL)?;
        if len > 0 {
            // SAFETY: the caller passes `sdu` valid for `len` reads
            // (`vmpi_port_send()` in include/rvio/vmpi.h), and it is not
            // null here.
            let bytes = unsafe { core::slice::from_raw_parts(sdu.cast::<u8>(), len) };
            buf_cache::append(&mut data, bytes, GFP_KERNEL)?;
        }
        kp.send(data)?;
        Ok(0)
    })
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `p` is an open port; `head` is valid for reading `head_len` bytes (or
/// `head_len` is 0); `sg` is a marked scatterlist holding at least `len`
/// bytes (or `len` is 0); process context unless `atomic`.
#[no_mangle]
pub unsafe extern "C" fn vmpi_port_send_sg(
    p: *mut bindings::vmpi_port,
    head: *const c_void,
    head_len: usize,
    sg: *mut bindings::scatterlist,
    len: usize,
    atomic: bool,
) -> c_int {
    // SAFETY: the caller guarantees that `p` is an open port.
    let kp = unsafe { kport(p) };
    from_result(|| {
        let total = head_len.checked_add(len).ok_or(EINVAL)?;
        if total > kp.dev.cfg.max_sdu as usize {
            return Err(errno::emsgsize());
        }
        if (head.is_null() && head_len > 0) || (sg.is_null() && len > 0) {
            return Err(EINVAL);
        }
        // Refused before the copy is made (it may still be, below).
        if atomic && kp.dev.any_context_full() {
            return Err(EAGAIN);
        }
        // Atomic: no sleep, a kept buffer or kmalloc memory, without the
        // atomic reserves (the caller falls back to process context).
        let gfp = if atomic {
            GFP_NOWAIT | __GFP_NOWARN
        } else {
            GFP_KERNEL
        };
        let mut data = kp.dev.new_bytes(total, gfp)?;
        if head_len > 0 {
            // SAFETY: the caller passes `head` valid for `head_len` reads
            // (see `# Safety`), and it is not null here.
            let bytes = unsafe { core::slice::from_raw_parts(head.cast::<u8>(), head_len) };
            // Within the capacity: no allocation.
            buf_cache::append(&mut data, bytes, gfp)?;
        }
        if len > 0 {
            let room = data.spare_capacity_mut();
            if room.len() < len {
                kp.dev.free_bytes(data);
                return Err(ENOMEM);
            }
            // SAFETY: `sg` is a marked scatterlist (see `# Safety`), not
            // null here.
            let nents = unsafe { bindings::sg_nents(sg) };
            // SAFETY: as for `sg_nents`; the destination is `len` bytes of
            // `data`'s spare capacity (checked above), written by the
            // copy only (`sg_copy_to_buffer()` maps each page atomically:
            // any context).
            let copied = unsafe {
                bindings::sg_copy_to_buffer(sg, nents as u32, room.as_mut_ptr().cast(), len)
            };
            if copied != len {
                kp.dev.free_bytes(data);
                return Err(EINVAL);
            }
            // SAFETY: the copy initialized the `len` bytes after the
            // current length, within the capacity.
            unsafe { data.set_len(total) };
        }
        if atomic {
            kp.dev
                .send_any_context(kp.port, data)
                .map_err(|(e, data)| {
                    kp.dev.free_bytes(data);
                    e
                })?;
        } else {
            kp.send(data)?;
        }
        Ok(0)
    })
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `p` is an open port; it is not used after this.
#[no_mangle]
pub unsafe extern "C" fn vmpi_port_close(p: *mut bindings::vmpi_port) {
    // SAFETY: the caller guarantees that `p` is an open port, not used after
    // this (see `# Safety`; include/rvio/vmpi.h). An open port is
    // `Arc::into_raw` of a `KernelPort` (`vmpi_port_open` above) holding the
    // user's count, which this takes back, once.
    let kp = unsafe { Arc::from_raw(p as *const KernelPort) };
    // A host port that bound its device as a domain ends the binding.
    kp.dev.domains.lock().unbind(kp.port);
    kp.closed.store(true, Ordering::Release);
    {
        let mut g = kp.dev.inner.lock();
        kp.dev.forget_any_context(&mut g, Some(kp.port));
        g.detach(kp.port);
        if let Some(slot) = g.ports.get_mut(kp.port) {
            *slot = None;
        }
        g.kick();
    }
    // A callback that started before `closed` was set has finished.
    drop(kp.dev.callbacks.lock());
}

/// The in-kernel port behind `p`.
///
/// # Safety
///
/// `p` is an open port (from `vmpi_port_open`, not yet closed).
unsafe fn kport<'a>(p: *mut bindings::vmpi_port) -> ArcBorrow<'a, KernelPort> {
    // SAFETY: an open port is `Arc::into_raw` of a `KernelPort`
    // (`vmpi_port_open` above) whose count the user holds until
    // `vmpi_port_close`, which the caller has not called yet.
    unsafe { ArcBorrow::from_raw(p as *const KernelPort) }
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `p` is an open port; `g` is NULL or a grant whose fields the caller
/// filled, which it leaves to the device until `done` if this returns 0.
#[no_mangle]
pub unsafe extern "C" fn vmpi_port_grant(
    p: *mut bindings::vmpi_port,
    g: *mut bindings::vmpi_grant,
) -> c_int {
    // SAFETY: the caller guarantees that `p` is an open port.
    let kp = unsafe { kport(p) };
    if g.is_null() {
        return EINVAL.to_errno();
    }
    // SAFETY: `g` is not NULL and the caller filled it (see `# Safety`);
    // only read here.
    if let Err(e) = check_grant(unsafe { &*g }) {
        return e.to_errno();
    }
    // SAFETY: `g` is a checked grant the caller hands over on success.
    unsafe { kp.dev.gate.grant(g) }
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `p` is an open port; `meta` is NULL or valid for reading 12 bytes.
#[no_mangle]
pub unsafe extern "C" fn vmpi_port_deliver(
    p: *mut bindings::vmpi_port,
    handle: u64,
    src_domain: u16,
    frame_len: u32,
    meta: *const u8,
) -> c_int {
    // SAFETY: the caller guarantees that `p` is an open port.
    let kp = unsafe { kport(p) };
    if meta.is_null() || !(MIN_FRAME..=MAX_FRAME).contains(&frame_len) {
        return EINVAL.to_errno();
    }
    // SAFETY: `meta` is valid for reading 12 bytes (see `# Safety`).
    unsafe { kp.dev.gate.deliver(handle, src_domain, frame_len, meta) }
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `p` is an open port; `c` is NULL or a copy request whose fields the
/// caller filled, which it leaves to the device until `done` if this
/// returns 0.
#[no_mangle]
pub unsafe extern "C" fn vmpi_port_copy(
    p: *mut bindings::vmpi_port,
    c: *mut bindings::vmpi_copy,
) -> c_int {
    // SAFETY: the caller guarantees that `p` is an open port.
    let kp = unsafe { kport(p) };
    if c.is_null() {
        return EINVAL.to_errno();
    }
    // SAFETY: `c` is not NULL and the caller filled it (see `# Safety`);
    // only read here.
    if let Err(e) = check_copy(unsafe { &*c }) {
        return e.to_errno();
    }
    // SAFETY: `c` is a checked request the caller hands over on success.
    unsafe { kp.dev.gate.copy(c) }
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `p` is an open port; `ops` and `priv_` stay valid until the binding
/// ends (`vmpi_port_unbind_domain`, `vmpi_port_close`, or the device going
/// away).
#[no_mangle]
pub unsafe extern "C" fn vmpi_port_bind_domain(
    p: *mut bindings::vmpi_port,
    domain: u16,
    ops: *const bindings::vmpi_domain_ops,
    priv_: *mut c_void,
) -> c_int {
    // SAFETY: the caller guarantees that `p` is an open port.
    let kp = unsafe { kport(p) };
    from_result(|| {
        // SAFETY: `ops` is not NULL (checked first) and valid (see
        // `# Safety`).
        let usable = !ops.is_null() && unsafe { (*ops).grant.is_some() };
        if !usable || !(1..=crate::grants::MAX_DOMAIN).contains(&domain) {
            return Err(EINVAL);
        }
        // SAFETY: `ops` and `priv_` stay valid until the binding ends (see
        // `# Safety`).
        unsafe { kp.dev.domains.lock().bind(kp.port, domain, ops, priv_) }?;
        Ok(0)
    })
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `p` is an open port.
#[no_mangle]
pub unsafe extern "C" fn vmpi_port_unbind_domain(p: *mut bindings::vmpi_port) {
    // SAFETY: the caller guarantees that `p` is an open port.
    let kp = unsafe { kport(p) };
    kp.dev.domains.lock().unbind(kp.port);
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `p` is an open port; `s` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn vmpi_port_domain_stats(
    p: *mut bindings::vmpi_port,
    s: *mut bindings::vmpi_grant_stats,
) {
    // SAFETY: the caller guarantees that `p` is an open port.
    let kp = unsafe { kport(p) };
    if s.is_null() {
        return;
    }
    // SAFETY: `s` is not NULL and valid for a write (see `# Safety`); a
    // plain C structure of integers, so any bytes are a valid value.
    kp.dev.domains.lock().stats(unsafe { &mut *s });
}

// The header's declarations (through bindgen) and these definitions must
// agree: each pair must coerce to one function pointer type.
const _: [unsafe extern "C" fn(
    c_uint,
    *const c_char,
    *const c_void,
    usize,
    *const bindings::vmpi_transport_ops,
    *mut c_void,
) -> *mut bindings::vmpi_transport; 2] =
    [bindings::vmpi_transport_register, vmpi_transport_register];
const _: [unsafe extern "C" fn(*mut bindings::vmpi_transport); 3] = [
    bindings::vmpi_transport_unregister,
    vmpi_transport_unregister,
    vmpi_transport_restart,
];
const _: [unsafe extern "C" fn(
    *mut bindings::vmpi_transport,
    *mut bindings::vmpi_sdu,
    usize,
) -> bool; 2] = [bindings::vmpi_transport_rx_buf, vmpi_transport_rx_buf];
const _: [unsafe extern "C" fn(
    *mut bindings::vmpi_transport,
    usize,
    bindings::vmpi_frag_read_t,
    *mut c_void,
); 2] = [bindings::vmpi_transport_rx_from, vmpi_transport_rx_from];
const _: [unsafe extern "C" fn(
    *mut bindings::vmpi_transport,
    usize,
    bindings::vmpi_frag_write_t,
    *mut c_void,
) -> isize; 2] = [bindings::vmpi_transport_tx_to, vmpi_transport_tx_to];
const _: [unsafe extern "C" fn(*mut bindings::vmpi_transport, *mut c_void, usize) -> isize; 2] =
    [bindings::vmpi_transport_tx, vmpi_transport_tx];
const _: [unsafe extern "C" fn(*mut bindings::vmpi_transport) -> usize; 2] =
    [bindings::vmpi_transport_tx_len, vmpi_transport_tx_len];
const _: [unsafe extern "C" fn(*mut bindings::vmpi_transport, c_uint); 2] =
    [bindings::vmpi_transport_drop, vmpi_transport_drop];
const _: [unsafe extern "C" fn(*mut bindings::vmpi_transport, bool); 2] =
    [bindings::vmpi_transport_tx_lost, vmpi_transport_tx_lost];
const _: [unsafe extern "C" fn(*mut bindings::vmpi_transport); 2] =
    [bindings::vmpi_transport_restart, vmpi_transport_restart];
const _: [unsafe extern "C" fn(c_uint, *const c_char) -> c_int; 2] =
    [bindings::vmpi_dev_find, vmpi_dev_find];
const _: [unsafe extern "C" fn(c_int) -> c_int; 2] = [bindings::vmpi_dev_reset, vmpi_dev_reset];
const _: [unsafe extern "C" fn(
    c_int,
    u16,
    *const bindings::vmpi_port_ops,
    *mut c_void,
) -> *mut bindings::vmpi_port; 2] = [bindings::vmpi_port_open, vmpi_port_open];
const _: [unsafe extern "C" fn(*mut bindings::vmpi_port, *const c_void, usize) -> c_int; 2] =
    [bindings::vmpi_port_send, vmpi_port_send];
const _: [unsafe extern "C" fn(
    *mut bindings::vmpi_port,
    *const c_void,
    usize,
    *mut bindings::scatterlist,
    usize,
    bool,
) -> c_int; 2] = [bindings::vmpi_port_send_sg, vmpi_port_send_sg];
const _: [unsafe extern "C" fn(*mut bindings::vmpi_port); 4] = [
    bindings::vmpi_port_close,
    vmpi_port_close,
    bindings::vmpi_port_unbind_domain,
    vmpi_port_unbind_domain,
];
const _: [unsafe extern "C" fn(*mut bindings::vmpi_port, *mut bindings::vmpi_grant) -> c_int; 2] =
    [bindings::vmpi_port_grant, vmpi_port_grant];
const _: [unsafe extern "C" fn(*mut bindings::vmpi_port, *mut bindings::vmpi_copy) -> c_int; 2] =
    [bindings::vmpi_port_copy, vmpi_port_copy];
const _: [unsafe extern "C" fn(*mut bindings::vmpi_port, u64, u16, u32, *const u8) -> c_int; 2] =
    [bindings::vmpi_port_deliver, vmpi_port_deliver];
const _: [unsafe extern "C" fn(
    *mut bindings::vmpi_port,
    u16,
    *const bindings::vmpi_domain_ops,
    *mut c_void,
) -> c_int; 2] = [bindings::vmpi_port_bind_domain, vmpi_port_bind_domain];
const _: [unsafe extern "C" fn(*mut bindings::vmpi_port, *mut bindings::vmpi_grant_stats); 2] =
    [bindings::vmpi_port_domain_stats, vmpi_port_domain_stats];

// `Role` has the C-ABI's values.
const _: () = assert!(
    Role::Host as u32 == bindings::vmpi_role_VMPI_ROLE_HOST
        && Role::Guest as u32 == bindings::vmpi_role_VMPI_ROLE_GUEST
);
