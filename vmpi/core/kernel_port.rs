// SPDX-License-Identifier: GPL-2.0

//! In-kernel users: their ports (`struct vmpi_port`), opening one, and
//! their callbacks.

use core::sync::atomic::{AtomicBool, Ordering};
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;
use kernel::sync::Arc;

use crate::bindings;
use crate::buf_cache::Bytes;
use crate::device::Dev;
use crate::port::PortState;
use crate::proto::link::ChanError;
use crate::proto::wire::CONTROL_CHANNEL;
use crate::registry::find;

/// A callback of an in-kernel user, collected under `inner` and run
/// without it.
pub(crate) enum Call {
    Rx(Arc<KernelPort>, Bytes),
    WriteSpace(Arc<KernelPort>),
    Down(Arc<KernelPort>, Error),
}

impl Call {
    /// Runs it unless the port was closed (the caller holds `callbacks`,
    /// which `vmpi_port_close` takes after marking the port closed).
    pub(crate) fn run(&self) {
        let u = match self {
            Call::Rx(u, _) | Call::WriteSpace(u) | Call::Down(u, _) => u,
        };
        if u.closed.load(Ordering::Acquire) {
            return;
        }
        // SAFETY: until `vmpi_port_close` returns, the user's ops table
        // and priv are valid (the header's contract); it cannot return
        // while we hold `callbacks` and it had not set `closed` above.
        let ops = unsafe { &*u.ops };
        // What the user got from `vmpi_port_open` (the callbacks' handle).
        let port = &**u as *const KernelPort as *mut bindings::vmpi_port;
        match self {
            Call::Rx(_, sdu) => {
                if let Some(f) = ops.rx {
                    // SAFETY: `f` is the user's `rx`, valid with `priv_`
                    // until `vmpi_port_close` returns, which it cannot while
                    // we hold `callbacks` with `closed` unset (checked
                    // above). We call it as `struct vmpi_port_ops` in
                    // include/rvio/vmpi.h promises: with the port
                    // `vmpi_port_open` returned (`Arc::into_raw` of this
                    // `KernelPort`), the user's `priv_`, and `sdu`, bytes this
                    // `Call` owns, valid for `len` during the call; in process
                    // context, holding `callbacks` (one callback at a time).
                    unsafe { f(port, u.priv_, sdu.as_ptr().cast(), sdu.len()) };
                }
            }
            Call::WriteSpace(_) => {
                if let Some(f) = ops.write_space {
                    // SAFETY: `f` is the user's `write_space`, valid with
                    // `priv_` until `vmpi_port_close` returns, which it
                    // cannot while we hold `callbacks` with `closed` unset
                    // (checked above); called with the port
                    // `vmpi_port_open` returned and the user's `priv_`, in
                    // process context and holding `callbacks`, as
                    // include/rvio/vmpi.h promises.
                    unsafe { f(port, u.priv_) };
                }
            }
            Call::Down(_, e) => {
                if let Some(f) = ops.down {
                    // SAFETY: `f` is the user's `down`, valid with `priv_`
                    // until `vmpi_port_close` returns, which it cannot while
                    // we hold `callbacks` with `closed` unset (checked
                    // above); called with the port `vmpi_port_open`
                    // returned, the user's `priv_` and a negative errno, in
                    // process context and holding `callbacks`, as
                    // include/rvio/vmpi.h promises.
                    unsafe { f(port, u.priv_, e.to_errno()) };
                }
            }
        }
    }
}

/// An in-kernel user's port: `struct vmpi_port`.
pub(crate) struct KernelPort {
    pub(crate) dev: Arc<Dev>,
    pub(crate) port: usize,
    ops: *const bindings::vmpi_port_ops,
    priv_: *mut c_void,
    pub(crate) closed: AtomicBool,
}

impl KernelPort {
    /// Queues `data` on the port from process context, after the SDUs
    /// waiting from any context; on error its buffer goes back to the
    /// device's cache.
    pub(crate) fn send(&self, data: Bytes) -> Result {
        let mut g = self.dev.inner.lock();
        match self.dev.send(&mut g, self.port, data) {
            Ok(_) => Ok(()),
            Err((e, data)) => {
                drop(g);
                self.dev.free_bytes(data);
                Err(e)
            }
        }
    }
}

// SAFETY: `ops` and `priv_` are the user's, valid from any thread until
// `vmpi_port_close` (the header's contract).
unsafe impl Send for KernelPort {}
// SAFETY: `closed` is atomic and `dev` an `Arc<Dev>` (`Dev: Sync`); `port`,
// `ops` and `priv_` are never written after `port_open`. `ops` and `priv_`
// are only read, in `Call::run`, which calls the user's callbacks holding
// `dev.callbacks` (one at a time), from the device's work item or
// `vmpi_transport_unregister()`, so possibly on another thread than the
// opener's, which include/rvio/vmpi.h (`struct vmpi_port_ops`) tells the
// user to expect.
unsafe impl Sync for KernelPort {}

pub(crate) fn port_open(
    id: c_int,
    channel: u16,
    ops: *const bindings::vmpi_port_ops,
    priv_: *mut c_void,
) -> Result<Arc<KernelPort>> {
    let dev = find(|d| d.id == id).ok_or(ENODEV)?;
    if channel == CONTROL_CHANNEL || channel >= dev.cfg.num_channels {
        return Err(EINVAL);
    }
    let mut g = dev.inner.lock();
    let inner = &mut *g;
    inner.live()?;
    let port = inner.new_port(None, None, None)?;
    let r = (|| {
        let kp = Arc::new(
            KernelPort {
                dev: dev.clone(),
                port,
                ops,
                priv_,
                closed: AtomicBool::new(false),
            },
            GFP_KERNEL,
        )?;
        inner
            .ep
            .link
            .bind_raw(&mut inner.chans, channel)
            .map_err(|e| match e {
                ChanError::Invalid => EINVAL,
                ChanError::WrongState => EBUSY,
            })?;
        inner.bind(port, PortState::Raw(channel), channel)?;
        inner.port(port)?.user = Some(kp.clone());
        Ok(kp)
    })();
    if r.is_err() {
        inner.ports[port] = None;
    }
    r
}
