// SPDX-License-Identifier: GPL-2.0

//! `/sys/kernel/envelope_switch/` (`docs/envelope.md` section 4).

use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::{Arc, ArcBorrow};

use crate::envelope_proto::domain::parse_domain_line;
use crate::envelope_proto::table::parse_line;
use crate::line::{exactly, IfName};
use crate::switch::Switch;
use crate::sysfs_buf::SysfsBuf;
use crate::sysfs_dir::{Attrs, Mode};

const DOMAINS: usize = 0;
const TABLE: usize = 1;
const MODE: usize = 2;
const STATS: usize = 3;
const UPLINK: usize = 4;

impl Attrs for Switch {
    const ATTRS: &'static [(&'static CStr, Mode)] = &[
        (kernel::c_str!("domains"), Mode::ReadWrite),
        (kernel::c_str!("table"), Mode::ReadWrite),
        (kernel::c_str!("mode"), Mode::ReadWrite),
        (kernel::c_str!("stats"), Mode::ReadOnly),
        (kernel::c_str!("uplink"), Mode::ReadWrite),
    ];
    /// A full table is 1024 lines of up to 74 bytes.
    const LARGE: &'static [usize] = &[TABLE];

    fn show(&self, idx: usize, out: &mut SysfsBuf<'_>) {
        match idx {
            DOMAINS => self.show_domains(out),
            TABLE => self.show_table(out),
            MODE => self.show_mode(out),
            STATS => self.show_stats(out),
            UPLINK => self.show_uplink(out),
            _ => {}
        }
    }

    fn store(this: ArcBorrow<'_, Self>, idx: usize, input: &[u8]) -> Result {
        match idx {
            DOMAINS => {
                let cmd = parse_domain_line(input).map_err(|_| EINVAL)?;
                Arc::<Switch>::from(this).domains_cmd(cmd)
            }
            TABLE => {
                let cmd = parse_line(input).map_err(|_| EINVAL)?;
                Arc::<Switch>::from(this).table_cmd(cmd)
            }
            MODE => match input.strip_suffix(b"\n").unwrap_or(input) {
                b"envelope" => {
                    this.set_full_copy(false);
                    Ok(())
                }
                b"copy" => {
                    this.set_full_copy(true);
                    Ok(())
                }
                _ => Err(EINVAL),
            },
            UPLINK => {
                let [name] = exactly::<1>(input).map_err(|_| EINVAL)?;
                let this = Arc::<Switch>::from(this);
                if name == "none" {
                    return this.set_uplink(None);
                }
                let name = IfName::new(name.as_bytes()).map_err(|_| EINVAL)?;
                let mut c = [0u8; 16];
                c[..name.as_bytes().len()].copy_from_slice(name.as_bytes());
                let c =
                    CStr::from_bytes_with_nul(&c[..=name.as_bytes().len()]).map_err(|_| EINVAL)?;
                this.set_uplink(Some(c))
            }
            _ => Err(EINVAL),
        }
    }
}
