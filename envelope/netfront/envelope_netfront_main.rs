// SPDX-License-Identifier: GPL-2.0

//! `envelope_netfront`: the guest side of envelope switching
//! (`docs/envelope.md`). Each interface it makes is an Ethernet
//! `net_device` over a guest-side VMPI device (raw channel 1): it keeps
//! the read-only replica of the forwarding table the host pushes, and
//! sends and receives frames through the host's switch. Interfaces are
//! made and removed through `/sys/kernel/envelope_netfront/`.

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
use sysfs_dir::Dir;

module! {
    type: EnvelopeNetfrontModule,
    name: "envelope_netfront",
    author: "rvio developers",
    description: "Envelope switching: Ethernet interfaces over VMPI devices (the guest's netfront)",
    license: "GPL",
}

struct EnvelopeNetfrontModule {
    dir: Option<Dir<Netfront>>,
}

impl kernel::Module for EnvelopeNetfrontModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let dir = Dir::new(kernel::c_str!("envelope_netfront"), Netfront::new()?)?;
        Ok(Self { dir: Some(dir) })
    }
}

impl Drop for EnvelopeNetfrontModule {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let netfront: Arc<Netfront> = dir.owner().clone();
            // No sysfs call runs after this.
            drop(dir);
            netfront.shut_down();
        }
    }
}
