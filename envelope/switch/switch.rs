// SPDX-License-Identifier: GPL-2.0

//! The switch: attached domains, the table, and what happens to each
//! message a domain's netfront sends (`docs/envelope.md` section 3).
//!
//! Locking: `state` is taken in sysfs calls and in the domains' port
//! callbacks (which run under their VMPI device's callback lock), and
//! sends to any domain's port under it (those take that device's own
//! lock). A port is never closed under `state`: closing waits for the
//! device's callbacks, which may be waiting for `state`. Detached domains
//! are taken out under `state` and dropped after it.
//!
//! Grants (`docs/envelope.md` section 3, step 4): each attached domain's
//! port is bound as that domain (`PortRef::bind_domain`), and its
//! device's grants come to [`Link`]'s [`DomainPolicy::grant`], from that
//! device's work with its lock held; the policy takes `state` and sends
//! the destination an `ENVELOPE`. So binding, unbinding and the domains'
//! grant counters (which take the devices' locks) are never done under
//! `state`: they run under `members`, which serializes attaching and
//! detaching (taken before `state`, never by a callback).

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::ffi::c_void;
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::{new_mutex, Arc, ArcBorrow, Mutex};

use crate::bindings;
use crate::dwork::{now_ms, DelayedWork, DelayedWorkItem};
use crate::envelope_proto::domain::{DevName, DomainCmd};
use crate::envelope_proto::grant::{Completion, CopyStatus};
use crate::envelope_proto::msg::{
    self, frame_prefix, Envelope, Meta, Msg, ETH_HLEN, F_DATA_VALID, MAX_FRAME, META_LEN,
    MSG_HDR_LEN,
};
use crate::envelope_proto::switch::{
    announcement, switch_frame, switch_grant, Action, DropReason, RateLimit, Source, DROP_REASONS,
};
use crate::envelope_proto::table::{
    Claim, Entry, Table, TableCmd, TableError, MAX_ENTRIES, MAX_TABLE_MSG,
};
use crate::line::{Mac, MacFmt};
use crate::proto::link::Role;
use crate::sriov_route::{self, RouteWatcher};
use crate::sysfs_buf::SysfsBuf;
use crate::uplink::{Uplink, UplinkUser};
use crate::vmpi_port::{self, DomainPolicy, Port, PortRef, PortUser};

/// Domains attached at once (the `domains` file fits a page).
pub(crate) const MAX_DOMAINS: usize = 32;

/// What the switch counts besides each domain's own counters.
#[derive(Default)]
struct Stats {
    /// Messages that do not parse, or that a netfront may not send.
    bad_msg: u64,
    /// Frames dropped by the switch's policy, by reason (a flooded
    /// frame's copies over the sender's rate count one each).
    drops: [u64; DROP_REASONS],
    /// Frames for the uplink while none is configured.
    no_uplink: u64,
    /// Frames from the uplink with offloads the switch refuses, or too
    /// long.
    uplink_bad: u64,
    /// Broadcast, multicast and unknown-unicast frames switched.
    flooded: u64,
    /// Bytes of the frames the switch sent on as `FRAME`s or to the
    /// uplink: each was copied out of the sender into the switch's buffer
    /// and again out of it (the intermediate copy an envelope's bytes
    /// never take, `docs/envelope.md` section 3).
    bounce_bytes: u64,
    /// Announcements (gratuitous ARPs and RARPs) from domains; those that
    /// moved a remote MAC promised to the domain into it; those that
    /// claimed a MAC that is not the domain's to take.
    announces: u64,
    announce_moves: u64,
    announce_refused: u64,
    /// `TABLE` messages sent.
    table_pushes: u64,
    /// `ENVELOPE`s sent: grants let stand.
    envelopes: u64,
    /// Grants let stand and delivered into a posted receive of their
    /// destination instead of an `ENVELOPE`.
    deliveries: u64,
    /// Grants refused by the policy, by reason (not in `drops`: the
    /// netfront sends the frame as a `FRAME` then, counted if dropped).
    grants_refused: [u64; DROP_REASONS],
    /// Grants refused in full-copy mode.
    grants_refused_mode: u64,
    /// Grants refused for their metadata (`Meta::check`, or a claim of a
    /// verified checksum).
    grants_refused_meta: u64,
    /// Grants whose destination could not be told (detached, or its send
    /// queue full).
    grants_undelivered: u64,
    /// The grant counters of domains detached since the switch was loaded.
    retired: GrantCounters,
}

/// Grant counters of the VMPI devices (`struct vmpi_grant_stats`), summed.
#[derive(Default, Clone, Copy)]
struct GrantCounters {
    grants: u64,
    completions: [u64; COMPLETIONS],
    copies: [u64; COPIES],
    copied_bytes: u64,
    held: u64,
    delivered: u64,
    waited: u64,
    wait_gave_up: u64,
    over_share: u64,
    passes: u64,
    passes_full: u64,
    posted: u64,
}

