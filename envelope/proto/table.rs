// SPDX-License-Identifier: GPL-2.0

//! The forwarding table (`docs/envelope.md` sections 2 and 4): the host's
//! authoritative [`Table`] (MAC -> domain, route, VLAN) with the lines
//! users write to `/sys/kernel/envelope_switch/table`, the `TABLE` message
//! that carries each domain's view of it to that domain's netfront, and
//! the netfront's read-only [`Replica`], which accepts only a fully
//! checked table from the host's bytes.
//!
//! Both keep their entries in memory their owner gives them ([`Slots`]:
//! a `KVVec` in the kernel, `MAX_ENTRIES` of them, 12 KiB; never on the
//! stack).

use super::le16;
use super::msg::{table_prefix, MsgError, TableMsg, TABLE_HDR_LEN};
use crate::line::{
    exactly, parse_domain, parse_mac, words, Mac, MacFmt, ParseError, MAX_DOMAIN, MAX_VLAN,
};

/// Most entries of a table (a `TABLE` message of them is 12 KiB; the
/// `table` file, a line of at most 74 bytes each, is read in pages).
pub const MAX_ENTRIES: usize = 1024;
/// Length of an entry in a `TABLE` message.
pub const ENTRY_LEN: usize = 12;
/// The longest `TABLE` message.
pub const MAX_TABLE_MSG: usize = TABLE_HDR_LEN + MAX_ENTRIES * ENTRY_LEN;

/// How a domain's MAC is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Route {
    /// A grant and an envelope (the default).
    #[default]
    Envelope = 0,
    /// Full frames copied by the switch.
    Copy = 1,
    /// Directly, through the domain's VF (from the SR-IOV hook).
    Vf = 2,
    /// Through the uplink.
    Uplink = 3,
    /// Through the uplink until the entry's domain announces the MAC
    /// ([`Table::claim`]: a VM migrating in), then `Envelope`. The host's
    /// only: in effect, and on the wire, it is `Uplink`.
    Incoming = 4,
}

impl Route {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Route::Envelope,
            1 => Route::Copy,
            2 => Route::Vf,
            3 => Route::Uplink,
            _ => return None,
        })
    }

    /// Its name in sysfs.
    pub fn name(self) -> &'static str {
        match self {
            Route::Envelope => "envelope",
            Route::Copy => "copy",
            Route::Vf => "vf",
            Route::Uplink => "uplink",
            Route::Incoming => "incoming",
        }
    }
}

/// One entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Entry {
    /// The MAC (unicast, not zero).
    pub mac: Mac,
    /// Its domain.
    pub domain: u16,
    /// The route written by the user (never `Vf`: that one comes from
    /// the SR-IOV hook, in `via_vf`). In a [`Replica`], the route as the
    /// host pushed it.
    pub route: Route,
    /// The SR-IOV hook reports a VF for this MAC: the route is `Vf`, and
    /// falls back to `route` when the VF goes.
    pub via_vf: bool,
    /// The logical network, 0 (untagged) to 4094.
    pub vlan: u16,
}

impl Entry {
    /// The route in effect.
    pub fn effective_route(&self) -> Route {
        match self.route {
            _ if self.via_vf => Route::Vf,
            Route::Incoming => Route::Uplink,
            r => r,
        }
    }

    fn encode(&self, route: Route, out: &mut [u8]) {
        out[..6].copy_from_slice(&self.mac);
        out[6..8].copy_from_slice(&self.domain.to_le_bytes());
        out[8] = route as u8;
        out[9] = 0;
        out[10..12].copy_from_slice(&self.vlan.to_le_bytes());
    }

    /// Decodes and checks one entry of a `TABLE` message.
    fn decode(b: &[u8]) -> Option<Self> {
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&b[..6]);
        let e = Self {
            mac,
            domain: le16(b, 6),
            route: Route::from_u8(b[8])?,
            via_vf: false,
            vlan: le16(b, 10),
        };
        let ok = mac[0] & 1 == 0
            && mac != [0; 6]
            && (1..=MAX_DOMAIN).contains(&e.domain)
            && b[9] == 0
            && e.vlan <= MAX_VLAN;
        ok.then_some(e)
    }
}

impl Entry {
    /// The length of its line in the `table` file, newline included
    /// (what its `Display` writes, and one byte more), without writing
    /// it: a reader's page of the file skips the lines before it.
    pub fn line_len(&self) -> usize {
        fn digits(n: u16) -> usize {
            match n {
                0..=9 => 1,
                10..=99 => 2,
                100..=999 => 3,
                1000..=9999 => 4,
                _ => 5,
            }
        }
        17 + " domain=".len()
            + digits(self.domain)
            + " route=".len()
            + self.route.name().len()
            + " vlan=".len()
            + digits(self.vlan)
            + if self.via_vf { " via=vf".len() } else { 0 }
            + 1
    }
}

