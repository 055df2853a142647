// SPDX-License-Identifier: GPL-2.0

//! Ports (see the crate documentation): what a port is, its receive
//! queue, and a message waiting in a device's send queue.

use core::sync::atomic::{AtomicUsize, Ordering};
use kernel::prelude::*;
use kernel::sync::Arc;

use crate::buf_cache::Bytes;
use crate::kernel_port::KernelPort;
use crate::memcg::MemCg;
use crate::miscdev::FileWaker;
use crate::proto::ctrl::Name;
use crate::ring::Ring;
use crate::rx_sdu::RxSdu;

/// A message waiting to be sent: its channel (0: an encoded control
/// message that must follow data queued before it), the flow channel it
/// concerns (its own, or the channel a queued `DEALLOC` closes), bytes,
/// and how much of it the transport has taken (fragments).
pub(crate) struct TxSdu {
    pub(crate) channel: u16,
    pub(crate) about: u16,
    pub(crate) data: Bytes,
    pub(crate) sent: usize,
}

/// An SDU an in-kernel port sent from any context (`vmpi_port_send_sg()`),
/// before it joins the send queue: the port's index, and its bytes.
pub(crate) struct AnyContextSdu {
    pub(crate) port: usize,
    pub(crate) data: Bytes,
}

/// What a port is.
pub(crate) enum PortState {
    /// Nothing yet.
    Idle,
    /// Bound to a raw channel.
    Raw(u16),
    /// Our allocation request on this channel waits for the answer.
    Allocating(u16),
    /// An open flow.
    Open(u16),
    /// The registration of an application name, with the channels of
    /// incoming flows waiting to be accepted.
    Registered { name: Name, backlog: Ring<u16> },
    /// An allocation failed; the next `VMPI_IOC_ALLOC` reports it.
    Failed(Error),
    /// The flow ended (the peer closed or restarted, or this side
    /// restarted): queued SDUs can still be read, then this error.
    Dead(Error),
}

impl PortState {
    /// The channel whose SDUs the port sends and receives.
    pub(crate) fn data_channel(&self) -> Option<u16> {
        match *self {
            PortState::Raw(c) | PortState::Open(c) => Some(c),
            _ => None,
        }
    }
    /// The channel the port holds in the channel table.
    pub(crate) fn channel(&self) -> Option<u16> {
        match *self {
            PortState::Raw(c) | PortState::Open(c) | PortState::Allocating(c) => Some(c),
            _ => None,
        }
    }
}

/// The bytes a device's raw channels may hold queued for their readers
/// together (`RAW_RX_BYTES`): what the peer can fill without credit, however
/// many channels are bound and unread. Each queue holds its first
/// [`RAW_RX_OWN`] bytes outside it, so that unread channels cannot starve
/// one that is read (an in-kernel user's).
pub(crate) struct RawBudget {
    /// Bytes charged: beyond each queue's own.
    charged: AtomicUsize,
    /// Bytes queued in all.
    queued: AtomicUsize,
    max: usize,
}

/// Bytes a raw channel's queue holds without charging the device's
/// [`RawBudget`]: one SDU of any size.
pub(crate) const RAW_RX_OWN: usize = 65536;

impl RawBudget {
    pub(crate) fn new(max: usize) -> Result<Arc<Self>> {
        Ok(Arc::new(
            Self {
                charged: AtomicUsize::new(0),
                queued: AtomicUsize::new(0),
                max,
            },
            GFP_KERNEL,
        )?)
    }

    /// Takes `n` bytes of the budget, if they are left.
    fn charge(&self, n: usize) -> bool {
        self.charged
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                u.checked_add(n).filter(|&t| t <= self.max)
            })
            .is_ok()
    }

    /// Bytes queued on the raw channels now.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

/// A port's received SDUs: at most `limit` of them, and on a raw channel
/// the bytes beyond its first [`RAW_RX_OWN`] charged to the device's
/// [`RawBudget`] while they are queued (every way out, dropping the queue
/// included, gives them back).
pub(crate) struct RxQueue {
    q: Ring<RxSdu>,
    bytes: usize,
    budget: Option<Arc<RawBudget>>,
}

