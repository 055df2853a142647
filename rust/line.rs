// SPDX-License-Identifier: GPL-2.0

//! Parsing of the one-line writes users make to rvio's sysfs files (`echo
//! ... > /sys/...`): words, decimal numbers, MAC addresses, interface
//! names, domain and VLAN ids. Pure no_std logic shared by the modules'
//! pure files (the SR-IOV hook's policy, the envelope switch's table);
//! `cargo test` runs it on the host.

/// Longest interface name, without its NUL (the kernel's `IFNAMSIZ - 1`).
pub const IFNAME_MAX: usize = 15;
/// Largest domain id (domain 0 is the host itself).
pub const MAX_DOMAIN: u16 = 0x7fef;
/// Largest VLAN id.
pub const MAX_VLAN: u16 = 4094;

/// A MAC address.
pub type Mac = [u8; 6];

/// What is wrong with a line written to a sysfs file (`EINVAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Not UTF-8 / ASCII, or empty.
    Empty,
    /// A bad interface name.
    IfName,
    /// A bad number (VF index, count, domain, rate).
    Number,
    /// A bad MAC address (also: multicast or all zeros).
    Mac,
    /// A bad VLAN list (ids above 4094, too many, repeated).
    Vlans,
    /// A `key=value` with an unknown key, or a key twice.
    Key,
    /// `on`/`off` expected.
    Bool,
    /// `domain=` or `mac=` missing.
    Missing,
    /// More or fewer words than the file takes.
    Words,
    /// An unknown route (the envelope switch's table).
    Route,
}

/// An interface name: 1 to 15 bytes, printable ASCII, no `/`, `:` or
/// white space (what `dev_valid_name()` accepts, restricted to ASCII).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IfName {
    len: u8,
    buf: [u8; IFNAME_MAX],
}

impl IfName {
    /// Checks and copies a name.
    pub fn new(b: &[u8]) -> Result<Self, ParseError> {
        let ok = |c: &u8| (0x21..=0x7e).contains(c) && *c != b'/' && *c != b':';
        if b.is_empty() || b.len() > IFNAME_MAX || b == b"." || b == b".." || !b.iter().all(ok) {
            return Err(ParseError::IfName);
        }
        let mut buf = [0u8; IFNAME_MAX];
        buf[..b.len()].copy_from_slice(b);
        Ok(Self {
            len: b.len() as u8,
            buf,
        })
    }

    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    /// The name as text (ASCII by construction).
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("?")
    }
}

impl core::fmt::Display for IfName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::fmt::Debug for IfName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

/// A MAC address as `ip link` prints it.
pub struct MacFmt<'a>(pub &'a Mac);

impl core::fmt::Display for MacFmt<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// Decimal, no sign, no leading `+`, fits in a `u32`.
pub fn parse_u32(s: &str) -> Result<u32, ParseError> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(ParseError::Number);
    }
    s.parse::<u32>().map_err(|_| ParseError::Number)
}

/// A domain id: decimal, 1 to [`MAX_DOMAIN`] (the host, 0, is no domain
/// a line can name).
pub fn parse_domain(s: &str) -> Result<u16, ParseError> {
    match u16::try_from(parse_u32(s)?) {
        Ok(d @ 1..=MAX_DOMAIN) => Ok(d),
        _ => Err(ParseError::Number),
    }
}

/// `aa:bb:cc:dd:ee:ff` (hex, either case): a unicast, non-zero address.
pub fn parse_mac(s: &str) -> Result<Mac, ParseError> {
    let mut mac = [0u8; 6];
    let mut n = 0;
    for w in s.split(':') {
        if n == 6 || w.len() != 2 || !w.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(ParseError::Mac);
        }
        mac[n] = u8::from_str_radix(w, 16).map_err(|_| ParseError::Mac)?;
        n += 1;
    }
    if n != 6 || mac[0] & 1 != 0 || mac == [0; 6] {
        return Err(ParseError::Mac);
    }
    Ok(mac)
}

/// `on` or `off`.
pub fn parse_bool(s: &str) -> Result<bool, ParseError> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(ParseError::Bool),
    }
}

/// The text of a sysfs write: ASCII, one line (a trailing newline is
/// allowed, as `echo` adds it), split in words.
pub fn words(b: &[u8]) -> Result<core::str::SplitAsciiWhitespace<'_>, ParseError> {
    let b = b.strip_suffix(b"\n").unwrap_or(b);
    if b.contains(&b'\n') || b.contains(&0) {
        return Err(ParseError::Words);
    }
    let s = core::str::from_utf8(b).map_err(|_| ParseError::Empty)?;
    if s.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(s.split_ascii_whitespace())
}