/// Grant completion statuses and copy statuses (their names in `stats`
/// are the pure enums': `Completion::STATUSES`, `CopyStatus::ALL`).
const COMPLETIONS: usize = bindings::VMPI_GRANT_STATUSES as usize;
const COPIES: usize = bindings::VMPI_COPY_STATUSES as usize;
const _: () = assert!(Completion::STATUSES.len() == COMPLETIONS && CopyStatus::ALL.len() == COPIES);
/// The policy reasons a grant can be refused for (`switch_grant` and the
/// rate limit).
const GRANT_REASONS: [DropReason; 4] = [
    DropReason::BadSrc,
    DropReason::BadDest,
    DropReason::Tagged,
    DropReason::Rate,
];

impl GrantCounters {
    /// Adds a device's counters.
    fn add(&mut self, s: &bindings::vmpi_grant_stats) {
        self.grants += s.grants;
        for (a, b) in self.completions.iter_mut().zip(s.completions) {
            *a += b;
        }
        for (a, b) in self.copies.iter_mut().zip(s.copies) {
            *a += b;
        }
        self.copied_bytes += s.copied_bytes;
        self.held += u64::from(s.held);
        self.delivered += s.delivered;
        self.waited += s.waited;
        self.wait_gave_up += s.wait_gave_up;
        self.over_share += s.over_share;
        self.passes += s.passes;
        self.passes_full += s.passes_full;
        self.posted += u64::from(s.posted);
    }
}

/// An attached domain: a VMPI device's host side, raw channel 1.
struct Domain {
    dev: DevName,
    id: u16,
    vmpi: i32,
    /// Shared only for reading the grant counters outside `state` (under
    /// `members`, so the domain's own reference is always the last).
    port: Arc<Port<Link>>,
    /// The port is bound as the domain (its device has grants).
    bound: bool,
    rate: RateLimit,
    rate_bps: u32,
    /// Which attachment this is (its [`Link`] has the same).
    serial: u64,
    /// Its table could not be sent (send queue full): sent again on
    /// `write_space`.
    table_stale: bool,
    frames_in: u64,
    frames_out: u64,
    /// Frames for it dropped because its send queue was full.
    tx_dropped: u64,
}

/// The switch's state.
struct State {
    table: Table<KVVec<Entry>>,
    /// Where a `TABLE` message is written ([`MAX_TABLE_MSG`] bytes).
    table_msg: KVVec<u8>,
    full_copy: bool,
    /// The host net_device non-local frames go to.
    uplink: Option<Uplink<UplinkPort>>,
    /// Where a frame from the uplink becomes a `FRAME` message.
    scratch: KVVec<u8>,
    domains: KVec<Option<Domain>>,
    stats: Stats,
}

/// The switch (one per module).
#[pin_data]
pub(crate) struct Switch {
    #[pin]
    state: Mutex<State>,
    /// Held while domains are attached, detached, and their grant
    /// counters read: taken before `state`, never by a port's callback or
    /// the grant policy.
    #[pin]
    members: Mutex<()>,
    /// Drops the domains whose devices went away.
    reaper: DelayedWork<Switch>,
    /// The serial of the next attachment.
    next_serial: AtomicU64,
    /// The SR-IOV hook's routes may have changed: the work asks again.
    routes_dirty: AtomicBool,
    /// The MACs the work asks the hook about: `MAX_ENTRIES` slots made
    /// once (asking again never fails for memory). The work's only.
    #[pin]
    route_macs: Mutex<KVVec<(Mac, u16, bool)>>,
}

/// The port user of one domain: one attachment of a device, told apart
/// from a later attachment of the same domain id by its serial (a port
/// being closed may still call back).
pub(crate) struct Link {
    switch: Arc<Switch>,
    domain: u16,
    serial: u64,
    /// The port went down (the device is going away): the domain is
    /// detached by the reaper, even if this comes before it is listed.
    down: AtomicBool,
}

impl PortUser for Link {
    fn rx(&self, port: &PortRef<'_>, sdu: &[u8]) {
        self.switch.domain_msg(self.domain, self.serial, port, sdu);
    }

    fn write_space(&self, _port: &PortRef<'_>) {
        let mut st = self.switch.state.lock();
        if let Some(i) = st.find_attachment(self.domain, self.serial) {
            if st.dom(i).is_some_and(|d| d.table_stale && !d.gone()) {
                st.push_table(i);
            }
        }
    }

    fn down(&self, _port: &PortRef<'_>, err: Error) {
        self.down.store(true, Ordering::Release);
        let mut st = self.switch.state.lock();
        let Some(d) = st
            .find_attachment(self.domain, self.serial)
            .and_then(|i| st.dom(i))
        else {
            // Not listed yet: `attach` sees `down` when it lists it.
            return;
        };
        pr_info!(
            "domain {} ({}) detached: its VMPI device is down ({:?})\n",
            self.domain,
            d.dev,
            err
        );
        if st.table.remove_domain(self.domain) > 0 {
            st.push_tables();
        }
        drop(st);
        DelayedWork::schedule(&self.switch, 0);
    }
}

