// SPDX-License-Identifier: GPL-2.0

//! The char device `/dev/vmpiN`: open files, ioctls, read/write/poll,
//! and its sysfs attributes.

use kernel::prelude::*;
use kernel::sync::{Arc, ArcBorrow};
use kernel::uaccess::{UserSlice, UserSliceReader, UserSliceWriter};

use crate::bindings;
use crate::device::{alloc_errno, Dev, Inner};
use crate::dwork::now_ms;
use crate::errno;
use crate::memcg::MemCg;
use crate::miscdev::{self, FileWaker, POLLERR, POLLHUP, POLLIN, POLLOUT};
use crate::port::{Port, PortState};
use crate::proto::ctrl::{Name, MAX_NAME};
use crate::proto::wire::{DropReason, CONTROL_CHANNEL};
use crate::ring::Ring;
use crate::rx_sdu::RxSdu;
use crate::{ALLOC_TIMEOUT_MAX_MS, ALLOC_TIMEOUT_MS, BACKLOG_LEN, FLOW_WINDOW, TXQ_LEN};

/// An open `/dev/vmpiN`: its port.
pub(crate) struct File {
    dev: Arc<Dev>,
    port: usize,
    /// The SDUs queued for this file are charged to its opener's memory
    /// cgroup: freed, not kept in the device's buffer cache for others.
    charged: bool,
}

/// Names of the sysfs attributes (`docs/vmpi-sysfs.md`), in `show` order;
/// the drop counters follow, one per `DropReason`.
const ATTRS: [&kernel::str::CStr; 18 + DropReason::COUNT] = [
    kernel::c_str!("id"),
    kernel::c_str!("role"),
    kernel::c_str!("transport"),
    kernel::c_str!("channels"),
    kernel::c_str!("max_sdu"),
    kernel::c_str!("link"),
    kernel::c_str!("bound_channels"),
    kernel::c_str!("flows"),
    kernel::c_str!("apps"),
    kernel::c_str!("rx_sdus"),
    kernel::c_str!("rx_bytes"),
    kernel::c_str!("tx_sdus"),
    kernel::c_str!("tx_bytes"),
    kernel::c_str!("ctrl_rx"),
    kernel::c_str!("ctrl_dropped"),
    kernel::c_str!("tx_dropped"),
    kernel::c_str!("restarts"),
    kernel::c_str!("raw_rx_bytes"),
    kernel::c_str!("drops_bad_header"),
    kernel::c_str!("drops_bad_channel"),
    kernel::c_str!("drops_oversized"),
    kernel::c_str!("drops_bad_fragment"),
    kernel::c_str!("drops_bad_desc"),
    kernel::c_str!("drops_no_credit"),
    kernel::c_str!("drops_bad_control"),
    kernel::c_str!("drops_rx_full"),
];

/// The application name in a `struct vmpi_name` (NUL-padded); `None` if
/// empty.
fn parse_name(b: &[u8]) -> Result<Option<Name>> {
    let len = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    if b[len..].iter().any(|&c| c != 0) {
        return Err(EINVAL);
    }
    if len == 0 {
        return Ok(None);
    }
    Name::new(&b[..len]).map(Some).map_err(|_| EINVAL)
}

fn read_arg<const N: usize>(arg: usize) -> Result<[u8; N]> {
    let mut b = [0u8; N];
    UserSlice::new(arg, N).reader().read_slice(&mut b)?;
    Ok(b)
}

const IOC_BIND_RAW: u32 = kernel::ioctl::_IOW::<u32>(bindings::VMPI_IOC_MAGIC, 1);
const IOC_REGISTER: u32 = kernel::ioctl::_IOW::<bindings::vmpi_name>(bindings::VMPI_IOC_MAGIC, 2);
const IOC_ACCEPT: u32 = kernel::ioctl::_IOW::<bindings::vmpi_name>(bindings::VMPI_IOC_MAGIC, 3);
const IOC_ALLOC: u32 = kernel::ioctl::_IOW::<bindings::vmpi_alloc>(bindings::VMPI_IOC_MAGIC, 4);
const NAME_LEN: usize = core::mem::size_of::<bindings::vmpi_name>();
const ALLOC_LEN: usize = core::mem::size_of::<bindings::vmpi_alloc>();
const _: () = assert!(NAME_LEN == MAX_NAME && ALLOC_LEN == 2 * MAX_NAME + 8);