impl core::fmt::Display for Entry {
    /// The line the `table` file shows: `MAC domain=D route=R vlan=V`
    /// with the route as written (so that the line, written back, sets
    /// the same entry), and ` via=vf` while the SR-IOV hook gives the MAC
    /// a VF (the route in effect is then `vf`; `via=` cannot be written).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} domain={} route={} vlan={}",
            MacFmt(&self.mac),
            self.domain,
            self.route.name(),
            self.vlan
        )?;
        if self.via_vf {
            write!(f, " via=vf")?;
        }
        Ok(())
    }
}

/// A write to the `table` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableCmd {
    /// `MAC domain=D [route=R] [vlan=V]`: add, or change the entry of a
    /// MAC of the same domain.
    Set {
        /// MAC.
        mac: Mac,
        /// Domain.
        domain: u16,
        /// `envelope` (the default), `copy` or `uplink`.
        route: Route,
        /// VLAN, 0 by default.
        vlan: u16,
    },
    /// `MAC del`.
    Del(Mac),
}

/// Parses one line written to the `table` file.
pub fn parse_line(b: &[u8]) -> Result<TableCmd, ParseError> {
    if let Ok([mac, del]) = exactly::<2>(b) {
        if del == "del" {
            return Ok(TableCmd::Del(parse_mac(mac)?));
        }
    }
    let mut w = words(b)?;
    let mac = parse_mac(w.next().ok_or(ParseError::Words)?)?;
    let (mut domain, mut route, mut vlan) = (None, None, None);
    for kv in w {
        let (k, v) = kv.split_once('=').ok_or(ParseError::Key)?;
        let slot_taken = match k {
            "domain" => domain.replace(parse_domain(v)?).is_some(),
            "route" => {
                let r = match v {
                    "envelope" => Route::Envelope,
                    "copy" => Route::Copy,
                    "uplink" => Route::Uplink,
                    "incoming" => Route::Incoming,
                    _ => return Err(ParseError::Route),
                };
                route.replace(r).is_some()
            }
            "vlan" => {
                let n = crate::line::parse_u32(v)?;
                if n > MAX_VLAN as u32 {
                    return Err(ParseError::Number);
                }
                vlan.replace(n as u16).is_some()
            }
            _ => return Err(ParseError::Key),
        };
        if slot_taken {
            return Err(ParseError::Key);
        }
    }
    Ok(TableCmd::Set {
        mac,
        domain: domain.ok_or(ParseError::Missing)?,
        route: route.unwrap_or_default(),
        vlan: vlan.unwrap_or(0),
    })
}

/// Why a table write was refused (nothing changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableError {
    /// The MAC is another domain's (`EEXIST`).
    Exists,
    /// `del` of a MAC with no entry (`ENOENT`).
    NoEntry,
    /// The domain has no device attached (`ENODEV`).
    UnknownDomain,
    /// [`MAX_ENTRIES`] entries already (`ENOSPC`).
    Full,
}

/// What an announcement did ([`Table::claim`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// A remote MAC promised to the domain became its own (a new
    /// generation).
    Moved,
    /// The MAC is the domain's own already: nothing changed.
    Own,
    /// Not the domain's to take (no entry, or another domain's): nothing
    /// changed.
    Refused,
}

/// The memory a [`Table`] or a [`Replica`] keeps its entries in: a slice
/// of slots (whatever they hold), as many as the table may have entries
/// (at most [`MAX_ENTRIES`] are used).
pub trait Slots: core::ops::DerefMut<Target = [Entry]> {}

impl<S: core::ops::DerefMut<Target = [Entry]>> Slots for S {}

/// Sorted entries with binary search: what [`Table`] and [`Replica`]
/// share.
struct Sorted<S> {
    len: usize,
    entries: S,
}

impl<S: Slots> Sorted<S> {
    fn new(entries: S) -> Self {
        Self { len: 0, entries }
    }

    /// How many entries fit.
    fn capacity(&self) -> usize {
        self.entries.len().min(MAX_ENTRIES)
    }

    fn as_slice(&self) -> &[Entry] {
        &self.entries[..self.len]
    }

    fn search(&self, mac: &Mac) -> Result<usize, usize> {
        self.as_slice().binary_search_by(|e| e.mac.cmp(mac))
    }

    fn get(&self, mac: &Mac) -> Option<&Entry> {
        self.search(mac).ok().map(|i| &self.entries[i])
    }
}

/// The host's authoritative forwarding table.
pub struct Table<S> {
    epoch: u32,
    generation: u32,
    t: Sorted<S>,
}

impl<S: Slots> Table<S> {
    /// An empty table of a switch loaded with `epoch` (nonzero, and new
    /// each time the switch is loaded, so that a netfront takes the new
    /// switch's tables whatever their generation; 0 is taken as 1), with
    /// room for as many entries as `slots` has, at most [`MAX_ENTRIES`].
    pub fn new(epoch: u32, slots: S) -> Self {
        Self {
            epoch: epoch.max(1),
            generation: 0,
            t: Sorted::new(slots),
        }
    }

