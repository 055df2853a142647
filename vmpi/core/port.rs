// SPDX-License-Identifier: GPL-2.0

//! Ports (see the crate documentation): what a port is, its receive
//! queue, and a message waiting in a device's send queue.

use kernel::prelude::*;
use kernel::sync::Arc;

use crate::buf_cache::Bytes;
use crate::kernel_port::KernelPort;
use crate::proto::ctrl::Name;
use crate::ring::Ring;

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

/// One user's port (see the module documentation).
pub(crate) struct Port {
    pub(crate) state: PortState,
    /// Received SDUs.
    pub(crate) q: Ring<Bytes>,
    /// `VMPI_IOC_ALLOC` started and has not returned its result.
    pub(crate) connecting: bool,
    /// The in-kernel user, if this port is not a file.
    pub(crate) user: Option<Arc<KernelPort>>,
    /// A send said `EAGAIN`: tell the in-kernel user when there is room.
    pub(crate) want_space: bool,
    /// The in-kernel user is to be told that the port is down.
    pub(crate) down: Option<Error>,
}

impl Port {
    pub(crate) fn new(user: Option<Arc<KernelPort>>) -> Self {
        Self {
            state: PortState::Idle,
            q: Ring::new(0),
            connecting: false,
            user,
            want_space: false,
            down: None,
        }
    }
}