impl RxQueue {
    pub(crate) fn new(limit: usize, budget: Option<Arc<RawBudget>>) -> Self {
        Self {
            q: Ring::new(limit),
            bytes: 0,
            budget,
        }
    }

    /// The queue grows from `self.bytes` to `bytes`: charges what goes
    /// beyond its own; `false` (nothing changed) if the budget is spent.
    fn grow(&mut self, bytes: usize) -> bool {
        if let Some(b) = &self.budget {
            let more = bytes.saturating_sub(RAW_RX_OWN) - self.bytes.saturating_sub(RAW_RX_OWN);
            if !b.charge(more) {
                return false;
            }
            b.queued.fetch_add(bytes - self.bytes, Ordering::Relaxed);
        }
        self.bytes = bytes;
        true
    }

    /// The queue shrinks from `self.bytes` to `bytes`.
    fn shrink(&mut self, bytes: usize) {
        if let Some(b) = &self.budget {
            let less = self.bytes.saturating_sub(RAW_RX_OWN) - bytes.saturating_sub(RAW_RX_OWN);
            b.charged.fetch_sub(less, Ordering::Relaxed);
            b.queued.fetch_sub(self.bytes - bytes, Ordering::Relaxed);
        }
        self.bytes = bytes;
    }

    /// Queues `v` last; `Err(v)` if the queue or the budget is full.
    pub(crate) fn push(&mut self, v: RxSdu) -> core::result::Result<(), RxSdu> {
        let (old, n) = (self.bytes, v.len());
        if !self.grow(old + n) {
            return Err(v);
        }
        self.q.push(v).inspect_err(|_| self.shrink(old))
    }

    /// Puts `v` back first; `Err(v)` if the queue or the budget is full.
    pub(crate) fn push_front(&mut self, v: RxSdu) -> core::result::Result<(), RxSdu> {
        let (old, n) = (self.bytes, v.len());
        if !self.grow(old + n) {
            return Err(v);
        }
        self.q.push_front(v).inspect_err(|_| self.shrink(old))
    }

    pub(crate) fn pop(&mut self) -> Option<RxSdu> {
        let v = self.q.pop()?;
        self.shrink(self.bytes - v.len());
        Some(v)
    }

    pub(crate) fn front(&self) -> Option<&RxSdu> {
        self.q.front()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.q.clear();
        self.shrink(0);
    }
}

impl Drop for RxQueue {
    fn drop(&mut self) {
        self.clear();
    }
}

/// One user's port (see the module documentation).
pub(crate) struct Port {
    pub(crate) state: PortState,
    /// Received SDUs.
    pub(crate) q: RxQueue,
    /// `VMPI_IOC_ALLOC` started and has not returned its result.
    pub(crate) connecting: bool,
    /// The in-kernel user, if this port is not a file.
    pub(crate) user: Option<Arc<KernelPort>>,
    /// A send said `EAGAIN` (or a poll found no room): tell the user (an
    /// in-kernel user's `write_space`, a file's wake) when there is room.
    pub(crate) want_space: bool,
    /// The file read an SDU since its last write: it is in a
    /// request-response exchange, and its next write goes out from its own
    /// context ([`crate::device::Dev::flush`]); a streaming writer's SDUs
    /// are batched by the transport's work instead.
    pub(crate) replying: bool,
    /// The in-kernel user is to be told that the port is down.
    pub(crate) down: Option<Error>,
    /// The memory cgroup of the task that opened the file: what the peer
    /// makes it queue is charged there (`None`: an in-kernel user's).
    pub(crate) memcg: Option<MemCg>,
    /// Wakes the file's blocked callers and pollers (`None`: an in-kernel
    /// user's port).
    pub(crate) waker: Option<FileWaker>,
}

impl Port {
    pub(crate) fn new(
        user: Option<Arc<KernelPort>>,
        memcg: Option<MemCg>,
        waker: Option<FileWaker>,
    ) -> Self {
        Self {
            memcg,
            waker,
            state: PortState::Idle,
            q: RxQueue::new(0, None),
            connecting: false,
            user,
            want_space: false,
            replying: false,
            down: None,
        }
    }
}
