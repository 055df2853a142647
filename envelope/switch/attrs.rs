// SPDX-License-Identifier: GPL-2.0

//! `/sys/kernel/envelope_switch/` (`docs/envelope.md` section 4).

use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::{Arc, ArcBorrow};

use crate::envelope_proto::domain::parse_domain_line;
use crate::envelope_proto::table::parse_line;
use crate::switch::Switch;
use crate::sysfs_buf::SysfsBuf;
use crate::sysfs_dir::{Attrs, Mode};

const DOMAINS: usize = 0;
const TABLE: usize = 1;
const MODE: usize = 2;
const STATS: usize = 3;

impl Attrs for Switch {
    const ATTRS: &'static [(&'static CStr, Mode)] = &[
        (kernel::c_str!("domains"), Mode::ReadWrite),
        (kernel::c_str!("table"), Mode::ReadWrite),
        (kernel::c_str!("mode"), Mode::ReadWrite),
        (kernel::c_str!("stats"), Mode::ReadOnly),
    ];

    fn show(&self, idx: usize, out: &mut SysfsBuf<'_>) {
        match idx {
            DOMAINS => self.show_domains(out),
            TABLE => self.show_table(out),
            MODE => self.show_mode(out),
            STATS => self.show_stats(out),
            _ => {}
        }
    }

    fn store(this: ArcBorrow<'_, Self>, idx: usize, input: &[u8]) -> Result {
        match idx {
            DOMAINS => {
                let cmd = parse_domain_line(input).map_err(|_| EINVAL)?;
                Arc::<Switch>::from(this).domains_cmd(cmd)
            }
            TABLE => this.table_cmd(parse_line(input).map_err(|_| EINVAL)?),
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
            _ => Err(EINVAL),
        }
    }
}