    /// The switch's epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The generation: grows by one with every change.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// The entries, sorted by MAC.
    pub fn entries(&self) -> &[Entry] {
        self.t.as_slice()
    }

    /// The entry of `mac`.
    pub fn lookup(&self, mac: &Mac) -> Option<&Entry> {
        self.t.get(mac)
    }

    fn changed(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }

    /// What the netfronts are sent changed without an entry changing (the
    /// switch's mode: [`Table::encode_for`]'s `full_copy`): a new
    /// generation, so that they take the next `TABLE`.
    pub fn touch(&mut self) {
        self.changed();
    }

    /// Applies a write; `attached` says whether a domain has a device.
    /// Returns whether the table changed (a write of an identical entry
    /// does not).
    pub fn apply(
        &mut self,
        cmd: TableCmd,
        attached: impl Fn(u16) -> bool,
    ) -> Result<bool, TableError> {
        match cmd {
            TableCmd::Del(mac) => {
                let i = self.t.search(&mac).map_err(|_| TableError::NoEntry)?;
                self.t.entries.copy_within(i + 1..self.t.len, i);
                self.t.len -= 1;
                self.changed();
                Ok(true)
            }
            TableCmd::Set {
                mac,
                domain,
                route,
                vlan,
            } => {
                if !attached(domain) {
                    return Err(TableError::UnknownDomain);
                }
                match self.t.search(&mac) {
                    Ok(i) => {
                        let e = &mut self.t.entries[i];
                        if e.domain != domain {
                            return Err(TableError::Exists);
                        }
                        if (e.route, e.vlan) == (route, vlan) {
                            return Ok(false);
                        }
                        e.route = route;
                        e.vlan = vlan;
                    }
                    Err(i) => {
                        if self.t.len == self.t.capacity() {
                            return Err(TableError::Full);
                        }
                        self.t.entries.copy_within(i..self.t.len, i + 1);
                        self.t.entries[i] = Entry {
                            mac,
                            domain,
                            route,
                            via_vf: false,
                            vlan,
                        };
                        self.t.len += 1;
                    }
                }
                self.changed();
                Ok(true)
            }
        }
    }

    /// The SR-IOV hook says whether `mac` is reached through a VF of its
    /// domain `domain`; an entry of that MAC and domain follows it.
    /// Returns whether the table changed.
    pub fn set_vf(&mut self, mac: &Mac, domain: u16, via_vf: bool) -> bool {
        let Ok(i) = self.t.search(mac) else {
            return false;
        };
        let e = &mut self.t.entries[i];
        if e.domain != domain || e.via_vf == via_vf {
            return false;
        }
        e.via_vf = via_vf;
        self.changed();
        true
    }

    /// Domain `domain` announced `mac` (a gratuitous ARP or RARP from its
    /// netfront, `switch::announcement`): an entry of route `incoming`
    /// naming `domain` (a remote MAC promised to it: its VM is migrating
    /// in) becomes that domain's own, route `envelope`. That route is the
    /// anti-hijack rule: only the host promises a MAC, to one domain, so a
    /// domain can never take another domain's MAC, a remote MAC (route
    /// `uplink`: a host outside, whatever its entry's domain), a MAC
    /// promised to another domain, or an unknown one.
    pub fn claim(&mut self, mac: &Mac, domain: u16) -> Claim {
        let Ok(i) = self.t.search(mac) else {
            return Claim::Refused;
        };
        let e = &mut self.t.entries[i];
        if e.domain != domain {
            return Claim::Refused;
        }
        match e.route {
            Route::Incoming => {
                e.route = Route::Envelope;
                self.changed();
                Claim::Moved
            }
            // Reached through the uplink, or (still promised) a VF: not its.
            _ if e.effective_route() == Route::Uplink => Claim::Refused,
            _ => Claim::Own,
        }
    }

    /// Removes every entry of `domain` (its device is gone). Returns how
    /// many.
    pub fn remove_domain(&mut self, domain: u16) -> usize {
        let mut kept = 0;
        for i in 0..self.t.len {
            if self.t.entries[i].domain != domain {
                self.t.entries[kept] = self.t.entries[i];
                kept += 1;
            }
        }
        let gone = self.t.len - kept;
        self.t.len = kept;
        if gone > 0 {
            self.changed();
        }
        gone
    }

    /// Whether `domain` has an entry on `vlan`.
    pub fn on_vlan(&self, domain: u16, vlan: u16) -> bool {
        self.entries()
            .iter()
            .any(|e| e.domain == domain && e.vlan == vlan)
    }

    /// Whether `domain` may see `e`: `e` is on a VLAN one of `domain`'s
    /// own entries is on.
    pub fn visible(&self, domain: u16, e: &Entry) -> bool {
        self.on_vlan(domain, e.vlan)
    }

