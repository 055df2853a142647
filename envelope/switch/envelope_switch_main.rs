// SPDX-License-Identifier: GPL-2.0

//! `envelope_switch`: the host side of envelope switching
//! (`docs/envelope.md`). It attaches VMPI devices as domains, keeps the
//! authoritative forwarding table, pushes each domain its view of it, and
//! switches the frames the domains' netfronts send over VMPI raw channel
//! 1, and those of an uplink (a host `net_device`), all configured
//! through `/sys/kernel/envelope_switch/`. Routes "direct via VF" follow
//! the SR-IOV hook's VF policies (it depends on `sriov_hook.ko`).

use kernel::prelude::*;
use kernel::sync::Arc;

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
// VMPI's pure logic, for its `Role` type (`rust/rvio/vmpi_port.rs`).
#[path = "../../vmpi/proto/mod.rs"]
pub mod proto;
#[path = "../../rust/rvio/sriov_route.rs"]
pub mod sriov_route;
#[path = "../../rust/sysfs_buf.rs"]
pub mod sysfs_buf;
#[path = "../../rust/sysfs_dir.rs"]
pub mod sysfs_dir;
#[path = "../../rust/uplink.rs"]
pub mod uplink;
#[path = "../../rust/rvio/vmpi_port.rs"]
pub mod vmpi_port;

mod attrs;
mod switch;

use sriov_route::Watch;
use switch::Switch;
use sysfs_dir::Dir;

module! {
    type: EnvelopeSwitchModule,
    name: "envelope_switch",
    author: "rvio developers",
    description: "Envelope switching: the host's switch and forwarding table for VMPI netfronts",
    license: "GPL",
}

struct EnvelopeSwitchModule {
    dir: Option<Dir<Switch>>,
    /// The SR-IOV hook's route changes (routes "direct via VF").
    watch: Option<Watch<Switch>>,
}

impl kernel::Module for EnvelopeSwitchModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let switch = Switch::new()?;
        let watch = Watch::new(switch.clone())?;
        let dir = Dir::new(kernel::c_str!("envelope_switch"), switch)?;
        Ok(Self {
            dir: Some(dir),
            watch: Some(watch),
        })
    }
}

impl Drop for EnvelopeSwitchModule {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let switch: Arc<Switch> = dir.owner().clone();
            // No sysfs call runs after this, then no route change call.
            drop(dir);
            drop(self.watch.take());
            switch.shut_down();
        }
    }
}