/// A grant a domain's device took, as the policy gets it.
struct GrantReq<'a> {
    handle: u64,
    dest_domain: u16,
    addrs: &'a [u8; ETH_HLEN],
    meta: &'a [u8; META_LEN],
    frame_len: u32,
}

impl DomainPolicy for Link {
    fn grant(
        &self,
        handle: u64,
        dest_domain: u16,
        addrs: &[u8; 14],
        meta: &[u8; 12],
        frame_len: u32,
    ) -> u32 {
        let req = GrantReq {
            handle,
            dest_domain,
            addrs,
            meta,
            frame_len,
        };
        self.switch.grant(self.domain, self.serial, &req)
    }
}

// SAFETY: `dwork` returns the `reaper` field of `self`, always the same
// item, and no other object returns it.
unsafe impl DelayedWorkItem for Switch {
    fn dwork(&self) -> &DelayedWork<Self> {
        &self.reaper
    }

    fn run(this: Arc<Self>) {
        // Closes their ports, outside `state`.
        let members = this.members.lock();
        while let Some(d) = this.take_one(Domain::gone) {
            this.retire(d);
        }
        drop(members);
        if this.routes_dirty.swap(false, Ordering::AcqRel) {
            this.refresh_routes();
        }
    }
}

impl RouteWatcher for Switch {
    fn routes_changed(this: ArcBorrow<'_, Self>) {
        this.routes_dirty.store(true, Ordering::Release);
        DelayedWork::schedule(&Arc::from(this), 0);
    }
}

impl Domain {
    /// Its device went away: the reaper drops it.
    fn gone(&self) -> bool {
        self.port.user().down.load(Ordering::Acquire)
    }

