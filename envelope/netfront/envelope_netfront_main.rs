// SPDX-License-Identifier: GPL-2.0

//! `envelope_netfront`: the guest side of envelope switching
//! (`docs/envelope.md`). Each interface it makes is an Ethernet
//! `net_device` over a guest-side VMPI device (raw channel 1): it keeps
//! the read-only replica of the forwarding table the host pushes, and
//! sends and receives frames through the host's switch. Interfaces are
//! made by `ip link add NAME parentdev virtioN type envelope` or through
//! `/sys/kernel/envelope_netfront/`, and removed by `ip link del` or
//! there.

use kernel::prelude::*;
use kernel::sync::Arc;

#[path = "../../rust/bh_lock.rs"]
pub mod bh_lock;
#[path = "bindings_generated.rs"]
mod bindings;
#[path = "../../rust/dwork.rs"]
pub mod dwork;
#[path = "../proto/mod.rs"]
pub mod envelope_proto;
#[path = "../../rust/errno.rs"]
pub mod errno;
#[path = "../../rust/line.rs"]
pub mod line;
#[path = "../../rust/netdev.rs"]
pub mod netdev;
// VMPI's pure logic, for its `Role` type (`rust/rvio/vmpi_port.rs`).
#[path = "../../vmpi/proto/mod.rs"]
pub mod proto;
#[path = "../../rust/sysfs_buf.rs"]
pub mod sysfs_buf;
#[path = "../../rust/sysfs_dir.rs"]
pub mod sysfs_dir;
#[path = "../../rust/rvio/vmpi_port.rs"]
pub mod vmpi_port;
#[path = "../../rust/work_handle.rs"]
pub mod work_handle;

mod attrs;
mod front;
mod grant_io;

use front::Netfront;
use netdev::KindRegistration;
use sysfs_dir::Dir;

module! {
    type: EnvelopeNetfrontModule,
    name: "envelope_netfront",
    author: "rvio developers",
    description: "Envelope switching: Ethernet interfaces over VMPI devices (the guest's netfront)",
    license: "GPL",
    alias: ["rtnl-link-envelope"],
}

struct EnvelopeNetfrontModule {
    netfront: Arc<Netfront>,
    dir: Option<Dir<Netfront>>,
    kind: Option<KindRegistration<Netfront>>,
}

impl kernel::Module for EnvelopeNetfrontModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let netfront = Netfront::new()?;
        // The directory first: an `attach` before the kind is registered
        // fails (`ENODEV`), so if registering the kind fails, no
        // interface exists.
        let dir = Dir::new(kernel::c_str!("envelope_netfront"), netfront.clone())?;
        let kind = KindRegistration::new(netfront.clone())?;
        Ok(Self {
            netfront,
            dir: Some(dir),
            kind: Some(kind),
        })
    }
}

impl Drop for EnvelopeNetfrontModule {
    fn drop(&mut self) {
        // No sysfs call runs after this.
        drop(self.dir.take());
        // Nor `ip link add`; every interface is unregistered (the reaper
        // is told to remove them).
        drop(self.kind.take());
        self.netfront.shut_down();
        // Every interface is freed: the last callbacks' threads leave.
        netdev::exit_barrier();
    }
}