    /// Writes the `TABLE` message for `domain` into `out`: the entries it
    /// may see, with their routes in effect (`copy` instead of `envelope`
    /// when `full_copy`). Returns its length, or 0 (and `out` is left
    /// as it was) if the message does not fit in `out`; it always fits in
    /// [`MAX_TABLE_MSG`] bytes.
    pub fn encode_for(&self, domain: u16, full_copy: bool, out: &mut [u8]) -> usize {
        // The VLANs of `domain`'s own entries, as a bitmap: one pass to
        // fill it, one look-up per entry (n, not n * n).
        let mut vlans = [0u64; (MAX_VLAN as usize + 1).div_ceil(64)];
        for e in self.entries().iter().filter(|e| e.domain == domain) {
            if let Some(w) = vlans.get_mut(e.vlan as usize / 64) {
                *w |= 1 << (e.vlan % 64);
            }
        }
        let seen = |e: &Entry| {
            vlans
                .get(e.vlan as usize / 64)
                .is_some_and(|w| w & 1 << (e.vlan % 64) != 0)
        };
        let count = self.entries().iter().filter(|e| seen(e)).count();
        let len = TABLE_HDR_LEN + count * ENTRY_LEN;
        let Some(out) = out.get_mut(..len) else {
            return 0;
        };
        let (head, body) = out.split_at_mut(TABLE_HDR_LEN);
        for (e, b) in self
            .entries()
            .iter()
            .filter(|e| seen(e))
            .zip(body.chunks_exact_mut(ENTRY_LEN))
        {
            let route = match e.effective_route() {
                Route::Envelope if full_copy => Route::Copy,
                r => r,
            };
            e.encode(route, b);
        }
        head.copy_from_slice(&table_prefix(
            self.generation,
            self.epoch,
            domain,
            count as u16,
        ));
        len
    }
}

/// A netfront's read-only copy of the table its host pushed.
pub struct Replica<S> {
    epoch: u32,
    generation: u32,
    your_domain: u16,
    loaded: bool,
    t: Sorted<S>,
}

impl<S: Slots> Replica<S> {
    /// No table yet, with room for as many entries as `slots` has, at
    /// most [`MAX_ENTRIES`] (a `TABLE` of more is refused).
    pub fn new(slots: S) -> Self {
        Self {
            epoch: 0,
            generation: 0,
            your_domain: 0,
            loaded: false,
            t: Sorted::new(slots),
        }
    }

    /// Whether a table arrived since the last [`Replica::clear`].
    pub fn loaded(&self) -> bool {
        self.loaded
    }

    /// The generation of the table held.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// The epoch of the switch that sent the table held.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// This netfront's domain, as the host said.
    pub fn your_domain(&self) -> u16 {
        self.your_domain
    }

    /// The entries, sorted by MAC.
    pub fn entries(&self) -> &[Entry] {
        self.t.as_slice()
    }

    /// The entry of `mac`.
    pub fn lookup(&self, mac: &Mac) -> Option<&Entry> {
        self.t.get(mac)
    }

    /// Forgets the table (the link went down: until a new one arrives,
    /// every frame takes the default route).
    pub fn clear(&mut self) {
        self.loaded = false;
        self.t.len = 0;
    }

    /// Takes a `TABLE` message (`Msg::Table`): replaces the table, all
    /// or nothing, if every entry is valid (a unicast, non-zero MAC, a
    /// domain id, a known route, VLAN at most 4094, reserved 0), the MACs
    /// are strictly increasing and the epoch is not 0; and if it is news:
    /// no table is held, or it comes from another epoch (a reloaded
    /// switch, whose generations started again), or its generation is
    /// newer than the one held (wrapping), or `requested` (it answers our
    /// `TABLE_REQ`). Returns whether it was taken.
    pub fn load(&mut self, m: &TableMsg<'_>, requested: bool) -> Result<bool, MsgError> {
        let (generation, epoch, your_domain, entries) =
            (m.generation, m.epoch, m.your_domain, m.entries);
        #[allow(clippy::manual_is_multiple_of)] // the kernel's MSRV (1.78) lacks it
        if entries.len() % ENTRY_LEN != 0 || entries.len() / ENTRY_LEN > self.t.capacity() {
            return Err(MsgError::Length);
        }
        if !(1..=MAX_DOMAIN).contains(&your_domain) || epoch == 0 {
            return Err(MsgError::Field);
        }
        let mut prev: Option<Mac> = None;
        for c in entries.chunks_exact(ENTRY_LEN) {
            let e = Entry::decode(c).ok_or(MsgError::Field)?;
            if prev.is_some_and(|p| p >= e.mac) {
                return Err(MsgError::Field);
            }
            prev = Some(e.mac);
        }
        let newer = (generation.wrapping_sub(self.generation) as i32) > 0;
        if self.loaded && epoch == self.epoch && !newer && !requested {
            return Ok(false);
        }
        for (slot, c) in self
            .t
            .entries
            .iter_mut()
            .zip(entries.chunks_exact(ENTRY_LEN))
        {
            *slot = Entry::decode(c).ok_or(MsgError::Field)?;
        }
        self.t.len = entries.len() / ENTRY_LEN;
        self.epoch = epoch;
        self.generation = generation;
        self.your_domain = your_domain;
        self.loaded = true;
        Ok(true)
    }
}