    /// Binds its port as its domain: its device's grants come to its
    /// [`Link`]. `false` if the device has no grants (full frames only).
    fn bind(port: &Port<Link>, domain: u16) -> Result<bool> {
        let link: *const Link = &**port.user();
        // SAFETY: `domain_ops::<Link>()` is static and calls `Link::grant`
        // with `link`, which the port's `Arc` keeps alive until the port
        // is closed; the binding ends at the latest when the port is
        // closed (`vmpi_port_close()` unbinds), so every policy call has a
        // live `Link`. Called under `members`, not `state`, which the
        // policy takes.
        let r = unsafe {
            port.port()
                .bind_domain(domain, vmpi_port::domain_ops::<Link>(), link as *mut c_void)
        };
        match r {
            Ok(()) => Ok(true),
            Err(e) if e == crate::errno::eopnotsupp() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl State {
    /// The slot of live domain `id`.
    fn find(&self, id: u16) -> Option<usize> {
        self.domains
            .iter()
            .position(|d| d.as_ref().is_some_and(|d| d.id == id && !d.gone()))
    }

    /// The slot of attachment `serial` of domain `id`, live or going.
    fn find_attachment(&self, id: u16, serial: u64) -> Option<usize> {
        self.domains
            .iter()
            .position(|d| d.as_ref().is_some_and(|d| d.id == id && d.serial == serial))
    }

    /// The domain in slot `i`.
    fn dom(&mut self, i: usize) -> Option<&mut Domain> {
        self.domains.get_mut(i).and_then(Option::as_mut)
    }

    /// Sends the domain in slot `i` its view of the table.
    fn push_table(&mut self, i: usize) {
        let Some(id) = self.dom(i).map(|d| d.id) else {
            return;
        };
        let buf = self.table_msg.as_mut_slice();
        let n = self.table.encode_for(id, self.full_copy, buf);
        let Some(d) = self.domains.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        if n == 0 {
            // Cannot happen: `table_msg` holds the largest table.
            d.table_stale = true;
            return;
        }
        d.table_stale = d.port.port().send(&buf[..n]).is_err();
        if !d.table_stale {
            self.stats.table_pushes += 1;
        }
    }

    /// Sends every domain its view of the table (after a change).
    fn push_tables(&mut self) {
        for i in 0..self.domains.len() {
            if self.domains[i].as_ref().is_some_and(|d| !d.gone()) {
                self.push_table(i);
            }
        }
    }

    /// Sends a whole `FRAME` message to domain `id`.
    fn send_to(&mut self, id: u16, sdu: &[u8]) {
        let Some(d) = self.find(id).and_then(|i| self.dom(i)) else {
            return;
        };
        match d.port.port().send(sdu) {
            Ok(()) => d.frames_out += 1,
            Err(_) => {
                d.tx_dropped += 1;
                return;
            }
        }
        let frame = sdu.len().saturating_sub(MSG_HDR_LEN + META_LEN);
        self.stats.bounce_bytes += frame as u64;
    }

    /// Gives domain `src` back the charge of a frame of `len` bytes.
    fn refund(&mut self, src: u16, len: usize) {
        if let Some(d) = self.find(src).and_then(|i| self.dom(i)) {
            d.rate.refund(len);
        }
    }

    /// Charges one copy of a `len`-byte frame to the rate of `src` (the
    /// uplink has none) at `now` (ns): whether it may be made.
    fn allow(&mut self, src: Source, len: usize, now: u64) -> bool {
        match src {
            Source::Domain(id) => self
                .find(id)
                .and_then(|i| self.dom(i))
                .map_or(true, |d| d.rate.allow(len, now)),
            Source::Uplink(_) => true,
        }
    }

    /// [`State::allow`] for a copy of a frame, counting one over the rate
    /// as dropped.
    fn charge(&mut self, src: Source, len: usize, now: u64) -> bool {
        let ok = self.allow(src, len, now);
        if !ok {
            self.stats.drops[DropReason::Rate as usize] += 1;
        }
        ok
    }

    /// Switches `sdu`, a `FRAME` message whose frame is `frame`, from
    /// `src` at `now` (ns): each copy it makes is charged to the sender's
    /// rate.
    fn forward(&mut self, src: Source, sdu: &[u8], frame: &[u8], now: u64) {
        let Some(hdr) = frame
            .get(..ETH_HLEN)
            .and_then(|h| <&[u8; ETH_HLEN]>::try_from(h).ok())
        else {
            return;
        };
        match switch_frame(&self.table, src, hdr) {
            Action::Drop(r) => self.stats.drops[r as usize] += 1,
            Action::Domain(d) => {
                if self.charge(src, frame.len(), now) {
                    self.send_to(d, sdu);
                }
            }
            Action::Uplink(vlan) => {
                if self.charge(src, frame.len(), now) {
                    self.send_uplink(sdu, frame, vlan);
                }
            }
            Action::Flood(vlan) => {
                self.stats.flooded += 1;
                if matches!(src, Source::Domain(_)) && self.charge(src, frame.len(), now) {
                    self.send_uplink(sdu, frame, vlan);
                }
                let from = match src {
                    Source::Domain(d) => d,
                    Source::Uplink(_) => 0,
                };
                for i in 0..self.domains.len() {
                    let Some(d) = self.domains[i].as_ref() else {
                        continue;
                    };
                    let id = d.id;
                    if !d.gone()
                        && id != from
                        && self.table.on_vlan(id, vlan)
                        && self.charge(src, frame.len(), now)
                    {
                        self.send_to(id, sdu);
                    }
                }
            }
        }
    }
}

impl State {
    /// Domain `id` announced `mac` (`docs/envelope.md` section 3): a MAC
    /// the table promises to `id` (route `incoming`) becomes its own, and every netfront
    /// gets the new table (traffic to the MAC goes by envelope from now
    /// on); a MAC that is not `id`'s to take is refused, and the
    /// announcement itself is then dropped as any frame from a source
    /// that is not the domain's.
    fn announced(&mut self, id: u16, mac: &Mac) {
        self.stats.announces += 1;
        match self.table.claim(mac, id) {
            Claim::Own => {}
            Claim::Moved => {
                self.stats.announce_moves += 1;
                pr_info!(
                    "{} announced by domain {}: moved into it\n",
                    MacFmt(mac),
                    id
                );
                self.push_tables();
            }
            Claim::Refused => {
                self.stats.announce_refused += 1;
                if warn_ratelimit() {
                    pr_warn!(
                        "domain {} announced {}, which is not its to take: refused\n",
                        id,
                        MacFmt(mac)
                    );
                }
            }
        }
    }
}

impl State {
    /// Sends `frame` (of the `FRAME` message `sdu`) out of the uplink on
    /// `vlan`.
    fn send_uplink(&mut self, sdu: &[u8], frame: &[u8], vlan: u16) {
        let Some(u) = self.uplink.as_ref() else {
            self.stats.no_uplink += 1;
            return;
        };
        let Some(meta) = sdu
            .get(MSG_HDR_LEN..MSG_HDR_LEN + META_LEN)
            .and_then(|m| <&[u8; META_LEN]>::try_from(m).ok())
        else {
            return;
        };
        // Failures are counted by the uplink (`tx_dropped`).
        if u.xmit(meta, frame, vlan).is_ok() {
            self.stats.bounce_bytes += frame.len() as u64;
        }
    }
}

/// The uplink's user: frames from outside enter the switch.
pub(crate) struct UplinkPort {
    switch: Arc<Switch>,
}

impl UplinkUser for UplinkPort {
    fn rx(&self, meta: &[u8; META_LEN], frame: &[u8], vlan: u16) {
        let mut st = self.switch.state.lock();
        let st = &mut *st;
        let n = MSG_HDR_LEN + META_LEN + frame.len();
        let ok = Meta::parse(meta).and_then(|m| m.check(frame.len())).is_ok();
        let Some(buf) = st.scratch.as_mut_slice().get_mut(..n).filter(|_| ok) else {
            st.stats.uplink_bad += 1;
            return;
        };
        buf[..MSG_HDR_LEN + META_LEN].copy_from_slice(&frame_prefix(&Meta::default()));
        buf[MSG_HDR_LEN..MSG_HDR_LEN + META_LEN].copy_from_slice(meta);
        buf[MSG_HDR_LEN + META_LEN..].copy_from_slice(frame);
        // Take the buffer out while forwarding borrows the state.
        let scratch = core::mem::replace(&mut st.scratch, KVVec::new());
        let now = now_ms().saturating_mul(1_000_000);
        st.forward(
            Source::Uplink(vlan),
            &scratch[..n],
            &scratch[MSG_HDR_LEN + META_LEN..n],
            now,
        );
        st.scratch = scratch;
    }
}

/// A new epoch for the table: random, never 0.
fn random_epoch() -> u32 {
    // SAFETY: no preconditions.
    unsafe { crate::bindings::get_random_u32() }.max(1)
}

impl Switch {
    pub(crate) fn new() -> Result<Arc<Self>> {
        let reaper = DelayedWork::new()?;
        let scratch = KVVec::from_elem(0u8, MSG_HDR_LEN + META_LEN + MAX_FRAME, GFP_KERNEL)?;
        let slots = KVVec::from_elem(Entry::default(), MAX_ENTRIES, GFP_KERNEL)?;
        let table_msg = KVVec::from_elem(0u8, MAX_TABLE_MSG, GFP_KERNEL)?;
        let route_macs = KVVec::from_elem(([0u8; 6], 0u16, false), MAX_ENTRIES, GFP_KERNEL)?;
        Arc::pin_init(
            pin_init!(Switch {
                state <- new_mutex!(
                    State {
                        table: Table::new(random_epoch(), slots),
                        table_msg,
                        full_copy: false,
                        uplink: None,
                        scratch,
                        domains: KVec::new(),
                        stats: Stats::default(),
                    },
                    "envelope_switch::Switch::state"
                ),
                members <- new_mutex!((), "envelope_switch::Switch::members"),
                reaper,
                next_serial: AtomicU64::new(1),
                routes_dirty: AtomicBool::new(false),
                route_macs <- new_mutex!(route_macs, "envelope_switch::Switch::route_macs"),
            }),
            GFP_KERNEL,
        )
    }

    /// Takes the first domain `f` says yes to out of the state (to be
    /// dropped by the caller, outside it: dropping closes its port).
    fn take_one(&self, f: impl Fn(&Domain) -> bool) -> Option<Domain> {
        let mut st = self.state.lock();
        st.domains
            .iter_mut()
            .find(|slot| slot.as_ref().is_some_and(&f))
            .and_then(Option::take)
    }

    /// A write to `uplink`: a net_device's name, or `none`.
    pub(crate) fn set_uplink(self: &Arc<Self>, name: Option<&CStr>) -> Result {
        let new = match name {
            Some(n) => {
                if self.state.lock().uplink.is_some() {
                    return Err(EBUSY);
                }
                let port = Arc::new(
                    UplinkPort {
                        switch: self.clone(),
                    },
                    GFP_KERNEL,
                )?;
                Some(Uplink::attach(n, port, MAX_FRAME as u32)?)
            }
            None => None,
        };
        let mut st = self.state.lock();
        if new.is_some() && st.uplink.is_some() {
            drop(st);
            drop(new);
            return Err(EBUSY);
        }
        let old = core::mem::replace(&mut st.uplink, new);
        if let Some(u) = st.uplink.as_ref() {
            pr_info!("uplink {}\n", u.name());
        }
        drop(st);
        // Lets go of it outside `state`: its work may be waiting for it.
        drop(old);
        Ok(())
    }

    pub(crate) fn show_uplink(&self, out: &mut SysfsBuf<'_>) {
        let st = self.state.lock();
        match st.uplink.as_ref() {
            None => {
                let _ = writeln!(out, "none");
            }
            Some(u) => {
                let s = u.stats();
                let _ = writeln!(
                    out,
                    "{}{} rx_frames={} rx_dropped={} tx_frames={} tx_dropped={}",
                    u.name(),
                    if u.attached() { "" } else { " unregistered" },
                    s.rx_frames,
                    s.rx_dropped,
                    s.tx_frames,
                    s.tx_dropped
                );
            }
        }
    }

    /// Detaches every domain (module unload): closes their ports and stops
    /// the reaper. Needs no memory.
    pub(crate) fn shut_down(&self) {
        let uplink = self.state.lock().uplink.take();
        drop(uplink);
        {
            let _members = self.members.lock();
            while let Some(d) = self.take_one(|_| true) {
                self.retire(d);
            }
        }
        self.reaper.cancel();
        // A reaper run that raced ours found nothing; anything a late
        // `down` marked is gone now too.
        let _members = self.members.lock();
        while let Some(d) = self.take_one(|_| true) {
            self.retire(d);
        }
    }

    /// Domain `src`'s device took a grant (attachment `serial`): lets it
    /// stand (0) once the destination has its `ENVELOPE`, or refuses it
    /// (`docs/envelope.md` section 3, steps 1, 2, 4 and 7). From the
    /// sending device's work: takes `state`, sends on the destination's
    /// port.
    fn grant(&self, src: u16, serial: u64, req: &GrantReq<'_>) -> u32 {
        const REFUSED: u32 = bindings::VMPI_GRANT_REFUSED;
        const UNDELIVERED: u32 = bindings::VMPI_GRANT_UNDELIVERED;
        let mut st = self.state.lock();
        let st = &mut *st;
        if !st
            .find_attachment(src, serial)
            .is_some_and(|i| st.domains[i].as_ref().is_some_and(|d| !d.gone()))
        {
            // Being detached: its bindings end with it.
            st.stats.grants_refused[DropReason::BadSrc as usize] += 1;
            return REFUSED;
        }
        if st.full_copy {
            st.stats.grants_refused_mode += 1;
            return REFUSED;
        }
        // A guest may not claim a verified checksum (as for `FRAME`s).
        let meta = Meta::parse(req.meta)
            .and_then(|m| m.check(req.frame_len as usize).map(|()| m))
            .ok()
            .filter(|m| m.flags & F_DATA_VALID == 0);
        let Some(meta) = meta else {
            st.stats.grants_refused_meta += 1;
            return REFUSED;
        };
        let dest = match switch_grant(&st.table, src, req.dest_domain, req.addrs) {
            Ok(d) => d,
            Err(r) => {
                st.stats.grants_refused[r as usize] += 1;
                return REFUSED;
            }
        };
        let now = now_ms().saturating_mul(1_000_000);
        if !st.allow(Source::Domain(src), req.frame_len as usize, now) {
            st.stats.grants_refused[DropReason::Rate as usize] += 1;
            return REFUSED;
        }
        let env = Envelope {
            meta,
            handle: req.handle,
            frame_len: req.frame_len,
            src_domain: src,
        };
        let Some(d) = st.find(dest).and_then(|i| st.dom(i)) else {
            st.refund(src, req.frame_len as usize);
            st.stats.grants_undelivered += 1;
            return UNDELIVERED;
        };
        // Into a buffer the destination posted ahead, if one is free and
        // holds the frame: no `ENVELOPE`, no copy request.
        let port = d.port.port();
        let delivered = port
            .deliver(req.handle, src, req.frame_len, &meta.encode())
            .is_ok();
        let sent = delivered || port.send(&env.encode()).is_ok();
        match (delivered, sent) {
            (true, _) => st.stats.deliveries += 1,
            (false, true) => st.stats.envelopes += 1,
            // The sender sends the frame again as a FRAME, charged then:
            // this one is not (and drops nothing yet).
            (false, false) => {
                st.refund(src, req.frame_len as usize);
                st.stats.grants_undelivered += 1;
                return UNDELIVERED;
            }
        }
        0
    }

    /// Lets go of a domain taken out of `state`, under `members`: keeps
    /// its grant counters, ends its binding (its grants complete
    /// `REVOKED`), closes its port.
    fn retire(&self, d: Domain) {
        if d.bound {
            let mut s = d.port.port().domain_stats();
            // Counters, not what it holds now (revoked next).
            s.held = 0;
            s.posted = 0;
            self.state.lock().stats.retired.add(&s);
            d.port.port().unbind_domain();
        }
        drop(d);
    }

    /// The grant counters of the devices of every domain attached now and
    /// detached before, summed.
    fn grant_counters(&self) -> GrantCounters {
        let members = self.members.lock();
        let mut ports = KVec::new();
        let mut sum = {
            let st = self.state.lock();
            for d in st.domains.iter().flatten().filter(|d| d.bound) {
                // Without memory the sum misses that domain.
                let _ = ports.push(d.port.clone(), GFP_KERNEL);
            }
            st.stats.retired
        };
        // Outside `state`: the counters take the devices' locks.
        for p in &ports {
            sum.add(&p.port().domain_stats());
        }
        // Not the last references: `members` keeps the domains listed.
        drop(ports);
        drop(members);
        sum
    }

    /// A message from domain `id`'s netfront.
    fn domain_msg(&self, id: u16, serial: u64, _port: &PortRef<'_>, sdu: &[u8]) {
        let mut st = self.state.lock();
        let Some(i) = st
            .find_attachment(id, serial)
            .filter(|&i| st.domains[i].as_ref().is_some_and(|d| !d.gone()))
        else {
            return;
        };
        match Msg::parse_from_guest(sdu) {
            Ok(Msg::TableReq) => st.push_table(i),
            // A guest may not claim its checksum was verified (a receiver
            // would skip checking it): only the uplink's NIC can.
            Ok(Msg::Frame { meta, frame }) if meta.flags & F_DATA_VALID == 0 => {
                let now = now_ms().saturating_mul(1_000_000);
                let Some(d) = st.dom(i) else {
                    return;
                };
                d.frames_in += 1;
                if let Some(mac) = announcement(frame) {
                    st.announced(id, &mac);
                }
                st.forward(Source::Domain(id), sdu, frame, now);
            }
            // Malformed, or a message only the host sends.
            _ => {
                st.stats.bad_msg += 1;
                if warn_ratelimit() {
                    pr_warn!(
                        "domain {}: bad message of {} bytes dropped\n",
                        id,
                        sdu.len()
                    );
                }
            }
        }
    }

    /// A write to `domains`.
    pub(crate) fn domains_cmd(self: &Arc<Self>, cmd: DomainCmd) -> Result {
        match cmd {
            DomainCmd::Attach { dev, domain, rate } => self.attach(dev, domain, rate),
            DomainCmd::Detach(dev) => {
                let members = self.members.lock();
                let mut st = self.state.lock();
                let i = st
                    .domains
                    .iter()
                    .position(|d| d.as_ref().is_some_and(|d| d.dev == dev && !d.gone()))
                    .ok_or(ENOENT)?;
                let d = st.domains[i].take();
                if let Some(d) = d.as_ref() {
                    if st.table.remove_domain(d.id) > 0 {
                        st.push_tables();
                    }
                }
                drop(st);
                // Unbinds and closes its port, outside `state`.
                if let Some(d) = d {
                    self.retire(d);
                }
                drop(members);
                Ok(())
            }
        }
    }

    fn attach(self: &Arc<Self>, dev: DevName, domain: u16, rate: u32) -> Result {
        let _members = self.members.lock();
        {
            let st = self.state.lock();
            if st
                .domains
                .iter()
                .flatten()
                .any(|d| d.dev == dev || d.id == domain)
            {
                return Err(EEXIST);
            }
        }
        let mut name = [0u8; 32];
        name[..dev.as_bytes().len()].copy_from_slice(dev.as_bytes());
        let name = CStr::from_bytes_with_nul(&name[..=dev.as_bytes().len()]).map_err(|_| EINVAL)?;
        let vmpi = vmpi_port::find(Role::Host, Some(name))?;
        let serial = self.next_serial.fetch_add(1, Ordering::Relaxed);
        let link = Arc::new(
            Link {
                switch: self.clone(),
                domain,
                serial,
                down: AtomicBool::new(false),
            },
            GFP_KERNEL,
        )?;
        let port = Arc::new(Port::open(vmpi, msg::CHANNEL, link)?, GFP_KERNEL)?;
        // Outside `state`, which the policy takes.
        let bound = Domain::bind(&port, domain)?;
        let d = Domain {
            dev,
            id: domain,
            vmpi,
            port,
            bound,
            rate: RateLimit::new(rate, now_ms().saturating_mul(1_000_000)),
            rate_bps: rate,
            serial,
            table_stale: false,
            frames_in: 0,
            frames_out: 0,
            tx_dropped: 0,
        };
        let mut st = self.state.lock();
        // Checked again: another write may have attached it meanwhile.
        if st
            .domains
            .iter()
            .flatten()
            .any(|x| x.dev == dev || x.id == domain)
            || st.domains.iter().flatten().count() >= MAX_DOMAINS
        {
            let busy = st.domains.iter().flatten().count() < MAX_DOMAINS;
            drop(st);
            self.retire(d);
            return Err(if busy { EEXIST } else { ENOSPC });
        }
        let i = match st.domains.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                if let Err(e) = st.domains.push(None, GFP_KERNEL) {
                    drop(st);
                    self.retire(d);
                    return Err(e.into());
                }
                st.domains.len() - 1
            }
        };
        let gone = d.gone();
        st.domains[i] = Some(d);
        if gone {
            // Its device went down before it was listed.
            drop(st);
            DelayedWork::schedule(self, 0);
            return Err(ENODEV);
        }
        // It may have asked for the table before it was attached.
        st.push_table(i);
        pr_info!(
            "domain {} attached: {} (vmpi{}{})\n",
            domain,
            dev,
            vmpi,
            if bound { ", grants" } else { "" }
        );
        Ok(())
    }

    /// Asks the SR-IOV hook for the route of every entry (routes "direct
    /// via VF" follow its VF policies), and pushes the table if one
    /// changed. Process context (the reaper), not under RTNL or `state`.
    fn refresh_routes(&self) {
        let mut slots = self.route_macs.lock();
        let mut n = 0;
        for (slot, e) in slots.iter_mut().zip(self.state.lock().table.entries()) {
            *slot = (e.mac, e.domain, false);
            n += 1;
        }
        let macs = &mut slots[..n];
        // Without `state`: `route` takes RTNL and the hook's locks.
        for (mac, domain, via) in macs.iter_mut() {
            *via =
                matches!(sriov_route::route(mac), Ok(Some(r)) if r.domain == *domain && r.via_vf);
        }
        let mut st = self.state.lock();
        let mut changed = false;
        for (mac, domain, via) in macs.iter() {
            changed |= st.table.set_vf(mac, *domain, *via);
        }
        if changed {
            st.push_tables();
        }
    }

    /// A write to `table`.
    pub(crate) fn table_cmd(self: &Arc<Self>, cmd: TableCmd) -> Result {
        let mut st = self.state.lock();
        let st = &mut *st;
        let domains = &st.domains;
        let changed = st
            .table
            .apply(cmd, |id| {
                domains.iter().flatten().any(|d| d.id == id && !d.gone())
            })
            .map_err(|e| match e {
                TableError::Exists => EEXIST,
                TableError::NoEntry => ENOENT,
                TableError::UnknownDomain => ENODEV,
                TableError::Full => ENOSPC,
            })?;
        if changed {
            st.push_tables();
            // A new entry's MAC may have a VF already.
            self.routes_dirty.store(true, Ordering::Release);
            DelayedWork::schedule(self, 0);
        }
        Ok(())
    }

    /// A write to `mode`: full copies or envelopes.
    pub(crate) fn set_full_copy(&self, full_copy: bool) {
        let mut st = self.state.lock();
        if st.full_copy != full_copy {
            st.full_copy = full_copy;
            // Every netfront's view changes: a new generation, which they
            // take.
            st.table.touch();
            st.push_tables();
        }
    }

    pub(crate) fn show_domains(&self, out: &mut SysfsBuf<'_>) {
        let st = self.state.lock();
        for d in st.domains.iter().flatten().filter(|d| !d.gone()) {
            let _ = writeln!(
                out,
                "{} domain={} vmpi={} rate={} frames_in={} frames_out={} tx_dropped={}",
                d.dev, d.id, d.vmpi, d.rate_bps, d.frames_in, d.frames_out, d.tx_dropped
            );
        }
    }

    pub(crate) fn show_table(&self, out: &mut SysfsBuf<'_>) {
        let st = self.state.lock();
        let _ = writeln!(out, "generation {}", st.table.generation());
        // A large attribute, read a page at a time: the lines before the
        // page are only counted, those after it not even that.
        for e in st.table.entries() {
            if out.is_full() {
                break;
            }
            if !out.skip(e.line_len()) {
                let _ = writeln!(out, "{}", e);
            }
        }
    }

    pub(crate) fn show_mode(&self, out: &mut SysfsBuf<'_>) {
        let copy = self.state.lock().full_copy;
        let _ = writeln!(out, "{}", if copy { "copy" } else { "envelope" });
    }

    pub(crate) fn show_stats(&self, out: &mut SysfsBuf<'_>) {
        // First, without `state`.
        let g = self.grant_counters();
        let st = self.state.lock();
        let s = &st.stats;
        let _ = writeln!(out, "bad_msg {}", s.bad_msg);
        for r in DropReason::ALL {
            let _ = writeln!(out, "drops_{} {}", r.name(), s.drops[r as usize]);
        }
        let _ = writeln!(out, "no_uplink {}", s.no_uplink);
        let _ = writeln!(out, "uplink_bad {}", s.uplink_bad);
        let _ = writeln!(out, "flooded {}", s.flooded);
        let _ = writeln!(out, "bounce_bytes {}", s.bounce_bytes);
        let _ = writeln!(out, "announces {}", s.announces);
        let _ = writeln!(out, "announce_moves {}", s.announce_moves);
        let _ = writeln!(out, "announce_refused {}", s.announce_refused);
        let _ = writeln!(out, "table_pushes {}", s.table_pushes);
        let _ = writeln!(out, "generation {}", st.table.generation());
        let _ = writeln!(out, "epoch {}", st.table.epoch());
        let _ = writeln!(out, "envelopes {}", s.envelopes);
        let _ = writeln!(out, "deliveries {}", s.deliveries);
        for r in GRANT_REASONS {
            let _ = writeln!(
                out,
                "grants_refused_{} {}",
                r.name(),
                s.grants_refused[r as usize]
            );
        }
        let _ = writeln!(out, "grants_refused_mode {}", s.grants_refused_mode);
        let _ = writeln!(out, "grants_refused_meta {}", s.grants_refused_meta);
        let _ = writeln!(out, "grants_undelivered {}", s.grants_undelivered);
        drop(st);
        let _ = writeln!(out, "grants {}", g.grants);
        let _ = writeln!(out, "grants_held {}", g.held);
        for (c, v) in Completion::STATUSES.iter().zip(g.completions) {
            let _ = writeln!(out, "completions_{} {}", c.name(), v);
        }
        for (c, v) in CopyStatus::ALL.iter().zip(g.copies) {
            let _ = writeln!(out, "copies_{} {}", c.name(), v);
        }
        let _ = writeln!(out, "copied_bytes {}", g.copied_bytes);
        let _ = writeln!(out, "delivered {}", g.delivered);
        let _ = writeln!(out, "waited {}", g.waited);
        let _ = writeln!(out, "wait_gave_up {}", g.wait_gave_up);
        let _ = writeln!(out, "grants_over_share {}", g.over_share);
        let _ = writeln!(out, "grant_passes {}", g.passes);
        let _ = writeln!(out, "grant_passes_full {}", g.passes_full);
        let _ = writeln!(out, "posted {}", g.posted);
    }
}

/// Whether a warning about a guest's message may be logged now (at most
/// a few per 5 s for the whole switch, as `pr_warn_ratelimited`).
fn warn_ratelimit() -> bool {
    use core::sync::atomic::{AtomicU64, Ordering};
    static WINDOW: AtomicU64 = AtomicU64::new(0);
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let now = now_ms() / 5000;
    if WINDOW.swap(now, Ordering::Relaxed) != now {
        COUNT.store(0, Ordering::Relaxed);
    }
    COUNT.fetch_add(1, Ordering::Relaxed) < 10
}
