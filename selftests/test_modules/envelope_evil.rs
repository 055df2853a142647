// SPDX-License-Identifier: GPL-2.0

//! Test module: hostile envelope frontends. At load it takes the guest
//! sides of the VMPI devices that the envelope switch has attached as
//! domains 1, 2 and 3 (it binds their raw channel 1, as a netfront would,
//! and learns each domain's MAC from its `TABLE`), and then, through
//! VMPI's in-kernel grant API (`include/rvio/vmpi.h`), does what a hostile
//! or broken frontend would: copies with a handle granted to another
//! domain, forged handles, windows beyond the grant or the buffer, a copy
//! after the grant finished, a grant that lies about its destination, a
//! grant never finished, and a flood of them while two other domains go
//! on. Each step prints a KTAP line (`envelope_evil: ok N ...`) that
//! selftests/envelope/grants.sh collects; the module stays loaded until
//! removed.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU16, Ordering};
use kernel::fmt;
use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::{new_condvar, new_mutex, Arc, CondVar, Mutex};
use kernel::time::{msecs_to_jiffies, Ktime};

#[path = "bindings_generated.rs"]
mod bindings;
#[path = "../../envelope/proto/mod.rs"]
pub mod envelope_proto;
#[path = "../../rust/line.rs"]
pub mod line;
#[path = "../../vmpi/proto/mod.rs"]
pub mod proto;
#[path = "../../rust/rvio/vmpi_port.rs"]
pub mod vmpi_port;
#[path = "../../rust/work_handle.rs"]
pub mod work_handle;

use envelope_proto::grant::MAX_GRANTS_PER_DEST;
use envelope_proto::msg::{table_req, Msg};
use proto::link::Role;
use vmpi_port::{Port, PortRef, PortUser};

module! {
    type: EnvelopeEvil,
    name: "envelope_evil",
    author: "rvio developers",
    description: "rvio selftest: hostile envelope frontends (grants and copies)",
    license: "GPL",
}

/// The envelope channel (`docs/envelope.md` section 2).
const CHANNEL: u16 = 1;
/// Frames of the script.
const FRAME_LEN: usize = 200;
/// Grants of the flood.
const FLOOD: usize = 300;
/// How long a step waits for what it expects (ms).
const WAIT_MS: u64 = 5000;
/// Guest VMPI devices looked at (`virtio0` and on).
const MAX_DEVS: usize = 16;

/// One request of the script, kmalloc'ed: the C struct first, so that
/// `done` finds the request from the struct's address.
#[repr(C)]
struct Req {
    /// A `struct vmpi_grant` or `struct vmpi_copy`.
    raw: Raw,
    sg: bindings::scatterlist,
    evil: *const Evil,
    id: u32,
    buf: [u8; FRAME_LEN + 64],
}

#[repr(C)]
union Raw {
    grant: bindings::vmpi_grant,
    copy: bindings::vmpi_copy,
}

// SAFETY: a request is filled by the script and then handed to the
// device, which gives it back through `done`; the script reads it again
// only after that (its status was seen). `evil` points into the script's
// `Arc<Evil>`, which outlives every request it posted.
unsafe impl Send for Req {}
// SAFETY: see `Send`: no `&Req` is used from two threads at once.
unsafe impl Sync for Req {}

/// What the callbacks saw, for the script.
struct Seen {
    /// Per domain 1..=3: its MAC once its `TABLE` came.
    macs: [Option<[u8; 6]>; 3],
    /// `ENVELOPE`s: (receiving domain, handle, frame length).
    envelopes: KVec<(u16, u64, u32)>,
    /// Completed requests: (id, status).
    done: KVec<(u32, i32)>,
}

#[pin_data]
struct Evil {
    #[pin]
    seen: Mutex<Seen>,
    #[pin]
    changed: CondVar,
}

/// A port's user: one device, whose domain is learnt from its `TABLE`.
struct Front {
    evil: Arc<Evil>,
    domain: AtomicU16,
}