// A `TABLE` message's count field is 16 bits.
const _: () = assert!(MAX_ENTRIES <= u16::MAX as usize);

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::msg::Msg;
    use super::*;
    use std::format;
    use std::string::String;
    use std::vec::Vec;

    fn slots() -> Vec<Entry> {
        std::vec![Entry::default(); MAX_ENTRIES]
    }

    fn mac(n: u8) -> Mac {
        [2, 0, 0, 0, 0, n]
    }

    fn msg(epoch: u32, generation: u32, your_domain: u16, entries: &[u8]) -> TableMsg<'_> {
        TableMsg {
            generation,
            epoch,
            your_domain,
            entries,
        }
    }

    fn set(t: &mut Table<Vec<Entry>>, line: &str) -> Result<bool, TableError> {
        t.apply(parse_line(line.as_bytes()).unwrap(), |d| d <= 9)
    }

    #[test]
    fn lines_parse_exactly() {
        assert_eq!(
            parse_line(b"02:00:00:00:00:01 domain=3\n"),
            Ok(TableCmd::Set {
                mac: mac(1),
                domain: 3,
                route: Route::Envelope,
                vlan: 0
            })
        );
        assert_eq!(
            parse_line(b"02:00:00:00:00:01 vlan=10 route=copy domain=3"),
            Ok(TableCmd::Set {
                mac: mac(1),
                domain: 3,
                route: Route::Copy,
                vlan: 10
            })
        );
        assert_eq!(
            parse_line(b"02:00:00:00:00:01 del"),
            Ok(TableCmd::Del(mac(1)))
        );
        for (bad, err) in [
            (&b""[..], ParseError::Empty),
            (b"02:00:00:00:00:01", ParseError::Missing),
            (b"02:00:00:00:00:01 vlan=1", ParseError::Missing),
            (b"01:00:00:00:00:01 domain=3", ParseError::Mac),
            (b"00:00:00:00:00:00 domain=3", ParseError::Mac),
            (b"02:00:00:00:00 domain=3", ParseError::Mac),
            (b"02:00:00:00:00:01 domain=0", ParseError::Number),
            (b"02:00:00:00:00:01 domain=32752", ParseError::Number),
            (b"02:00:00:00:00:01 domain=3 vlan=4095", ParseError::Number),
            (b"02:00:00:00:00:01 domain=3 route=vf", ParseError::Route),
            (b"02:00:00:00:00:01 domain=3 domain=4", ParseError::Key),
            (b"02:00:00:00:00:01 domain=3 color=red", ParseError::Key),
            (b"02:00:00:00:00:01 domain=3 x", ParseError::Key),
            (
                b"02:00:00:00:00:01 domain=3\n02:00:00:00:00:02 domain=3",
                ParseError::Words,
            ),
            (b"02:00:00:00:00:01 del extra", ParseError::Key),
        ] {
            assert_eq!(
                parse_line(bad),
                Err(err),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn table_changes_and_errors() {
        let mut t = Table::new(1, slots());
        assert_eq!(set(&mut t, "02:00:00:00:00:05 domain=5"), Ok(true));
        assert_eq!(set(&mut t, "02:00:00:00:00:01 domain=3 vlan=7"), Ok(true));
        assert_eq!(t.generation(), 2);
        assert_eq!(t.entries()[0].mac, mac(1)); // sorted
        assert_eq!(set(&mut t, "02:00:00:00:00:01 domain=3 vlan=7"), Ok(false));
        assert_eq!(t.generation(), 2);
        assert_eq!(
            set(&mut t, "02:00:00:00:00:01 domain=4"),
            Err(TableError::Exists)
        );
        assert_eq!(
            set(&mut t, "02:00:00:00:00:09 domain=10"),
            Err(TableError::UnknownDomain)
        );
        assert_eq!(
            set(&mut t, "02:00:00:00:00:09 del"),
            Err(TableError::NoEntry)
        );
        assert_eq!(
            set(&mut t, "02:00:00:00:00:01 domain=3 route=copy"),
            Ok(true)
        );
        assert_eq!(
            format!("{}", t.lookup(&mac(1)).unwrap()),
            "02:00:00:00:00:01 domain=3 route=copy vlan=0"
        );
        assert!(t.set_vf(&mac(1), 3, true));
        assert!(!t.set_vf(&mac(1), 4, false)); // another domain's MAC: ignored
        assert_eq!(
            format!("{}", t.lookup(&mac(1)).unwrap()),
            "02:00:00:00:00:01 domain=3 route=copy vlan=0 via=vf"
        );
        assert!(t.set_vf(&mac(1), 3, false));
        assert_eq!(t.lookup(&mac(1)).unwrap().effective_route(), Route::Copy);
        assert_eq!(set(&mut t, "02:00:00:00:00:01 del"), Ok(true));
        assert_eq!(t.entries().len(), 1);
        let g = t.generation();
        assert_eq!(t.remove_domain(5), 1);
        assert_eq!((t.entries().len(), t.generation()), (0, g + 1));
        assert_eq!(t.remove_domain(5), 0);
        assert_eq!(t.generation(), g + 1);
    }

    #[test]
    fn a_full_table_refuses_more() {
        let mut t = Table::new(1, slots());
        for i in 0..MAX_ENTRIES {
            let m = [2, 0, 0, 0, (i >> 8) as u8, i as u8];
            let cmd = TableCmd::Set {
                mac: m,
                domain: 1,
                route: Route::Envelope,
                vlan: 0,
            };
            assert_eq!(t.apply(cmd, |_| true), Ok(true));
        }
        assert_eq!(
            set(&mut t, "02:00:00:00:ff:ff domain=1"),
            Err(TableError::Full)
        );
        let mut out = std::vec![0u8; MAX_TABLE_MSG];
        assert_eq!(t.encode_for(1, false, &mut out), MAX_TABLE_MSG);
        // A replica takes the whole of it; one with fewer slots refuses it.
        let Ok(Msg::Table(m)) = Msg::parse_from_host(&out) else {
            panic!()
        };
        let mut r = Replica::new(slots());
        assert_eq!(r.load(&m, false), Ok(true));
        assert_eq!(r.entries().len(), MAX_ENTRIES);
        assert_eq!(r.lookup(&[2, 0, 0, 0, 3, 0xff]).map(|e| e.domain), Some(1));
        let mut small = Replica::new(std::vec![Entry::default(); MAX_ENTRIES - 1]);
        assert_eq!(small.load(&m, false), Err(MsgError::Length));
        assert!(!small.loaded());
        // A table is as large as its slots.
        let mut t = Table::new(1, std::vec![Entry::default(); 2]);
        set(&mut t, "02:00:00:00:00:01 domain=1").unwrap();
        set(&mut t, "02:00:00:00:00:02 domain=1").unwrap();
        assert_eq!(
            set(&mut t, "02:00:00:00:00:03 domain=1"),
            Err(TableError::Full)
        );
    }

    #[test]
    fn each_domain_sees_its_vlans_and_the_replica_takes_it() {
        let mut t = Table::new(1, slots());
        for l in [
            "02:00:00:00:00:01 domain=1 vlan=10",
            "02:00:00:00:00:02 domain=2 vlan=10",
            "02:00:00:00:00:03 domain=3 vlan=20",
            "02:00:00:00:00:04 domain=2 vlan=20 route=uplink",
        ] {
            set(&mut t, l).unwrap();
        }
        let mut out = std::vec![0u8; MAX_TABLE_MSG];
        let n = t.encode_for(1, true, &mut out);
        assert_eq!(n, TABLE_HDR_LEN + 2 * ENTRY_LEN);
        let Ok(Msg::Table(m)) = Msg::parse_from_host(&out[..n]) else {
            panic!()
        };
        let generation = m.generation;
        let mut r = Replica::new(slots());
        assert_eq!(r.load(&m, false), Ok(true));
        assert_eq!((r.your_domain(), r.generation()), (1, 4));
        assert_eq!(r.entries().len(), 2);
        assert_eq!(r.lookup(&mac(2)).unwrap().route, Route::Copy); // full copy
        assert!(r.lookup(&mac(3)).is_none()); // another VLAN
                                              // Domain 2 is on both VLANs and sees everything.
        let n = t.encode_for(2, false, &mut out);
        assert_eq!(n, TABLE_HDR_LEN + 4 * ENTRY_LEN);
        // An old generation is ignored unless asked for.
        let old = msg(1, generation - 1, 1, &[]);
        assert_eq!(r.load(&old, false), Ok(false));
        assert_eq!(r.entries().len(), 2);
        assert_eq!(r.load(&old, true), Ok(true));
        assert_eq!(r.entries().len(), 0);
        r.clear();
        assert!(!r.loaded());
    }

    #[test]
    fn the_replica_refuses_bad_tables_whole() {
        let e = |m: Mac, d: u16, route: u8, vlan: u16| {
            let mut b = [0u8; ENTRY_LEN];
            Entry {
                mac: m,
                domain: d,
                route: Route::Envelope,
                via_vf: false,
                vlan,
            }
            .encode(Route::Envelope, &mut b);
            b[8] = route;
            b
        };
        let good = e(mac(1), 1, 0, 0);
        let mut r = Replica::new(slots());
        assert_eq!(r.load(&msg(1, 1, 1, &good), false), Ok(true));
        for bad in [
            e([1, 0, 0, 0, 0, 1], 1, 0, 0),
            e([0; 6], 1, 0, 0),
            e(mac(2), 0, 0, 0),
            e(mac(2), MAX_DOMAIN + 1, 0, 0),
            e(mac(2), 1, 4, 0),
            e(mac(2), 1, 0, 4095),
        ] {
            let mut two = [0u8; 2 * ENTRY_LEN];
            two[..ENTRY_LEN].copy_from_slice(&good);
            two[ENTRY_LEN..].copy_from_slice(&bad);
            assert_eq!(r.load(&msg(1, 9, 1, &two), true), Err(MsgError::Field));
        }
        let mut reserved = good;
        reserved[9] = 1;
        assert_eq!(r.load(&msg(1, 9, 1, &reserved), true), Err(MsgError::Field));
        // Duplicates and disorder.
        let mut dup = [0u8; 2 * ENTRY_LEN];
        dup[..ENTRY_LEN].copy_from_slice(&good);
        dup[ENTRY_LEN..].copy_from_slice(&good);
        assert_eq!(r.load(&msg(1, 9, 1, &dup), true), Err(MsgError::Field));
        assert_eq!(r.load(&msg(1, 9, 0, &good), true), Err(MsgError::Field));
        assert_eq!(r.load(&msg(0, 9, 1, &good), true), Err(MsgError::Field));
        assert_eq!(
            r.load(&msg(1, 9, 1, &good[..11]), true),
            Err(MsgError::Length)
        );
        // Nothing of it was taken.
        assert_eq!((r.generation(), r.entries().len()), (1, 1));
    }

    #[test]
    fn line_len_is_the_length_of_the_line() {
        for (domain, vlan) in [(1, 0), (9, 9), (10, 10), (999, 4094), (32751, 100)] {
            for route in [Route::Envelope, Route::Copy, Route::Uplink, Route::Incoming] {
                for via_vf in [false, true] {
                    let e = Entry {
                        mac: mac(0xab),
                        domain,
                        route,
                        via_vf,
                        vlan,
                    };
                    assert_eq!(e.line_len(), format!("{}\n", e).len(), "{}", e);
                }
            }
        }
    }

    #[test]
    fn lines_read_back_as_written() {
        let mut t = Table::new(1, slots());
        for l in [
            "02:00:00:00:00:01 domain=3 route=copy vlan=7",
            "02:00:00:00:00:02 domain=3 route=uplink vlan=0",
            "02:00:00:00:00:04 domain=3 route=incoming vlan=0",
            "02:00:00:00:00:03 domain=4 route=envelope vlan=4094",
        ] {
            set(&mut t, l).unwrap();
        }
        for e in t.entries() {
            let shown = format!("{}", e);
            assert_eq!(
                parse_line(shown.as_bytes()),
                Ok(TableCmd::Set {
                    mac: e.mac,
                    domain: e.domain,
                    route: e.route,
                    vlan: e.vlan
                }),
                "{}",
                shown
            );
        }
        // Via a VF: the written route, and `via=vf`, which cannot be
        // written.
        assert!(t.set_vf(&mac(1), 3, true));
        let shown = format!("{}", t.lookup(&mac(1)).unwrap());
        assert_eq!(shown, "02:00:00:00:00:01 domain=3 route=copy vlan=7 via=vf");
        assert_eq!(parse_line(shown.as_bytes()), Err(ParseError::Key));
        assert_eq!(
            parse_line(b"02:00:00:00:00:01 domain=3 via=vf"),
            Err(ParseError::Key)
        );
    }

    #[test]
    fn a_short_buffer_gets_no_table_and_no_panic() {
        let mut t = Table::new(1, slots());
        set(&mut t, "02:00:00:00:00:01 domain=1").unwrap();
        set(&mut t, "02:00:00:00:00:02 domain=2").unwrap();
        for len in [0, 5, TABLE_HDR_LEN, TABLE_HDR_LEN + ENTRY_LEN] {
            let mut out = std::vec![0xeeu8; len];
            assert_eq!(t.encode_for(1, false, &mut out), 0, "{}", len);
            assert!(out.iter().all(|&b| b == 0xee));
        }
        let mut out = std::vec![0u8; TABLE_HDR_LEN + 2 * ENTRY_LEN];
        assert_eq!(t.encode_for(1, false, &mut out), out.len());
        // A domain with no entry sees none.
        assert_eq!(t.encode_for(9, false, &mut out), TABLE_HDR_LEN);
    }

    #[test]
    fn a_reloaded_switch_is_believed_whatever_its_generation() {
        let mut old = Table::new(0x1111, slots());
        for i in 1..=5 {
            set(&mut old, &format!("02:00:00:00:00:{:02x} domain=1", i)).unwrap();
        }
        let mut out = std::vec![0u8; MAX_TABLE_MSG];
        let n = old.encode_for(1, false, &mut out);
        let Ok(Msg::Table(m)) = Msg::parse_from_host(&out[..n]) else {
            panic!()
        };
        let mut r = Replica::new(slots());
        assert_eq!(r.load(&m, false), Ok(true));
        assert_eq!(
            (r.epoch(), r.generation(), r.entries().len()),
            (0x1111, 5, 5)
        );
        // The switch is reloaded: a new epoch, generations from 1 again.
        let mut new = Table::new(0x2222, slots());
        set(&mut new, "02:00:00:00:00:09 domain=1").unwrap();
        let n = new.encode_for(1, false, &mut out);
        let Ok(Msg::Table(m)) = Msg::parse_from_host(&out[..n]) else {
            panic!()
        };
        assert_eq!(m.generation, 1);
        assert_eq!(r.load(&m, false), Ok(true));
        assert_eq!(
            (r.epoch(), r.generation(), r.entries().len()),
            (0x2222, 1, 1)
        );
        // Within an epoch, only newer generations (or a requested one).
        assert_eq!(r.load(&m, false), Ok(false));
        assert_eq!(r.load(&msg(0x2222, 0, 1, &[]), false), Ok(false));
        assert_eq!(r.load(&msg(0x2222, 2, 1, &[]), false), Ok(true));
        assert_eq!(Table::new(0, slots()).epoch(), 1);
    }

    #[test]
    fn touch_makes_replicas_take_the_new_routes() {
        let mut t = Table::new(7, slots());
        t.apply(parse_line(b"02:00:00:00:00:01 domain=1").unwrap(), |_| true)
            .unwrap();
        t.apply(parse_line(b"02:00:00:00:00:02 domain=2").unwrap(), |_| true)
            .unwrap();
        let mut b = [0u8; MAX_TABLE_MSG];
        let mut r = Replica::new(slots());
        let n = t.encode_for(1, false, &mut b);
        let Ok(Msg::Table(m)) = Msg::parse(&b[..n]) else {
            panic!("not a table");
        };
        assert_eq!(r.load(&m, false), Ok(true));
        // Full-copy mode: the same entries, other routes, a new generation.
        t.touch();
        let n = t.encode_for(1, true, &mut b);
        let Ok(Msg::Table(m)) = Msg::parse(&b[..n]) else {
            panic!("not a table");
        };
        assert_eq!(r.load(&m, false), Ok(true));
        assert_eq!(r.lookup(&[2, 0, 0, 0, 0, 2]).unwrap().route, Route::Copy);
    }

    #[test]
    fn a_domain_claims_only_the_macs_promised_to_it() {
        let mut t = Table::new(1, slots());
        for l in [
            "02:00:00:00:00:01 domain=1 vlan=10",
            "02:00:00:00:00:02 domain=2 vlan=10",
            "02:00:00:00:00:31 domain=1 vlan=10 route=incoming",
            "02:00:00:00:00:32 domain=2 vlan=10 route=incoming",
            "02:00:00:00:00:33 domain=1 vlan=10 route=copy",
            "02:00:00:00:00:34 domain=1 vlan=10 route=uplink",
        ] {
            assert_eq!(set(&mut t, l), Ok(true));
        }
        let g = t.generation();
        let m = |n| [2, 0, 0, 0, 0, n];
        // Another domain's own MAC, a MAC promised to another domain, a
        // remote MAC (whatever its entry's domain), an unknown MAC:
        // nothing changes.
        assert_eq!(t.claim(&m(2), 1), Claim::Refused);
        assert_eq!(t.claim(&m(0x32), 1), Claim::Refused);
        assert_eq!(t.claim(&m(0x34), 1), Claim::Refused);
        assert_eq!(t.claim(&m(0x40), 1), Claim::Refused);
        // An incoming MAC is remote until it is claimed: pushed as
        // `uplink`.
        assert_eq!(t.lookup(&m(0x31)).unwrap().effective_route(), Route::Uplink);
        // Its own MACs, whatever their route.
        assert_eq!(t.claim(&m(1), 1), Claim::Own);
        assert_eq!(t.claim(&m(0x33), 1), Claim::Own);
        assert_eq!(t.generation(), g);
        assert_eq!(t.lookup(&m(0x32)).unwrap().route, Route::Incoming);
        // The remote MAC promised to it: now its own, route envelope, in a
        // new generation; then its own.
        assert_eq!(t.claim(&m(0x31), 1), Claim::Moved);
        let e = *t.lookup(&m(0x31)).unwrap();
        assert_eq!((e.domain, e.route, e.vlan), (1, Route::Envelope, 10));
        assert_eq!(t.generation(), g.wrapping_add(1));
        assert_eq!(t.claim(&m(0x31), 1), Claim::Own);
        assert_eq!(t.generation(), g.wrapping_add(1));
        // Promised, and given a VF meanwhile: claimed all the same (its
        // route is `envelope` when the VF goes).
        assert!(t.set_vf(&m(0x32), 2, true));
        assert_eq!(t.claim(&m(0x32), 2), Claim::Moved);
        assert!(t.set_vf(&m(0x32), 2, false));
        assert_eq!(
            t.lookup(&m(0x32)).unwrap().effective_route(),
            Route::Envelope
        );
    }
}
