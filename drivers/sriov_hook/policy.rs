// SPDX-License-Identifier: GPL-2.0

//! Pure logic of the SR-IOV hook (`sriov_hook.ko`): the lines users write
//! to `/sys/kernel/sriov_hook/` (`docs/sriov-hook.md`), the VF policy, the
//! check of every VF-configuration request against it, and the routes the
//! forwarding table consumes. The words, numbers, MACs and names in those
//! lines are parsed by `rust/line.rs` (`crate::line`). No kernel API:
//! `cargo test` runs it on the host and a fuzz target feeds it arbitrary
//! sysfs writes.

use crate::line::{
    exactly, parse_bool, parse_domain, parse_mac, parse_u32, words, IfName, Mac, MacFmt,
    ParseError, MAX_VLAN,
};

/// Most VLAN ids one policy allows.
pub const MAX_VLANS: usize = 8;

/// The VLAN ids a domain's VF may use (0: untagged).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Vlans {
    len: u8,
    ids: [u16; MAX_VLANS],
}

impl Vlans {
    /// The allowed ids, in the order given (the first is applied).
    pub fn ids(&self) -> &[u16] {
        &self.ids[..usize::from(self.len)]
    }

    fn parse(s: &str) -> Result<Self, ParseError> {
        let mut v = Self::default();
        for w in s.split(',') {
            let id = parse_u32(w).map_err(|_| ParseError::Vlans)?;
            if id > u32::from(MAX_VLAN)
                || usize::from(v.len) == MAX_VLANS
                || v.ids().contains(&(id as u16))
            {
                return Err(ParseError::Vlans);
            }
            v.ids[usize::from(v.len)] = id as u16;
            v.len += 1;
        }
        Ok(v)
    }
}

/// The policy of one VF: the domain it is assigned to and what that
/// domain may do with it. What the policy leaves out stays as the PF
/// driver has it and is not checked.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Policy {
    /// The domain (guest) the VF is assigned to: 1 to
    /// [`MAX_DOMAIN`](crate::line::MAX_DOMAIN).
    pub domain: u16,
    /// The VF's MAC: the only one it may get.
    pub mac: Mac,
    /// VLAN ids it may use (the first is applied); `None`: any.
    pub vlans: Option<Vlans>,
    /// Cap on its maximum TX rate in Mbit/s; `None`: no cap.
    pub max_rate: Option<u32>,
    /// Spoof checking: `Some(true)` applies it and forbids turning it
    /// off; `Some(false)` applies it off.
    pub spoofchk: Option<bool>,
    /// Trust: `Some(false)` applies it off and forbids turning it on;
    /// `Some(true)` allows (and applies) it.
    pub trust: Option<bool>,
}

/// A line written to the `policy` file.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PolicyCmd {
    /// `PF VF domain=D mac=M [vlans=V,..] [max_rate=R] [spoofchk=on|off] [trust=on|off]`
    Set {
        /// The PF.
        pf: IfName,
        /// The VF's index.
        vf: u32,
        /// Its policy.
        policy: Policy,
    },
    /// `PF VF clear`: the VF is no longer assigned.
    Clear {
        /// The PF.
        pf: IfName,
        /// The VF's index.
        vf: u32,
    },
}

/// A write to `attach` or `detach`: `PF`.
pub fn parse_pf(b: &[u8]) -> Result<IfName, ParseError> {
    let [pf] = exactly::<1>(b)?;
    IfName::new(pf.as_bytes())
}

/// A write to `numvfs`: `PF N`.
pub fn parse_numvfs(b: &[u8]) -> Result<(IfName, u16), ParseError> {
    let [pf, n] = exactly::<2>(b)?;
    let n = u16::try_from(parse_u32(n)?).map_err(|_| ParseError::Number)?;
    Ok((IfName::new(pf.as_bytes())?, n))
}

