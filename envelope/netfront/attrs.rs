// SPDX-License-Identifier: GPL-2.0

//! `/sys/kernel/envelope_netfront/` (`docs/envelope.md` section 6).

use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::ArcBorrow;

use crate::envelope_proto::front::{parse_attach_line, parse_vf_line};
use crate::front::Netfront;
use crate::line::exactly;
use crate::sysfs_buf::SysfsBuf;
use crate::sysfs_dir::{Attrs, Mode};

const ATTACH: usize = 0;
const DETACH: usize = 1;
const FRONTS: usize = 2;
const VF: usize = 3;

impl Attrs for Netfront {
    const ATTRS: &'static [(&'static CStr, Mode)] = &[
        (kernel::c_str!("attach"), Mode::WriteOnly),
        (kernel::c_str!("detach"), Mode::WriteOnly),
        (kernel::c_str!("fronts"), Mode::ReadOnly),
        (kernel::c_str!("vf"), Mode::WriteOnly),
    ];

    fn show(&self, idx: usize, out: &mut SysfsBuf<'_>) {
        if idx == FRONTS {
            self.show_fronts(out);
        }
    }

    fn store(this: ArcBorrow<'_, Self>, idx: usize, input: &[u8]) -> Result {
        match idx {
            ATTACH => {
                let cmd = parse_attach_line(input).map_err(|_| EINVAL)?;
                Netfront::attach(&cmd)
            }
            DETACH => {
                let [name] = exactly::<1>(input).map_err(|_| EINVAL)?;
                this.detach(name.as_bytes())
            }
            VF => {
                let cmd = parse_vf_line(input).map_err(|_| EINVAL)?;
                this.set_vf(&cmd)
            }
            _ => Err(EINVAL),
        }
    }
}