/// A line of exactly `N` words.
pub fn exactly<const N: usize>(b: &[u8]) -> Result<[&str; N], ParseError> {
    let mut it = words(b)?;
    let mut out = [""; N];
    for w in out.iter_mut() {
        *w = it.next().ok_or(ParseError::Words)?;
    }
    if it.next().is_some() {
        return Err(ParseError::Words);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::format;

    const M1: Mac = [0x02, 0, 0, 0, 0, 1];

    #[test]
    fn names() {
        assert!(IfName::new(b"eth0").is_ok());
        assert!(IfName::new(b"a23456789012345").is_ok());
        for bad in [
            &b""[..],
            b"a234567890123456",
            b"a/b",
            b"a:b",
            b"a b",
            b".",
            b"..",
            b"\xc3\xa9",
        ] {
            assert_eq!(IfName::new(bad), Err(ParseError::IfName), "{bad:?}");
        }
        let n = IfName::new(b"eth0").unwrap();
        assert_eq!((n.as_bytes(), n.as_str()), (&b"eth0"[..], "eth0"));
        assert_eq!(format!("{n} {n:?}"), "eth0 eth0");
    }

    #[test]
    fn macs() {
        assert_eq!(parse_mac("02:00:00:00:00:01"), Ok(M1));
        assert_eq!(parse_mac("0A:bB:00:00:00:01"), Ok([0x0a, 0xbb, 0, 0, 0, 1]));
        for bad in [
            "01:00:00:00:00:01",
            "00:00:00:00:00:00",
            "02:00:00:00:00",
            "02:00:00:00:00:00:00",
            "2:00:00:00:00:01",
            "02-00-00-00-00-01",
            "0g:00:00:00:00:01",
            "",
        ] {
            assert_eq!(parse_mac(bad), Err(ParseError::Mac), "{bad}");
        }
        assert_eq!(
            format!("{}", MacFmt(&[0x0a, 0xbb, 0, 0, 0, 1])),
            "0a:bb:00:00:00:01"
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u32("0"), Ok(0));
        assert_eq!(parse_u32("007"), Ok(7));
        assert_eq!(parse_u32("4294967295"), Ok(u32::MAX));
        for bad in ["", "-1", "+1", "0x2", "1 ", "4294967296", "99999999999"] {
            assert_eq!(parse_u32(bad), Err(ParseError::Number), "{bad}");
        }
        assert_eq!(parse_domain("1"), Ok(1));
        assert_eq!(parse_domain("32751"), Ok(MAX_DOMAIN));
        for bad in ["0", "32752", "65537", "-1", "x", ""] {
            assert_eq!(parse_domain(bad), Err(ParseError::Number), "{bad}");
        }
        assert_eq!(parse_bool("on"), Ok(true));
        assert_eq!(parse_bool("off"), Ok(false));
        for bad in ["", "On", "yes", "1"] {
            assert_eq!(parse_bool(bad), Err(ParseError::Bool), "{bad}");
        }
    }

    #[test]
    fn lines() {
        fn w(b: &[u8]) -> Result<std::vec::Vec<&str>, ParseError> {
            words(b).map(|it| it.collect())
        }
        assert_eq!(w(b"a  b\tc\n"), Ok(std::vec!["a", "b", "c"]));
        assert_eq!(w(b" a "), Ok(std::vec!["a"]));
        assert_eq!(w(b""), Err(ParseError::Empty));
        assert_eq!(w(b"\n"), Err(ParseError::Empty));
        assert_eq!(w(b" \t"), Err(ParseError::Empty));
        assert_eq!(w(b"\xff"), Err(ParseError::Empty));
        assert_eq!(w(b"a\n\n"), Err(ParseError::Words));
        assert_eq!(w(b"a\nb"), Err(ParseError::Words));
        assert_eq!(w(b"a\x00b"), Err(ParseError::Words));
        assert_eq!(exactly::<2>(b"eth0 7\n"), Ok(["eth0", "7"]));
        assert_eq!(exactly::<2>(b"eth0"), Err(ParseError::Words));
        assert_eq!(exactly::<2>(b"eth0 7 8"), Err(ParseError::Words));
        assert_eq!(exactly::<1>(b"\n"), Err(ParseError::Empty));
    }
}