/// A write to `policy` (see [`PolicyCmd`]).
pub fn parse_policy(b: &[u8]) -> Result<PolicyCmd, ParseError> {
    let mut it = words(b)?;
    let pf = IfName::new(it.next().ok_or(ParseError::Words)?.as_bytes())?;
    let vf = parse_u32(it.next().ok_or(ParseError::Words)?)?;
    if vf > i32::MAX as u32 {
        return Err(ParseError::Number);
    }
    let mut rest = it.peekable();
    if rest.peek() == Some(&"clear") {
        rest.next();
        return match rest.next() {
            None => Ok(PolicyCmd::Clear { pf, vf }),
            Some(_) => Err(ParseError::Words),
        };
    }
    let (mut domain, mut mac) = (None, None);
    let mut policy = Policy {
        domain: 0,
        mac: [0; 6],
        vlans: None,
        max_rate: None,
        spoofchk: None,
        trust: None,
    };
    let mut seen = 0u8;
    for w in rest {
        let (k, v) = w.split_once('=').ok_or(ParseError::Key)?;
        let bit = match k {
            "domain" => {
                domain = Some(parse_domain(v)?);
                1
            }
            "mac" => {
                mac = Some(parse_mac(v)?);
                2
            }
            "vlans" => {
                policy.vlans = Some(Vlans::parse(v)?);
                4
            }
            "max_rate" => {
                let r = parse_u32(v)?;
                if r == 0 {
                    return Err(ParseError::Number);
                }
                policy.max_rate = Some(r);
                8
            }
            "spoofchk" => {
                policy.spoofchk = Some(parse_bool(v)?);
                16
            }
            "trust" => {
                policy.trust = Some(parse_bool(v)?);
                32
            }
            _ => return Err(ParseError::Key),
        };
        if seen & bit != 0 {
            return Err(ParseError::Key);
        }
        seen |= bit;
    }
    policy.domain = domain.ok_or(ParseError::Missing)?;
    policy.mac = mac.ok_or(ParseError::Missing)?;
    Ok(PolicyCmd::Set { pf, vf, policy })
}

impl core::fmt::Display for Policy {
    /// The `key=value` words of the policy, as `parse_policy` reads them.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "domain={} mac={}", self.domain, MacFmt(&self.mac))?;
        if let Some(v) = &self.vlans {
            f.write_str(" vlans=")?;
            for (i, id) in v.ids().iter().enumerate() {
                write!(f, "{}{}", if i == 0 { "" } else { "," }, id)?;
            }
        }
        if let Some(r) = self.max_rate {
            write!(f, " max_rate={}", r)?;
        }
        let onoff = |b: bool| if b { "on" } else { "off" };
        if let Some(s) = self.spoofchk {
            write!(f, " spoofchk={}", onoff(s))?;
        }
        if let Some(t) = self.trust {
            write!(f, " trust={}", onoff(t))?;
        }
        Ok(())
    }
}

/// A VF-configuration request (an `ndo_set_vf_*` call), as `ip link set
/// PF vf N ...` makes it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum VfRequest {
    /// `mac`
    Mac(Mac),
    /// `vlan`
    Vlan {
        /// The VLAN id (0: none).
        vlan: u16,
        /// The 802.1p priority.
        qos: u8,
        /// The ethertype (802.1Q or 802.1ad), host order.
        proto: u16,
    },
    /// `min_tx_rate`, `max_tx_rate`
    Rate {
        /// Guaranteed rate, Mbit/s.
        min: u32,
        /// Maximum rate, Mbit/s (0: unlimited).
        max: u32,
    },
    /// `spoofchk`
    SpoofChk(bool),
    /// `trust`
    Trust(bool),
    /// `state` (auto, enable, disable)
    LinkState(u32),
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// The MAC is another domain's (`EADDRINUSE`).
    OtherDomainMac,
    /// The VF's policy pins another MAC (`EPERM`).
    NotPolicyMac,
    /// The VLAN id is not one the domain may use (`EPERM`).
    Vlan,
    /// An 802.1ad (S-VLAN) tag under a VLAN policy, which lists 802.1Q
    /// ids (`EPERM`).
    VlanProto,
    /// The maximum rate is above the cap, or unlimited under a cap
    /// (`ERANGE`).
    Rate,
    /// Spoof checking may not be turned off (`EPERM`).
    SpoofChk,
    /// Trust may not be turned on (`EPERM`).
    Trust,
}

impl Violation {
    /// What the log line says.
    pub fn what(self) -> &'static str {
        match self {
            Self::OtherDomainMac => "MAC belongs to another domain",
            Self::NotPolicyMac => "MAC differs from the domain's",
            Self::Vlan => "VLAN not allowed for the domain",
            Self::VlanProto => "only 802.1Q VLANs for the domain",
            Self::Rate => "rate above the domain's cap",
            Self::SpoofChk => "spoof checking must stay on",
            Self::Trust => "trust not allowed for the domain",
        }
    }
}

