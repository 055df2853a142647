// SPDX-License-Identifier: GPL-2.0

//! The lines users write to the netfront's `attach` file
//! (`docs/envelope.md` section 6): make an interface over a guest-side
//! VMPI device.

use super::domain::DevName;
use crate::line::{words, IfName, ParseError};

/// A write to `attach`: `DEV [name=IFNAME]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachCmd {
    /// The virtio device of the guest's VMPI device (`virtioN`).
    pub dev: DevName,
    /// The interface's name; `None`: `env%d`.
    pub name: Option<IfName>,
}

/// Parses one line written to `attach`.
pub fn parse_attach_line(b: &[u8]) -> Result<AttachCmd, ParseError> {
    let mut w = words(b)?;
    let dev = DevName::new(w.next().ok_or(ParseError::Words)?.as_bytes())?;
    let mut name = None;
    for kv in w {
        match kv.split_once('=') {
            Some(("name", v)) if name.is_none() => {
                if v.contains('%') {
                    return Err(ParseError::IfName);
                }
                name = Some(IfName::new(v.as_bytes())?)
            }
            _ => return Err(ParseError::Key),
        }
    }
    Ok(AttachCmd { dev, name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_lines() {
        let c = parse_attach_line(b"virtio3 name=ef1\n").unwrap();
        assert_eq!(c.dev.as_bytes(), b"virtio3");
        assert_eq!(c.name.unwrap().as_bytes(), b"ef1");
        assert_eq!(parse_attach_line(b"virtio3").unwrap().name, None);
        for bad in [
            &b""[..],
            b"virtio3 name=",
            b"virtio3 name=a/b",
            b"virtio3 name=e%d",
            b"virtio3 name=a name=b",
            b"virtio3 x=1",
            b"virtio3 name=0123456789abcdef",
        ] {
            assert!(parse_attach_line(bad).is_err(), "{:?}", bad);
        }
    }
}