impl File {
    /// Frees an SDU taken from this file's queue.
    fn free(&self, sdu: RxSdu) {
        if self.charged {
            drop(sdu);
        } else {
            self.dev.free_sdu(sdu);
        }
    }

    fn bind_raw(&self, inner: &mut Inner, want: u32) -> Result<isize> {
        let ch = u16::try_from(want).map_err(|_| EINVAL)?;
        if ch == CONTROL_CHANNEL || ch >= self.dev.cfg.num_channels {
            return Err(EINVAL);
        }
        if !matches!(inner.port(self.port)?.state, PortState::Idle) {
            return Err(EINVAL);
        }
        inner
            .ep
            .link
            .bind_raw(&mut inner.chans, ch)
            .map_err(|_| EBUSY)?;
        inner.bind(self.port, PortState::Raw(ch), ch)?;
        Ok(0)
    }

    fn register(&self, inner: &mut Inner, name: Name) -> Result<isize> {
        if !matches!(inner.port(self.port)?.state, PortState::Idle) {
            return Err(EINVAL);
        }
        let taken = inner
            .ports
            .iter()
            .flatten()
            .any(|p| matches!(&p.state, PortState::Registered { name: n, .. } if *n == name));
        if taken {
            return Err(errno::eaddrinuse());
        }
        inner.port(self.port)?.state = PortState::Registered {
            name,
            backlog: Ring::new(BACKLOG_LEN),
        };
        Ok(0)
    }

    fn accept(&self, inner: &mut Inner, name: Name) -> Result<isize> {
        if !matches!(inner.port(self.port)?.state, PortState::Idle) {
            return Err(EINVAL);
        }
        loop {
            let backlog = inner
                .ports
                .iter_mut()
                .flatten()
                .find_map(|p| match &mut p.state {
                    PortState::Registered { name: n, backlog } if *n == name => Some(backlog),
                    _ => None,
                })
                .ok_or(ENOENT)?;
            let ch = backlog.pop().ok_or(EAGAIN)?;
            // The request may have been cancelled or reset meanwhile.
            if let Ok(m) = inner.ep.link.accept(&mut inner.chans, ch, FLOW_WINDOW) {
                inner.ep.send_ctrl(&m);
                inner.bind(self.port, PortState::Open(ch), ch)?;
                inner.kick();
                return Ok(ch as isize);
            }
        }
    }

    fn alloc(&self, inner: &mut Inner, arg: &[u8; ALLOC_LEN]) -> Result<isize> {
        let p = inner.port(self.port)?;
        match p.state {
            PortState::Idle => {}
            PortState::Allocating(_) => return Err(EAGAIN),
            PortState::Open(ch) if p.connecting => {
                p.connecting = false;
                return Ok(ch as isize);
            }
            PortState::Failed(e) => {
                p.state = PortState::Idle;
                p.connecting = false;
                return Err(e);
            }
            PortState::Open(_) => return Err(errno::eisconn()),
            _ => return Err(EINVAL),
        }
        let dst = parse_name(&arg[..MAX_NAME])?.ok_or(EINVAL)?;
        let src = parse_name(&arg[MAX_NAME..2 * MAX_NAME])?;
        let word = |o: usize| u32::from_ne_bytes([arg[o], arg[o + 1], arg[o + 2], arg[o + 3]]);
        let (timeout, reserved) = (word(2 * MAX_NAME), word(2 * MAX_NAME + 4));
        if reserved != 0 || timeout > ALLOC_TIMEOUT_MAX_MS {
            return Err(EINVAL);
        }
        let timeout = if timeout == 0 {
            ALLOC_TIMEOUT_MS
        } else {
            timeout
        };
        let (ch, m) = inner
            .ep
            .link
            .request(
                &mut inner.chans,
                dst,
                src,
                FLOW_WINDOW,
                now_ms(),
                timeout.into(),
            )
            .map_err(alloc_errno)?;
        inner.ep.send_ctrl(&m);
        inner.bind(self.port, PortState::Allocating(ch), ch)?;
        inner.port(self.port)?.connecting = true;
        inner.kick();
        Dev::schedule_expiry(self.dev.as_arc_borrow(), inner);
        // The answer comes later: a blocking caller waits for it.
        Err(EAGAIN)
    }
}