/// Checks request `req` on a VF whose policy is `policy` (`None`: not
/// assigned). `owner(mac)` is the domain a MAC is assigned to on any
/// other VF of any PF, if any.
pub fn check(
    policy: Option<&Policy>,
    req: &VfRequest,
    owner: impl Fn(&Mac) -> Option<u16>,
) -> Result<(), Violation> {
    if let VfRequest::Mac(m) = req {
        if owner(m).is_some() {
            return Err(Violation::OtherDomainMac);
        }
        if policy.is_some_and(|p| p.mac != *m) {
            return Err(Violation::NotPolicyMac);
        }
    }
    let Some(p) = policy else { return Ok(()) };
    match *req {
        VfRequest::Vlan { vlan, proto, .. } => match &p.vlans {
            Some(_) if proto != ETH_P_8021Q => Err(Violation::VlanProto),
            Some(v) if !v.ids().contains(&vlan) => Err(Violation::Vlan),
            _ => Ok(()),
        },
        VfRequest::Rate { max, .. } => match p.max_rate {
            Some(cap) if max == 0 || max > cap => Err(Violation::Rate),
            _ => Ok(()),
        },
        VfRequest::SpoofChk(false) if p.spoofchk == Some(true) => Err(Violation::SpoofChk),
        VfRequest::Trust(true) if p.trust == Some(false) => Err(Violation::Trust),
        _ => Ok(()),
    }
}

/// The requests that apply `p` through the PF driver, in order (MAC,
/// VLAN, rate, spoof checking, trust); `None` ends the list.
pub fn apply_requests(p: &Policy) -> [Option<VfRequest>; 5] {
    [
        Some(VfRequest::Mac(p.mac)),
        p.vlans.map(|v| VfRequest::Vlan {
            vlan: v.ids().first().copied().unwrap_or(0),
            qos: 0,
            proto: ETH_P_8021Q,
        }),
        p.max_rate.map(|r| VfRequest::Rate { min: 0, max: r }),
        p.spoofchk.map(VfRequest::SpoofChk),
        p.trust.map(VfRequest::Trust),
    ]
}

/// The 802.1Q ethertype (host order).
pub const ETH_P_8021Q: u16 = 0x8100;

/// How the forwarding table reaches a domain's MAC.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Route {
    /// Directly through a VF assigned to the domain.
    Vf {
        /// The PF.
        pf: IfName,
        /// The VF's index.
        vf: u32,
    },
    /// The software path (the VF is gone or the hook is detached).
    Software,
}

/// The route of an assignment of VF `vf`: direct while the VF is ready
/// (the hook is attached to its PF and the VF has the policy's MAC) and
/// the PF has that VF (`num_vfs` of them).
pub fn route(pf: IfName, vf: u32, ready: bool, num_vfs: u32) -> Route {
    if ready && vf < num_vfs {
        Route::Vf { pf, vf }
    } else {
        Route::Software
    }
}