impl PortUser for Front {
    fn rx(&self, _port: &PortRef<'_>, sdu: &[u8]) {
        let mut s = self.evil.seen.lock();
        match Msg::parse_from_host(sdu) {
            Ok(Msg::Table(t)) => {
                let me = t.your_domain;
                self.domain.store(me, Ordering::Relaxed);
                for e in t.entries.chunks_exact(12) {
                    let d = u16::from_le_bytes([e[6], e[7]]);
                    if d == me && (1..=3).contains(&me) {
                        let mut mac = [0u8; 6];
                        mac.copy_from_slice(&e[..6]);
                        s.macs[usize::from(me - 1)] = Some(mac);
                    }
                }
            }
            Ok(Msg::Envelope(e)) => {
                let to = self.domain.load(Ordering::Relaxed);
                let _ = s.envelopes.push((to, e.handle, e.frame_len), GFP_KERNEL);
            }
            _ => {}
        }
        drop(s);
        self.evil.changed.notify_all();
    }
    fn write_space(&self, _port: &PortRef<'_>) {}
    fn down(&self, _port: &PortRef<'_>, _err: Error) {}
}

impl Evil {
    /// Waits until `f` finds what it wants in what was seen.
    fn wait<R>(&self, mut f: impl FnMut(&mut Seen) -> Option<R>) -> Option<R> {
        let mut s = self.seen.lock();
        let end = now_ms() + WAIT_MS;
        loop {
            if let Some(r) = f(&mut s) {
                return Some(r);
            }
            let now = now_ms();
            if now >= end {
                return None;
            }
            let _ = self
                .changed
                .wait_interruptible_timeout(&mut s, msecs_to_jiffies((end - now) as u32));
        }
    }

    /// Whether request `id` completed already (no wait).
    fn done_now(&self, id: u32) -> bool {
        self.seen.lock().done.iter().any(|d| d.0 == id)
    }

    /// The status request `id` completed with.
    fn status(&self, id: u32) -> Option<i32> {
        self.wait(|s| s.done.iter().find(|d| d.0 == id).map(|d| d.1))
    }

    /// `done` of both kinds: the status goes to the script.
    fn completed(req: *mut Req, status: i32) {
        // SAFETY: `req` is a request the script posted (`post`): it lives
        // until the script has seen its status, which is after this.
        let (evil, id) = unsafe { (&*(*req).evil, (*req).id) };
        let _ = evil.seen.lock().done.push((id, status), GFP_KERNEL);
        evil.changed.notify_all();
    }
}

fn now_ms() -> u64 {
    Ktime::ktime_get().to_ms() as u64
}

/// # Safety
///
/// Called by the transport with a grant the script posted (`Script::grant`).
unsafe extern "C" fn grant_done(g: *mut bindings::vmpi_grant, status: kernel::ffi::c_int) {
    Evil::completed(g.cast(), status);
}

/// # Safety
///
/// Called by the transport with a copy the script posted (`Script::copy`).
unsafe extern "C" fn copy_done(c: *mut bindings::vmpi_copy, status: kernel::ffi::c_int) {
    Evil::completed(c.cast(), status);
}

/// The script's state.
struct Script {
    evil: Arc<Evil>,
    /// Ports of domains 1, 2, 3.
    ports: [Port<Front>; 3],
    next_id: u32,
    /// Requests posted and not yet seen done (freed once seen).
    out: KVec<(u32, KBox<Req>)>,
    n: u32,
    failed: u32,
}

impl Script {
    fn result(&mut self, ok: bool, what: core::fmt::Arguments<'_>) {
        self.n += 1;
        if !ok {
            self.failed += 1;
        }
        pr_info!("{}ok {} {}\n", if ok { "" } else { "not " }, self.n, what);
    }

    fn mac(&self, d: u16) -> [u8; 6] {
        self.evil.seen.lock().macs[usize::from(d - 1)].unwrap_or([0; 6])
    }

    /// A frame from domain `from` to the MAC of domain `to`.
    fn frame(&self, from: u16, to: u16, seq: u8) -> [u8; FRAME_LEN] {
        let mut f = [0u8; FRAME_LEN];
        f[..6].copy_from_slice(&self.mac(to));
        f[6..12].copy_from_slice(&self.mac(from));
        f[12..14].copy_from_slice(&[0x88, 0xb5]);
        for (i, b) in f[14..].iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(7).wrapping_add(seq);
        }
        f
    }

    fn new_req(&mut self) -> Result<KBox<Req>> {
        self.next_id += 1;
        Ok(KBox::new(
            Req {
                // SAFETY: all-zero is a valid `struct vmpi_grant` and
                // `struct vmpi_copy` (integers, NULL pointers, `None`).
                raw: unsafe { core::mem::zeroed() },
                // SAFETY: as above, for `struct scatterlist`.
                sg: unsafe { core::mem::zeroed() },
                evil: &*self.evil,
                id: self.next_id,
                buf: [0; FRAME_LEN + 64],
            },
            GFP_KERNEL,
        )?)
    }

    /// Posts a grant of `frame` from domain `from` naming `dest`: its id.
    fn grant(&mut self, from: u16, dest: u16, frame: &[u8]) -> Result<u32> {
        let mut r = self.new_req()?;
        r.buf[..frame.len()].copy_from_slice(frame);
        let r_ptr: *mut Req = &mut *r;
        // SAFETY: `r` is a live kmalloc'ed request; the scatterlist entry
        // and the buffer are its fields, which do not move (boxed).
        unsafe {
            bindings::sg_init_one(
                &mut (*r_ptr).sg,
                (*r_ptr).buf.as_ptr().cast(),
                frame.len() as u32,
            );
            let g = &mut (*r_ptr).raw.grant;
            g.dest_domain = dest;
            g.frame_len = frame.len() as u32;
            g.frame = &mut (*r_ptr).sg;
            g.done = Some(grant_done);
        }
        let id = r.id;
        self.out.push((id, r), GFP_KERNEL)?;
        // SAFETY: the request is kmalloc'ed, filled as `vmpi_grant`
        // wants, and stays in `out` (untouched) until its `done` was seen.
        let ret = unsafe {
            self.ports[usize::from(from - 1)]
                .port()
                .grant(NonNull::new_unchecked(&mut (*r_ptr).raw.grant))
        };
        self.posted(id, ret)
    }

    /// `ret` of posting request `id`: if it was refused, no `done` comes
    /// and the request is ours again.
    fn posted(&mut self, id: u32, ret: Result) -> Result<u32> {
        if ret.is_err() {
            if let Some(i) = self.out.iter().position(|(j, _)| *j == id) {
                let mut rest = KVec::new();
                for (j, r) in core::mem::replace(&mut self.out, KVec::new())
                    .into_iter()
                    .enumerate()
                {
                    if j != i {
                        rest.push(r, GFP_KERNEL)?;
                    }
                }
                self.out = rest;
            }
        }
        ret.map(|()| id)
    }

    /// Posts a copy from domain `caller` of `handle` into a buffer of
    /// `room` bytes (none if 0): its id.
    fn copy(
        &mut self,
        caller: u16,
        handle: u64,
        offset: u32,
        len: u32,
        room: usize,
        flags: u16,
    ) -> Result<u32> {
        let r = self.new_req()?;
        let id = r.id;
        self.out.push((id, r), GFP_KERNEL)?;
        let Some((_, r)) = self.out.last_mut() else {
            return Err(EINVAL);
        };
        let r_ptr: *mut Req = &mut **r;
        // SAFETY: as in `grant`.
        unsafe {
            bindings::sg_init_one(&mut (*r_ptr).sg, (*r_ptr).buf.as_ptr().cast(), room as u32);
            let c = &mut (*r_ptr).raw.copy;
            c.handle = handle;
            c.offset = offset;
            c.len = len;
            c.flags = flags;
            if room > 0 {
                c.dst = &mut (*r_ptr).sg;
            }
            c.done = Some(copy_done);
        }
        // SAFETY: as in `grant`, for `vmpi_copy`.
        let ret = unsafe {
            self.ports[usize::from(caller - 1)]
                .port()
                .copy(NonNull::new_unchecked(&mut (*r_ptr).raw.copy))
        };
        self.posted(id, ret)
    }

    /// Posts the cancel of domain `caller`'s posted buffers (a posted
    /// receive of 0 bytes, no buffer): its id.
    fn cancel_posted(&mut self, caller: u16) -> Result<u32> {
        self.copy(caller, 0, 0, 0, 0, bindings::VMPI_COPY_POSTED as u16)
    }

    /// What the transport set in posted receive `id` when a frame was
    /// delivered into it: (handle, source domain, length).
    fn delivered(&self, id: u32) -> Option<(u64, u16, u32)> {
        let (_, r) = self.out.iter().find(|(i, _)| *i == id)?;
        // SAFETY: its `done` was seen: the request is ours again, a copy.
        let c = unsafe { &r.raw.copy };
        Some((c.handle, c.src_domain, c.len))
    }

    /// The status of request `id`, then its buffer's first bytes.
    fn wait_done(&mut self, id: u32) -> (Option<i32>, [u8; FRAME_LEN]) {
        let st = self.evil.status(id);
        let mut bytes = [0u8; FRAME_LEN];
        if st.is_some() {
            if let Some((_, r)) = self.out.iter().find(|(i, _)| *i == id) {
                bytes.copy_from_slice(&r.buf[..FRAME_LEN]);
            }
        }
        (st, bytes)
    }

    /// The first envelope domain `to` received from domain `from` (its
    /// handle and frame length), taken out of what was seen.
    fn envelope(&self, from: u16, to: u16) -> Option<(u64, u32)> {
        self.evil.wait(|s| {
            let i = s
                .envelopes
                .iter()
                .position(|e| e.0 == to && (e.1 >> 16) as u16 == from)?;
            let e = s.envelopes[i];
            let mut rest = KVec::new();
            for (j, x) in s.envelopes.iter().enumerate() {
                if j != i {
                    let _ = rest.push(*x, GFP_KERNEL);
                }
            }
            s.envelopes = rest;
            Some((e.1, e.2))
        })
    }

    /// Domain `from` grants frame `seq` to `to`, and `to` copies it whole
    /// with `FINISH`: the copy's status (`None` also for bytes that are
    /// not the frame's) and the grant's.
    fn copied_whole(&mut self, from: u16, to: u16, seq: u8) -> Result<(Option<i32>, Option<i32>)> {
        let frame = self.frame(from, to, seq);
        let g = self.grant(from, to, &frame)?;
        let h = self.envelope(from, to).map_or(0, |e| e.0);
        let len = FRAME_LEN as u32;
        let c = self.copy(to, h, 0, len, FRAME_LEN, bindings::VMPI_COPY_FINISH as u16)?;
        let (st, bytes) = self.wait_done(c);
        let st = st.filter(|_| bytes == frame);
        Ok((st, self.wait_done(g).0))
    }

    fn run(&mut self) -> Result {
        const NOT_GRANTED: i32 = bindings::VMPI_COPY_NOT_GRANTED as i32;
        const BAD_HANDLE: i32 = bindings::VMPI_COPY_BAD_HANDLE as i32;
        const BAD_WINDOW: i32 = bindings::VMPI_COPY_BAD_WINDOW as i32;
        const OK: i32 = bindings::VMPI_COPY_OK as i32;
        const FINISH: u16 = bindings::VMPI_COPY_FINISH as u16;
        const DONE: i32 = bindings::VMPI_GRANT_DONE as i32;
        const REFUSED: i32 = bindings::VMPI_GRANT_REFUSED as i32;
        const TIMEOUT: i32 = bindings::VMPI_GRANT_TIMEOUT as i32;
        const UNDELIVERED: i32 = bindings::VMPI_GRANT_UNDELIVERED as i32;
        let len = FRAME_LEN as u32;

        // A grant from 1 to 2, and its envelope at 2.
        let frame = self.frame(1, 2, 1);
        let g = self.grant(1, 2, &frame)?;
        let env = self.envelope(1, 2);
        self.result(
            env.is_some_and(|e| e.1 == len),
            format_args!("a grant from domain 1 to 2 reaches 2 as an envelope"),
        );
        let h = env.map_or(0, |e| e.0);

        let c = self.copy(3, h, 0, len, FRAME_LEN, 0)?;
        let st = self.wait_done(c).0;
        self.result(
            st == Some(NOT_GRANTED),
            format_args!("domain 3 copies 2's grant: NOT_GRANTED ({:?})", st),
        );
        let c = self.copy(2, h ^ (1 << 32), 0, len, FRAME_LEN, 0)?;
        let st = self.wait_done(c).0;
        let c2 = self.copy(2, (h & !0xffff) | 0xffff, 0, len, FRAME_LEN, 0)?;
        let st2 = self.wait_done(c2).0;
        self.result(
            st == Some(BAD_HANDLE) && st2 == Some(BAD_HANDLE),
            format_args!(
                "forged handles (another generation, a slot out of range): BAD_HANDLE ({:?}, {:?})",
                st, st2
            ),
        );
        let c = self.copy(2, h, len - 10, 20, FRAME_LEN, 0)?;
        let st = self.wait_done(c).0;
        self.result(
            st == Some(BAD_WINDOW),
            format_args!("a window past the frame: BAD_WINDOW ({:?})", st),
        );
        // The API checks the buffer before the ring (the device's NO_ROOM
        // check is the grant table's, tested by `cargo test`).
        let r = self.copy(2, h, 0, len, FRAME_LEN - 1, 0);
        self.result(
            r == Err(EINVAL),
            format_args!(
                "a copy larger than its buffer is refused before the ring: EINVAL ({:?})",
                r.err()
            ),
        );
        let c = self.copy(2, h, 0, len, FRAME_LEN, FINISH)?;
        let (st, bytes) = self.wait_done(c);
        self.result(
            st == Some(OK) && bytes == frame,
            format_args!(
                "domain 2 copies the frame, byte for byte, and finishes: OK ({:?})",
                st
            ),
        );
        let st = self.wait_done(g).0;
        self.result(
            st == Some(DONE),
            format_args!("the sender's grant completes DONE ({:?})", st),
        );
        let c = self.copy(2, h, 0, len, FRAME_LEN, 0)?;
        let st = self.wait_done(c).0;
        self.result(
            st == Some(BAD_HANDLE),
            format_args!("a copy after the finish: BAD_HANDLE ({:?})", st),
        );

        // A lie: the grant names domain 3, the frame is for 2.
        let frame = self.frame(1, 2, 2);
        let g = self.grant(1, 3, &frame)?;
        let st = self.wait_done(g).0;
        // An envelope would have been sent before the refusal: give it
        // time to arrive.
        // SAFETY: process context.
        unsafe { bindings::msleep(200) };
        let none = self.evil.seen.lock().envelopes.is_empty();
        self.result(
            st == Some(REFUSED) && none,
            format_args!(
                "a grant that lies about its destination: REFUSED, no envelope ({:?})",
                st
            ),
        );

        // Never finished: times out (1 s), and its handle is dead then.
        let g = self.grant(1, 2, &self.frame(1, 2, 3))?;
        let h = self.envelope(1, 2).map_or(0, |e| e.0);
        let st = self.wait_done(g).0;
        let c = self.copy(2, h, 0, len, FRAME_LEN, FINISH)?;
        let st2 = self.wait_done(c).0;
        self.result(
            st == Some(TIMEOUT) && st2 == Some(BAD_HANDLE),
            format_args!(
                "a grant never finished: TIMEOUT, then its handle is dead ({:?}, {:?})",
                st, st2
            ),
        );

        // A flood from 1 to 2, never copied, while 3 sends 2 a frame.
        let mut ids = KVec::new();
        for i in 0..FLOOD {
            ids.push(self.grant(1, 2, &self.frame(1, 2, i as u8))?, GFP_KERNEL)?;
        }
        let (st, st3) = self.copied_whole(3, 2, 9)?;
        self.result(
            st == Some(OK) && st3 == Some(DONE),
            format_args!(
                "during a flood of {} grants from 1, domain 3's grant to 2 is copied ({:?}, {:?})",
                FLOOD, st, st3
            ),
        );
        // Domain 2 holds its share of 1's grants, not all of them: 1's
        // grant to 3 is taken and copied meanwhile.
        let (st, st3) = self.copied_whole(1, 3, 10)?;
        self.result(
            st == Some(OK) && st3 == Some(DONE),
            format_args!(
                "during the flood from 1 to 2, domain 1's grant to 3 is copied ({:?}, {:?})",
                st, st3
            ),
        );
        let (mut timeout, mut over, mut bad) = (0, 0, 0);
        for id in ids.iter() {
            match self.wait_done(*id).0 {
                Some(TIMEOUT) => timeout += 1,
                Some(UNDELIVERED) => over += 1,
                _ => bad += 1,
            }
        }
        // (More than the share time out if the host took the flood over
        // more than the hold time: slots freed meanwhile take more.)
        self.result(
            bad == 0 && over > 0 && timeout + over == FLOOD,
            format_args!(
                "the flood's grants complete: {} TIMEOUT ({} at most at once, the share of one destination), {} UNDELIVERED at once, {} otherwise",
                timeout, MAX_GRANTS_PER_DEST, over, bad
            ),
        );
        self.run_posted()
    }

    /// Posted receives (`VMPI_COPY_POSTED`).
    fn run_posted(&mut self) -> Result {
        const POSTED: u16 = bindings::VMPI_COPY_POSTED as u16;
        const OK: i32 = bindings::VMPI_COPY_OK as i32;
        const GONE: i32 = bindings::VMPI_COPY_GONE as i32;
        const TOO_MANY: i32 = bindings::VMPI_COPY_TOO_MANY as i32;
        const FINISH: u16 = bindings::VMPI_COPY_FINISH as u16;
        const DONE: i32 = bindings::VMPI_GRANT_DONE as i32;
        const UNDELIVERED: i32 = bindings::VMPI_GRANT_UNDELIVERED as i32;
        let len = FRAME_LEN as u32;
        self.evil.seen.lock().envelopes = KVec::new();

        // 2 posts a buffer; 1's grant to 2 is delivered into it.
        let p = self.copy(2, 0, 0, len, FRAME_LEN, POSTED)?;
        // The host takes the buffer in domain 2's next pass: after it, the
        // grant finds it (before, the switch sends an ENVELOPE).
        // SAFETY: process context.
        unsafe { bindings::msleep(500) };
        let frame = self.frame(1, 2, 20);
        let g = self.grant(1, 2, &frame)?;
        let (st, bytes) = self.wait_done(p);
        let d = self.delivered(p);
        let gst = self.wait_done(g).0;
        let none = self.evil.seen.lock().envelopes.is_empty();
        self.result(
            st == Some(OK)
                && bytes == frame
                && d.is_some_and(|d| d.1 == 1 && d.2 == len && (d.0 >> 16) as u16 == 1)
                && gst == Some(DONE)
                && none,
            format_args!(
                "a grant to a domain with a posted buffer is delivered into it, byte for byte, no ENVELOPE ({:?}, {:?}, {:?})",
                st, d, gst
            ),
        );

        // 2 holds no buffer now: the next grant to it waits for the next
        // buffer 2 posts (it posted one that size last), no ENVELOPE.
        self.evil.seen.lock().envelopes = KVec::new();
        let frame = self.frame(1, 2, 22);
        let g = self.grant(1, 2, &frame)?;
        // Well within the 250 ms a delivery waits.
        // SAFETY: process context.
        unsafe { bindings::msleep(100) };
        let waited = !self.evil.done_now(g);
        let p = self.copy(2, 0, 0, len, FRAME_LEN, POSTED)?;
        let (st, bytes) = self.wait_done(p);
        let gst = self.wait_done(g).0;
        let none = self.evil.seen.lock().envelopes.is_empty();
        self.result(
            waited && st == Some(OK) && bytes == frame && gst == Some(DONE) && none,
            format_args!(
                "a grant that finds no free posted buffer waits for the next one posted, no ENVELOPE ({}, {:?}, {:?})",
                waited, st, gst
            ),
        );

        // One waiting when 2 cancels its buffers: given up, its grant
        // completes UNDELIVERED (the sender sends a FRAME).
        let g = self.grant(1, 2, &self.frame(1, 2, 23))?;
        // SAFETY: process context.
        unsafe { bindings::msleep(100) };
        let waited = !self.evil.done_now(g);
        let c = self.cancel_posted(2)?;
        let (st, gst) = (self.wait_done(c).0, self.wait_done(g).0);
        let none = self.evil.seen.lock().envelopes.is_empty();
        self.result(
            waited && st == Some(OK) && gst == Some(UNDELIVERED) && none,
            format_args!(
                "a waiting delivery is given up at a cancel: UNDELIVERED ({}, {:?}, {:?})",
                waited, st, gst
            ),
        );

        // Too small a buffer: the frame goes by ENVELOPE.
        self.evil.seen.lock().envelopes = KVec::new();
        let small = self.copy(2, 0, 0, 100, 100, POSTED)?;
        // SAFETY: process context.
        unsafe { bindings::msleep(500) };
        let g = self.grant(1, 2, &self.frame(1, 2, 21))?;
        let h = self.envelope(1, 2).map_or(0, |e| e.0);
        let c = self.copy(2, h, 0, len, FRAME_LEN, FINISH)?;
        let st = self.wait_done(c).0;
        let gst = self.wait_done(g).0;
        self.result(
            h != 0 && st == Some(OK) && gst == Some(DONE),
            format_args!(
                "a frame larger than every posted buffer goes by ENVELOPE ({:?}, {:?})",
                st, gst
            ),
        );

        // At most 64 held: the 65th is answered TOO_MANY.
        let mut ids = KVec::new();
        for _ in 0..65 {
            ids.push(self.copy(3, 0, 0, 64, 64, POSTED)?, GFP_KERNEL)?;
        }
        let last = ids.last().copied().unwrap_or(0);
        let st = self.wait_done(last).0;
        self.result(
            st == Some(TOO_MANY),
            format_args!("a 65th posted buffer: TOO_MANY ({:?})", st),
        );

        // A cancel gives every posted buffer back.
        let c3 = self.cancel_posted(3)?;
        let c2 = self.cancel_posted(2)?;
        let (s3, s2) = (self.wait_done(c3).0, self.wait_done(c2).0);
        let mut gone = 0;
        for id in ids.iter().take(64) {
            if self.wait_done(*id).0 == Some(GONE) {
                gone += 1;
            }
        }
        let ss = self.wait_done(small).0;
        self.result(
            s3 == Some(OK) && s2 == Some(OK) && gone == 64 && ss == Some(GONE),
            format_args!(
                "cancels give the 65 posted buffers back: GONE ({:?}, {:?}, {} of 64, {:?})",
                s3, s2, gone, ss
            ),
        );
        Ok(())
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        // Posted buffers a failed run left with the devices come back
        // (their `done` is this module's code): a cancel per domain.
        for d in 1..=3 {
            if let Ok(id) = self.cancel_posted(d) {
                let _ = self.wait_done(id);
            }
        }
        // Until every request out has come back (bounded: a run that
        // failed may leave one out; it is leaked below).
        let mut ids = KVec::new();
        for (id, _) in self.out.iter() {
            let _ = ids.push(*id, GFP_KERNEL);
        }
        let _ = self.evil.wait(|s| {
            ids.iter()
                .all(|id| s.done.iter().any(|d| d.0 == *id))
                .then_some(())
        });
        // Every `done` that started has returned (its code is this
        // module's).
        vmpi_port::done_sync();
        // A request whose `done` was not seen may still be the device's:
        // it is leaked rather than freed (a failed run only).
        let out = core::mem::replace(&mut self.out, KVec::new());
        let seen = self.evil.seen.lock();
        for (id, r) in out.into_iter() {
            if !seen.done.iter().any(|d| d.0 == id) {
                core::mem::forget(r);
            }
        }
    }
}

/// How many results `Script::run` prints.
const PLAN: u32 = 19;

struct EnvelopeEvil {
    _script: Option<Script>,
}

impl kernel::Module for EnvelopeEvil {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let evil = Arc::pin_init(
            pin_init!(Evil {
                seen <- new_mutex!(Seen {
                    macs: [None; 3],
                    envelopes: KVec::new(),
                    done: KVec::new(),
                }),
                changed <- new_condvar!(),
            }),
            GFP_KERNEL,
        )?;
        pr_info!("1..{}\n", PLAN);
        // Every guest device's channel 1; those the switch attached answer
        // TABLE_REQ with their domain.
        let mut all: KVec<Option<Port<Front>>> = KVec::new();
        for i in 0..MAX_DEVS {
            let name = CString::try_from_fmt(fmt!("virtio{}", i))?;
            let Ok(id) = vmpi_port::find(Role::Guest, Some(&name)) else {
                continue;
            };
            let front = Arc::new(
                Front {
                    evil: evil.clone(),
                    domain: AtomicU16::new(0),
                },
                GFP_KERNEL,
            )?;
            let Ok(p) = Port::open(id, CHANNEL, front) else {
                continue;
            };
            let _ = p.port().send(&table_req());
            all.push(Some(p), GFP_KERNEL)?;
        }
        if evil
            .wait(|s| s.macs.iter().all(Option::is_some).then_some(()))
            .is_none()
        {
            pr_info!("Bail out! no domains 1, 2 and 3 with a table\n");
            return Err(ENODEV);
        }
        let mut take = |d: u16| {
            all.iter_mut()
                .find(|p| {
                    p.as_ref()
                        .is_some_and(|p| p.user().domain.load(Ordering::Relaxed) == d)
                })
                .and_then(Option::take)
                .ok_or(ENODEV)
        };
        let ports = [take(1)?, take(2)?, take(3)?];
        drop(all);
        let mut script = Script {
            evil,
            ports,
            next_id: 0,
            out: KVec::new(),
            n: 0,
            failed: 0,
        };
        let r = script.run();
        if let Err(e) = r {
            pr_info!("Bail out! a request could not be posted: {:?}\n", e);
        } else if script.n != PLAN {
            pr_info!("Bail out! {} results, {} planned\n", script.n, PLAN);
        }
        pr_info!("# {} of {} failed\n", script.failed, script.n);
        Ok(Self {
            _script: Some(script),
        })
    }
}
