// SPDX-License-Identifier: GPL-2.0

//! `vmpi`: the transport-independent part of VMPI (the paper's VMPI-HL).
//! Transports (`vmpi_guest`, `vmpi_host`) register each device through the
//! C-ABI of `include/rvio/vmpi.h` and move fragments between their rings
//! and this module, which runs the protocol ([`proto::endpoint`]), keeps
//! the users' ports and gives each device a char device `/dev/vmpiN`
//! (`include/uapi/rvio/vmpi.h`) and an in-kernel API (`vmpi_port_*`).
//!
//! A **port** is what one user holds: an open file of `/dev/vmpiN`, or an
//! in-kernel user's `struct vmpi_port`. It is idle, a raw channel, a flow
//! (being allocated, open, or dead), or the registration of an application
//! name with its backlog of incoming flows. Received SDUs wait in the
//! port's queue, bounded by credit (flows) or a fixed length (raw).
//!
//! Locking: one mutex per device (`Dev::inner`) covers the protocol state
//! and every port of that device. Transports call in holding their own
//! lock; this module calls a transport only through `ops->kick`, which
//! schedules work. In-kernel users' callbacks run from the device's work
//! item ([`Dev::service`]) under `Dev::callbacks`, never under `inner`.

use kernel::prelude::*;

#[path = "../../rust/bh_lock.rs"]
pub mod bh_lock;
#[path = "bindings_generated.rs"]
mod bindings;
mod buf_cache;
#[path = "../../rust/dwork.rs"]
pub mod dwork;
#[path = "../../rust/errno.rs"]
pub mod errno;
#[path = "../../rust/memcg.rs"]
pub mod memcg;
// `pub`: the abstraction's whole API stays reachable (unreachable_pub).
#[path = "../../rust/miscdev.rs"]
pub mod miscdev;
#[path = "../../rust/sysfs_buf.rs"]
pub mod sysfs_buf;
// Pure logic, shared with the host crate rust/pure.
#[path = "../proto/mod.rs"]
pub mod proto;

mod chardev;
mod device;
// `pub`: the `#[no_mangle]` definitions of the C-ABI stay reachable
// (unreachable_pub).
pub mod ffi;
mod grants;
mod kernel_port;
mod port;
mod registry;
mod ring;
mod rx_sdu;

use proto::link::MIN_WINDOW;

module! {
    type: VmpiCore,
    name: "vmpi",
    author: "rvio developers",
    description: "VMPI: channels, flows, control protocol, char devices and in-kernel API over VMPI transports",
    license: "GPL",
}

/// SDUs a raw channel's receive queue holds (more are dropped, counted).
const RAW_RXQ_LEN: usize = 64;
/// Bytes the raw channels of one device side hold queued together beyond
/// each queue's first 64 KiB (`port::RAW_RX_OWN`; more are dropped,
/// counted): what the peer can make this side keep without credit,
/// whatever number of channels are bound and unread (256 full queues would
/// hold 1 GiB). Eight full queues of 64 KiB SDUs.
const RAW_RX_BYTES: usize = 32 << 20;
/// The credit window a flow grants its peer: sixteen SDUs of any size,
/// about 1 MiB. Four (vsock's 256 KiB) left a 64 KiB stream waiting for
/// credit: a `CREDIT` takes two work passes and the writer's copy to turn
/// into data at the reader, longer than reading the half window left.
const FLOW_WINDOW: u32 = 16 * MIN_WINDOW;
/// SDUs a flow's receive queue can hold: the window bounds them.
const FLOW_RXQ_LEN: usize = (FLOW_WINDOW / 64) as usize + 1;
/// Data SDUs waiting to be sent, per device.
const TXQ_LEN: usize = 256;
/// Writers that found the send queue full are told there is room when it
/// is down to this many (as a socket's writers are woken when half its
/// buffer is free): woken at each SDU sent, every blocked writer woke for
/// one slot per SDU (`selftests/vmpi/flows.sh`).
const TXQ_WAKE: usize = TXQ_LEN / 2;
/// SDUs sent from any context waiting to join them, per device.
const ANY_CONTEXT_TXQ_LEN: usize = 64;
/// Incoming flows a registration holds until they are accepted.
const BACKLOG_LEN: usize = 16;
/// Allocation timeout when the user gives none, and the largest allowed.
const ALLOC_TIMEOUT_MS: u32 = 3000;
const ALLOC_TIMEOUT_MAX_MS: u32 = 60_000;
/// Ports (open files and in-kernel users) per device.
const MAX_PORTS: usize = 4096;
/// SDUs handed to in-kernel users per run of the device's work.
const DELIVER_BUDGET: usize = 64;

struct VmpiCore;

impl kernel::Module for VmpiCore {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("loaded, ABI version {}\n", bindings::VMPI_ABI_VERSION);
        Ok(VmpiCore)
    }
}