impl core::fmt::Display for Route {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Route::Vf { pf, vf } => write!(f, "vf {} {}", pf, vf),
            Route::Software => f.write_str("software"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::format;
    use std::string::String;

    const M1: Mac = [0x02, 0, 0, 0, 0, 1];
    const M2: Mac = [0x02, 0, 0, 0, 0, 2];

    fn pol(s: &str) -> Policy {
        match parse_policy(s.as_bytes()) {
            Ok(PolicyCmd::Set { policy, .. }) => policy,
            r => panic!("{s}: {r:?}"),
        }
    }

    #[test]
    fn pf_lines() {
        assert_eq!(
            parse_pf(b"eth0\n").map(|n| String::from(n.as_str())),
            Ok("eth0".into())
        );
        assert_eq!(parse_pf(b"eth0 eth1"), Err(ParseError::Words));
        assert_eq!(parse_pf(b"a/b"), Err(ParseError::IfName));
        assert_eq!(parse_pf(b"\n"), Err(ParseError::Empty));
        assert_eq!(parse_pf(b"eth0\n\n"), Err(ParseError::Words));
        assert_eq!(parse_pf(b"eth\x000"), Err(ParseError::Words));
    }

    #[test]
    fn numvfs() {
        assert_eq!(parse_numvfs(b"eth0 7\n").map(|(_, n)| n), Ok(7));
        assert_eq!(parse_numvfs(b"eth0 0").map(|(_, n)| n), Ok(0));
        for bad in [
            &b"eth0"[..],
            b"eth0 -1",
            b"eth0 +1",
            b"eth0 65536",
            b"eth0 1 2",
            b"eth0 0x2",
            b"eth0 99999999999",
        ] {
            assert!(parse_numvfs(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn policy_lines() {
        let p = pol("eth0 3 domain=7 mac=02:00:00:00:00:01 vlans=10,0,20 max_rate=1000 spoofchk=on trust=off\n");
        assert_eq!(p.domain, 7);
        assert_eq!(p.mac, M1);
        assert_eq!(
            p.vlans.map(|v| v.ids().to_vec()),
            Some(std::vec![10, 0, 20])
        );
        assert_eq!(
            (p.max_rate, p.spoofchk, p.trust),
            (Some(1000), Some(true), Some(false))
        );
        // What Display writes, parse reads back.
        let line = format!("eth0 3 {p}");
        assert_eq!(pol(&line), p);
        let q = pol("eth0 0 mac=02:00:00:00:00:02 domain=1");
        assert_eq!(
            (q.vlans, q.max_rate, q.spoofchk, q.trust),
            (None, None, None, None)
        );
        assert_eq!(format!("{q}"), "domain=1 mac=02:00:00:00:00:02");
        match parse_policy(b"eth0 2 clear\n") {
            Ok(PolicyCmd::Clear { pf, vf }) => assert_eq!((pf.as_str(), vf), ("eth0", 2)),
            r => panic!("{r:?}"),
        }
        let bad: &[(&str, ParseError)] = &[
            ("eth0 1", ParseError::Missing),
            ("eth0 1 domain=1", ParseError::Missing),
            ("eth0 1 mac=02:00:00:00:00:01", ParseError::Missing),
            ("eth0 1 domain=0 mac=02:00:00:00:00:01", ParseError::Number),
            (
                "eth0 1 domain=32752 mac=02:00:00:00:00:01",
                ParseError::Number,
            ),
            (
                "eth0 1 domain=1 domain=2 mac=02:00:00:00:00:01",
                ParseError::Key,
            ),
            (
                "eth0 1 domain=1 mac=02:00:00:00:00:01 color=red",
                ParseError::Key,
            ),
            (
                "eth0 1 domain=1 mac=02:00:00:00:00:01 trust",
                ParseError::Key,
            ),
            (
                "eth0 1 domain=1 mac=02:00:00:00:00:01 trust=yes",
                ParseError::Bool,
            ),
            (
                "eth0 1 domain=1 mac=02:00:00:00:00:01 vlans=4095",
                ParseError::Vlans,
            ),
            (
                "eth0 1 domain=1 mac=02:00:00:00:00:01 vlans=1,1",
                ParseError::Vlans,
            ),
            (
                "eth0 1 domain=1 mac=02:00:00:00:00:01 vlans=1,2,3,4,5,6,7,8,9",
                ParseError::Vlans,
            ),
            (
                "eth0 1 domain=1 mac=02:00:00:00:00:01 vlans=",
                ParseError::Vlans,
            ),
            (
                "eth0 1 domain=1 mac=02:00:00:00:00:01 max_rate=0",
                ParseError::Number,
            ),
            ("eth0 1 domain=1 mac=ff:ff:ff:ff:ff:ff", ParseError::Mac),
            ("eth0 x domain=1 mac=02:00:00:00:00:01", ParseError::Number),
            ("eth0 2147483648 clear", ParseError::Number),
            ("eth0 1 clear now", ParseError::Words),
            ("eth0", ParseError::Words),
            ("", ParseError::Empty),
        ];
        for (line, want) in bad {
            assert_eq!(parse_policy(line.as_bytes()), Err(*want), "{line}");
        }
    }

    #[test]
    fn checks() {
        let p = pol(
            "pf 0 domain=7 mac=02:00:00:00:00:01 vlans=10,20 max_rate=100 spoofchk=on trust=off",
        );
        let none = |_: &Mac| None;
        let owned = |m: &Mac| if *m == M2 { Some(9) } else { None };
        assert_eq!(check(Some(&p), &VfRequest::Mac(M1), none), Ok(()));
        assert_eq!(
            check(Some(&p), &VfRequest::Mac(M2), owned),
            Err(Violation::OtherDomainMac)
        );
        assert_eq!(
            check(Some(&p), &VfRequest::Mac([2, 0, 0, 0, 0, 9]), owned),
            Err(Violation::NotPolicyMac)
        );
        assert_eq!(
            check(None, &VfRequest::Mac(M2), owned),
            Err(Violation::OtherDomainMac)
        );
        assert_eq!(check(None, &VfRequest::Mac(M1), owned), Ok(()));
        let vlan = |vlan| VfRequest::Vlan {
            vlan,
            qos: 0,
            proto: ETH_P_8021Q,
        };
        assert_eq!(check(Some(&p), &vlan(10), none), Ok(()));
        assert_eq!(check(Some(&p), &vlan(20), none), Ok(()));
        assert_eq!(check(Some(&p), &vlan(30), none), Err(Violation::Vlan));
        assert_eq!(check(Some(&p), &vlan(0), none), Err(Violation::Vlan));
        let s_vlan = VfRequest::Vlan {
            vlan: 10,
            qos: 0,
            proto: 0x88a8,
        };
        assert_eq!(check(Some(&p), &s_vlan, none), Err(Violation::VlanProto));
        assert_eq!(
            check(Some(&p), &VfRequest::Rate { min: 0, max: 100 }, none),
            Ok(())
        );
        assert_eq!(
            check(Some(&p), &VfRequest::Rate { min: 0, max: 101 }, none),
            Err(Violation::Rate)
        );
        assert_eq!(
            check(Some(&p), &VfRequest::Rate { min: 0, max: 0 }, none),
            Err(Violation::Rate)
        );
        assert_eq!(check(Some(&p), &VfRequest::SpoofChk(true), none), Ok(()));
        assert_eq!(
            check(Some(&p), &VfRequest::SpoofChk(false), none),
            Err(Violation::SpoofChk)
        );
        assert_eq!(check(Some(&p), &VfRequest::Trust(false), none), Ok(()));
        assert_eq!(
            check(Some(&p), &VfRequest::Trust(true), none),
            Err(Violation::Trust)
        );
        assert_eq!(check(Some(&p), &VfRequest::LinkState(1), none), Ok(()));
        // What the policy leaves out is not checked.
        let q = pol("pf 0 domain=7 mac=02:00:00:00:00:01 spoofchk=off trust=on");
        for r in [
            vlan(30),
            VfRequest::Rate { min: 0, max: 0 },
            VfRequest::SpoofChk(true),
            VfRequest::Trust(false),
        ] {
            assert_eq!(check(Some(&q), &r, none), Ok(()), "{r:?}");
        }
        // Unassigned VFs: only other domains' MACs are refused.
        for r in [
            vlan(30),
            VfRequest::SpoofChk(false),
            VfRequest::Trust(true),
            VfRequest::Rate { min: 0, max: 0 },
        ] {
            assert_eq!(check(None, &r, owned), Ok(()), "{r:?}");
        }
    }

    #[test]
    fn applying_passes_its_own_check() {
        let p = pol(
            "pf 0 domain=7 mac=02:00:00:00:00:01 vlans=20,10 max_rate=100 spoofchk=on trust=off",
        );
        let reqs = apply_requests(&p);
        assert_eq!(
            reqs[1],
            Some(VfRequest::Vlan {
                vlan: 20,
                qos: 0,
                proto: ETH_P_8021Q
            })
        );
        for r in reqs.iter().flatten() {
            // No other VF has its MAC.
            assert_eq!(check(Some(&p), r, |_| None), Ok(()), "{r:?}");
        }
        let q = pol("pf 0 domain=7 mac=02:00:00:00:00:01");
        assert_eq!(apply_requests(&q).iter().flatten().count(), 1);
    }

    #[test]
    fn routes() {
        let pf = IfName::new(b"eth0").unwrap();
        assert_eq!(route(pf, 1, true, 2), Route::Vf { pf, vf: 1 });
        assert_eq!(route(pf, 2, true, 2), Route::Software);
        assert_eq!(route(pf, 0, false, 2), Route::Software);
        assert_eq!(format!("{}", route(pf, 1, true, 2)), "vf eth0 1");
    }

    /// Lines built from the words of real lines, some of them mutated, never
    /// panic; whatever parses is printed back (`Display`) and parses to the
    /// same value. The counts show the random lines reach every outcome: a
    /// policy set, a clear, and each of the parser's errors.
    #[test]
    fn random_lines_parse_exactly_or_not_at_all() {
        // Words of each place in a line, good and bad; `next` picks.
        const PFS: &[&str] = &["eth0", "pf1", "a23456789012345678", "a/b", "0"];
        const VFS: &[&str] = &["0", "3", "2147483647", "2147483648", "x", "-1", "clear"];
        const ATTRS: &[&str] = &[
            "domain=1",
            "domain=32767",
            "domain=0",
            "mac=02:00:00:00:00:01",
            "mac=0A:bb:00:00:00:09",
            "mac=01:00:00:00:00:01",
            "vlans=10,20",
            "vlans=0",
            "vlans=4095",
            "vlans=",
            "max_rate=100",
            "max_rate=0",
            "spoofchk=on",
            "spoofchk=off",
            "trust=on",
            "trust=maybe",
            "color=red",
            "mac",
            "=",
            "clear",
            "\u{e9}",
        ];
        let mut x = 0x1234_5678u32;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        let (mut set, mut clear, mut numvfs, mut pf) = (0, 0, 0, 0);
        let mut errors = std::collections::BTreeSet::new();
        for _ in 0..50_000 {
            let mut words = std::vec::Vec::new();
            if next() % 8 != 0 {
                words.push(PFS[next() as usize % PFS.len()]);
            }
            if next() % 8 != 0 {
                words.push(VFS[next() as usize % VFS.len()]);
            }
            if next() % 4 == 0 {
                words.push("clear");
            } else {
                // Mostly a domain and a MAC, in either order, then others.
                let mut attrs = std::vec![
                    ATTRS[(next() % 2) as usize],
                    ATTRS[3 + (next() % 2) as usize]
                ];
                if next() % 2 == 0 {
                    attrs.swap(0, 1);
                }
                for _ in 0..next() % 4 {
                    attrs.push(ATTRS[next() as usize % ATTRS.len()]);
                }
                attrs.truncate(next() as usize % 7);
                words.extend(attrs);
            }
            words.truncate(next() as usize % 9);
            let mut line = std::string::String::new();
            for (i, w) in words.iter().enumerate() {
                if i > 0 {
                    line.push(if next() % 16 == 0 { '\t' } else { ' ' });
                }
                line.push_str(w);
            }
            let mut b = line.into_bytes();
            if !b.is_empty() && next() % 4 == 0 {
                let at = next() as usize % b.len();
                const MUTATIONS: &[u8] = b"eth0 1=:,\n\x00\xffclear";
                b[at] = MUTATIONS[next() as usize % MUTATIONS.len()];
            }
            if next() % 2 == 0 {
                b.push(b'\n');
            }
            match parse_policy(&b) {
                Ok(PolicyCmd::Set { pf, vf, policy }) => {
                    set += 1;
                    let again = format!("{} {vf} {policy}", pf.as_str());
                    assert_eq!(
                        parse_policy(again.as_bytes()),
                        Ok(PolicyCmd::Set { pf, vf, policy }),
                        "{again}"
                    );
                }
                Ok(PolicyCmd::Clear { .. }) => clear += 1,
                Err(e) => {
                    errors.insert(format!("{e:?}"));
                }
            }
            if let Ok((p, n)) = parse_numvfs(&b) {
                numvfs += 1;
                assert_eq!(
                    parse_numvfs(format!("{} {n}", p.as_str()).as_bytes()),
                    Ok((p, n))
                );
            }
            if parse_pf(&b).is_ok() {
                pf += 1;
            }
        }
        assert!(
            set > 500 && clear > 500 && numvfs > 500 && pf > 500,
            "set {set} clear {clear} numvfs {numvfs} pf {pf}"
        );
        for e in [
            "Empty", "Words", "IfName", "Number", "Key", "Mac", "Vlans", "Bool", "Missing",
        ] {
            assert!(
                errors.iter().any(|got| got.starts_with(e)),
                "no line gave {e}: {errors:?}"
            );
        }
    }
}
