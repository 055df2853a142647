// SPDX-License-Identifier: GPL-2.0

//! The lines users write to the switch's `domains` file
//! (`docs/envelope.md` section 4): attach a VMPI device (by the name of its
//! vDPA device) to the switch as domain D, or detach it.

use crate::line::{exactly, parse_domain, parse_u32, words, ParseError};

/// Longest device name.
pub const DEV_NAME_MAX: usize = 31;

/// A vDPA device's name: 1 to 31 printable ASCII bytes, no `/`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DevName {
    len: u8,
    buf: [u8; DEV_NAME_MAX],
}

impl DevName {
    /// Checks and copies a name.
    pub fn new(b: &[u8]) -> Result<Self, ParseError> {
        let ok = |c: &u8| (0x21..=0x7e).contains(c) && *c != b'/';
        if b.is_empty() || b.len() > DEV_NAME_MAX || !b.iter().all(ok) {
            return Err(ParseError::IfName);
        }
        let mut buf = [0u8; DEV_NAME_MAX];
        buf[..b.len()].copy_from_slice(b);
        Ok(Self {
            len: b.len() as u8,
            buf,
        })
    }

    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

impl core::fmt::Display for DevName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Printable ASCII by construction.
        for &c in self.as_bytes() {
            core::fmt::Write::write_char(f, c as char)?;
        }
        Ok(())
    }
}

impl core::fmt::Debug for DevName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

/// A write to the `domains` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainCmd {
    /// `DEV domain=D [rate=BYTES_PER_S]`.
    Attach {
        /// The vDPA device of the domain's VMPI device.
        dev: DevName,
        /// Its domain id.
        domain: u16,
        /// Bytes per second it may send through the switch; 0: no limit.
        rate: u32,
    },
    /// `DEV del`.
    Detach(DevName),
}

/// Parses one line written to the `domains` file.
pub fn parse_domain_line(b: &[u8]) -> Result<DomainCmd, ParseError> {
    if let Ok([dev, del]) = exactly::<2>(b) {
        if del == "del" {
            return Ok(DomainCmd::Detach(DevName::new(dev.as_bytes())?));
        }
    }
    let mut w = words(b)?;
    let dev = DevName::new(w.next().ok_or(ParseError::Words)?.as_bytes())?;
    let (mut domain, mut rate) = (None, None);
    for kv in w {
        let (k, v) = kv.split_once('=').ok_or(ParseError::Key)?;
        let taken = match k {
            "domain" => domain.replace(parse_domain(v)?).is_some(),
            "rate" => rate.replace(parse_u32(v)?).is_some(),
            _ => return Err(ParseError::Key),
        };
        if taken {
            return Err(ParseError::Key);
        }
    }
    Ok(DomainCmd::Attach {
        dev,
        domain: domain.ok_or(ParseError::Missing)?,
        rate: rate.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_lines() {
        let d1 = DevName::new(b"d1").unwrap();
        assert_eq!(
            parse_domain_line(b"d1 domain=3\n"),
            Ok(DomainCmd::Attach {
                dev: d1,
                domain: 3,
                rate: 0
            })
        );
        assert_eq!(
            parse_domain_line(b"d1 rate=1000000 domain=3"),
            Ok(DomainCmd::Attach {
                dev: d1,
                domain: 3,
                rate: 1_000_000
            })
        );
        assert_eq!(parse_domain_line(b"d1 del"), Ok(DomainCmd::Detach(d1)));
        for (bad, err) in [
            (&b"d1"[..], ParseError::Missing),
            (b"d1 domain=0", ParseError::Number),
            (b"d1 domain=3 domain=3", ParseError::Key),
            (b"d1 domain=3 rate=-1", ParseError::Number),
            (b"d1 domain=3 x=1", ParseError::Key),
            (b"a/b domain=3", ParseError::IfName),
            (
                b"0123456789012345678901234567890123 domain=3",
                ParseError::IfName,
            ),
            (b"", ParseError::Empty),
        ] {
            assert_eq!(parse_domain_line(bad), Err(err));
        }
    }
}