impl miscdev::FileOps for Dev {
    type File = File;
    const ATTRS: &'static [&'static kernel::str::CStr] = &ATTRS;

    fn show(&self, idx: usize, out: &mut miscdev::SysfsBuf<'_>) {
        use core::fmt::Write;
        let g = self.inner.lock();
        let c = &g.ep.counters;
        let count =
            |f: fn(&PortState) -> bool| g.ports.iter().flatten().filter(|p| f(&p.state)).count();
        let _ = match idx {
            0 => writeln!(out, "{}", self.id),
            1 => writeln!(out, "{}", self.role.name()),
            2 => writeln!(out, "{}", &*self.transport),
            3 => writeln!(out, "{}", self.cfg.num_channels),
            4 => writeln!(out, "{}", self.cfg.max_sdu),
            5 => writeln!(
                out,
                "{}",
                if g.is_live() && g.ep.link.is_up() {
                    "up"
                } else {
                    "down"
                }
            ),
            6 => writeln!(out, "{}", count(|s| matches!(s, PortState::Raw(_)))),
            7 => writeln!(out, "{}", count(|s| matches!(s, PortState::Open(_)))),
            8 => writeln!(
                out,
                "{}",
                count(|s| matches!(s, PortState::Registered { .. }))
            ),
            9 => writeln!(out, "{}", c.rx_sdus),
            10 => writeln!(out, "{}", c.rx_bytes),
            11 => writeln!(out, "{}", c.tx_sdus),
            12 => writeln!(out, "{}", c.tx_bytes),
            13 => writeln!(out, "{}", c.ctrl_rx),
            14 => writeln!(out, "{}", c.ctrl_dropped),
            15 => writeln!(out, "{}", c.tx_dropped),
            16 => writeln!(out, "{}", c.restarts),
            17 => writeln!(out, "{}", g.raw_budget.queued()),
            i => writeln!(out, "{}", c.drops.get(i - 18).copied().unwrap_or(0)),
        };
    }

    /// `reset`: writing `1` asks the transport for a reset
    /// (`vmpi_dev_reset()`), as a PCI device's `reset` file does.
    const STORE_ATTRS: &'static [&'static kernel::str::CStr] = &[kernel::c_str!("reset")];

    fn store(&self, _idx: usize, input: &[u8]) -> Result {
        if !matches!(input, b"1" | b"1\n") {
            return Err(EINVAL);
        }
        kernel::error::to_result(self.gate.reset())
    }

    fn open(dev: ArcBorrow<'_, Self>, waker: FileWaker) -> Result<File> {
        // Taken here, in the opener's task.
        let memcg = MemCg::current();
        let charged = memcg.is_some();
        let port = dev.inner.lock().new_port(None, memcg, Some(waker))?;
        Ok(File {
            dev: dev.into(),
            port,
            charged,
        })
    }

    fn read(file: &File, out: &mut UserSliceWriter) -> Result<usize> {
        let room = out.len();
        // The SDU is taken under the device's lock and copied out without
        // it: a reader whose buffer faults slowly (userfaultfd, FUSE) must
        // not stall the device, and a fault under the lock would order
        // mmap_lock after it, the reverse of vhost_vdpa's PA map (which
        // calls the device's set_map with mmap_lock held).
        let (sdu, ch, gen) = {
            let mut g = file.dev.inner.lock();
            file.dev.take(&mut g, file.port, room)?
        };
        // An SDU in parts is copied out part after part.
        let copied = sdu.chunks().try_for_each(|c| out.write_slice(c));
        let mut g = file.dev.inner.lock();
        match copied {
            Ok(()) => {
                let n = sdu.len();
                let credit = file.dev.taken(&mut g, file.port, ch, n);
                drop(g);
                file.free(sdu);
                if credit {
                    // Credit goes from here if the transport is free: the
                    // peer's writer may wait for it.
                    file.dev.flush();
                }
                Ok(n)
            }
            Err(e) => {
                // A fault loses nothing: the SDU goes back in front.
                let lost = file.dev.untake(&mut g, file.port, sdu, ch, gen);
                drop(g);
                if let Some(b) = lost {
                    file.free(b);
                }
                Err(e)
            }
        }
    }

    fn write(file: &File, input: &mut UserSliceReader, len: usize) -> Result<usize> {
        if len > file.dev.cfg.max_sdu as usize {
            return Err(errno::emsgsize());
        }
        let mut data = file.dev.new_bytes(len, GFP_KERNEL)?;
        miscdev::read_append(input, &mut data, len)?;
        let mut g = file.dev.inner.lock();
        match file.dev.send_from_file(&mut g, file.port, data) {
            Ok((n, reply)) => {
                drop(g);
                if reply {
                    // A reply goes from here if the transport is free: no
                    // hand-over to its work on the way to the peer.
                    file.dev.flush();
                }
                Ok(n)
            }
            Err((e, data)) => {
                // On EAGAIN the port wants space: the file is woken when
                // there is room (`Inner::wake_writers`) or credit.
                drop(g);
                file.dev.free_bytes(data);
                Err(e)
            }
        }
    }

    fn poll(file: &File) -> u32 {
        let mut g = file.dev.inner.lock();
        let inner = &mut *g;
        if !inner.is_live() {
            return POLLERR;
        }
        let room = inner.tx.len() < TXQ_LEN;
        let credit = |c: u16| inner.ep.link.can_send(&inner.chans, c, 0).unwrap_or(false);
        let Some(Some(p)) = inner.ports.get_mut(file.port) else {
            return POLLERR;
        };
        let readable = if p.q.is_empty() { 0 } else { POLLIN };
        let writable = |p: &mut Port, ok: bool| {
            // No room in the send queue: the file is woken when there is
            // (no credit: when it comes, `Wake::Channel`).
            p.want_space |= !room;
            if ok {
                POLLOUT
            } else {
                0
            }
        };
        match p.state {
            PortState::Raw(_) => readable | writable(p, room),
            PortState::Open(c) => readable | writable(p, room && credit(c)),
            PortState::Registered { ref backlog, .. } => {
                if backlog.is_empty() {
                    0
                } else {
                    POLLIN
                }
            }
            PortState::Failed(_) => POLLOUT | POLLERR,
            PortState::Dead(_) => readable | POLLERR | POLLHUP,
            PortState::Idle | PortState::Allocating(_) => 0,
        }
    }

    fn ioctl(file: &File, cmd: u32, arg: usize) -> Result<isize> {
        // User memory first, outside the lock.
        let mut name_arg = [0u8; NAME_LEN];
        let mut alloc_arg = [0u8; ALLOC_LEN];
        let mut raw_arg = 0u32;
        match cmd {
            IOC_BIND_RAW => raw_arg = u32::from_ne_bytes(read_arg::<4>(arg)?),
            IOC_REGISTER | IOC_ACCEPT => name_arg = read_arg::<NAME_LEN>(arg)?,
            IOC_ALLOC => alloc_arg = read_arg::<ALLOC_LEN>(arg)?,
            _ => return Err(ENOTTY),
        }
        let name = || parse_name(&name_arg)?.ok_or(EINVAL);
        let mut g = file.dev.inner.lock();
        let inner = &mut *g;
        inner.live()?;
        match cmd {
            IOC_BIND_RAW => file.bind_raw(inner, raw_arg),
            IOC_REGISTER => file.register(inner, name()?),
            IOC_ACCEPT => file.accept(inner, name()?),
            _ => file.alloc(inner, &alloc_arg),
        }
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let mut g = self.dev.inner.lock();
        let registered = matches!(
            g.port(self.port).map(|p| &p.state),
            Ok(PortState::Registered { .. })
        );
        g.detach(self.port);
        if let Some(slot) = g.ports.get_mut(self.port) {
            *slot = None;
        }
        // A blocked VMPI_IOC_ACCEPT on the name gets ENOENT now.
        if registered {
            g.wake_files();
        }
        g.kick();
    }
}
