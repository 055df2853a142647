// SPDX-License-Identifier: GPL-2.0

//! The VMPI control-protocol state machine of one device, the same on both
//! sides (`docs/vmpi-protocol.md` section 3): link state (`HELLO`), channel
//! ownership, flow allocation with timeouts, release, and credit. It makes
//! every decision and keeps every channel's protocol state; the kernel
//! module keeps the users' objects (queues, wait queues, registrations) and
//! carries out what [`Link`] returns: control messages to send and events.
//!
//! The channel table is the caller's slice of [`Chan`], one per channel, so
//! this file needs no allocator. Time is the caller's monotonic
//! milliseconds.

use super::ctrl::{AllocResult, Ctrl, Name};
use super::wire::{Config, DropReason, CONTROL_CHANNEL, MAX_SDU};

/// Credit units an SDU of `len` bytes costs.
pub fn cost(len: usize) -> u32 {
    (len as u32).saturating_add(64)
}

/// The smallest window a side may grant: one SDU of any size fits.
pub const MIN_WINDOW: u32 = MAX_SDU + 64;

/// Which side of a VMPI device this is: the one role type of rvio's Rust,
/// with the values of the C-ABI's `enum vmpi_role` (include/rvio/vmpi.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Role {
    /// The host: the vDPA device (`VMPI_ROLE_HOST`).
    Host = 0,
    /// The guest: the virtio driver (`VMPI_ROLE_GUEST`).
    Guest = 1,
}

impl Role {
    /// The role with C-ABI value `v`, if any.
    pub const fn from_abi(v: u32) -> Option<Self> {
        match v {
            0 => Some(Role::Host),
            1 => Some(Role::Guest),
            _ => None,
        }
    }

    /// Its name in sysfs (`role`) and logs.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::Guest => "guest",
        }
    }
}

/// Credit state of an open flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Credit {
    /// Window the peer granted us.
    pub peer_window: u32,
    /// Units we sent (wrapping).
    pub sent: u32,
    /// Units the peer said it consumed (wrapping).
    pub peer_consumed: u32,
    /// Window we granted the peer.
    pub window: u32,
    /// Units we received (wrapping).
    pub received: u32,
    /// Units our user consumed (wrapping).
    pub consumed: u32,
    /// `consumed` as last sent in a `CREDIT`.
    pub advertised: u32,
}

/// Protocol state of one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Chan {
    /// No flow.
    #[default]
    Free,
    /// Bound by number, no allocation, no credit.
    Raw,
    /// We sent `ALLOC_REQ` and wait for the answer until `deadline`.
    Requesting {
        /// The request's id.
        xid: u32,
        /// When it times out (caller's milliseconds).
        deadline: u64,
        /// The window we granted.
        window: u32,
    },
    /// The peer asked for a flow; waiting for our application to accept.
    Incoming {
        /// The request's id.
        xid: u32,
        /// The window the peer granted.
        peer_window: u32,
    },
    /// An allocated flow.
    Open(Credit),
    /// We sent `DEALLOC` and wait for `DEALLOC_ACK`.
    Closing,
}

/// What the caller must do besides sending the returned message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Nothing.
    None,
    /// The first `HELLO` from the peer: flows can be allocated.
    LinkUp,
    /// The peer restarted: every channel was reset to `Free`; every user
    /// object gets `ECONNRESET`.
    PeerRestarted,
    /// The peer asks for a flow to application `dst`; the caller calls
    /// [`Link::accept`] or [`Link::refuse`].
    Incoming {
        /// The channel (the peer's half).
        channel: u16,
        /// The application asked for.
        dst: Name,
        /// The asking application, if named.
        src: Option<Name>,
    },
    /// Our request completed: open on `Ok`, else freed or (`TimedOut`)
    /// closing.
    Allocated {
        /// The request's channel.
        channel: u16,
        /// Open, or why not.
        result: Result<(), AllocError>,
    },
    /// A pending incoming request was cancelled by the peer.
    Cancelled {
        /// Its channel.
        channel: u16,
    },
    /// The peer closed the open flow (the channel is free).
    PeerClosed {
        /// Its channel.
        channel: u16,
    },
    /// Our close is complete: the channel is free.
    Closed {
        /// Its channel.
        channel: u16,
    },
    /// The peer closed the flow we are closing (the closes crossed): the
    /// channel stays closing until the ACK of our `DEALLOC`. A caller
    /// that still holds that `DEALLOC` unsent may drop it (with what it
    /// queued on the channel) and call [`Link::unsent_close`].
    CloseCrossed {
        /// Its channel.
        channel: u16,
    },
    /// The peer granted more credit: wake the channel's writers.
    CreditGranted {
        /// Its channel.
        channel: u16,
    },
    /// A malformed or unexpected message: count it as `bad_control`.
    Bad,
}

/// Why an allocation failed (errno for users in parentheses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocError {
    /// The link is not up yet (`ENOTCONN`).
    NotConnected,
    /// No free channel in our half (`EBUSY`).
    NoChannel,
    /// The peer has no such application (`ENOENT`).
    NoSuchApp,
    /// The peer refused (`EBUSY`).
    Refused,
    /// The peer found the request invalid (`EINVAL`).
    Invalid,
    /// No answer in time (`ETIMEDOUT`).
    TimedOut,
    /// The peer restarted or closed the channel (`ECONNRESET`).
    Reset,
}

/// Why a local operation on a channel was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChanError {
    /// Out of range, or channel 0 (`EINVAL`).
    Invalid,
    /// Not in the state the operation needs (`EBUSY` to bind, `EINVAL`
    /// otherwise).
    WrongState,
}

/// The protocol state of one VMPI device.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    role: Role,
    cfg: Config,
    epoch: u32,
    peer_epoch: Option<u32>,
    next_xid: u32,
}

impl Link {
    /// A link for `role` with the device's configuration; `epoch` must be
    /// nonzero and new for each (re)start of this side.
    pub fn new(role: Role, cfg: Config, epoch: u32) -> Self {
        Self {
            role,
            cfg,
            epoch: epoch.max(1),
            peer_epoch: None,
            next_xid: 1,
        }
    }

    /// This side's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The device's configuration.
    pub fn config(&self) -> Config {
        self.cfg
    }

    /// Number of channels (the length the channel table must have).
    pub fn num_channels(&self) -> usize {
        self.cfg.num_channels as usize
    }

    /// Whether the peer's `HELLO` has been seen.
    pub fn is_up(&self) -> bool {
        self.peer_epoch.is_some()
    }

    /// The `HELLO` to send when this side starts.
    pub fn hello(&self) -> Ctrl {
        self.hello_msg(false)
    }

    fn hello_msg(&self, reply: bool) -> Ctrl {
        Ctrl::Hello {
            reply,
            epoch: self.epoch,
            num_channels: self.cfg.num_channels,
            max_sdu: self.cfg.max_sdu,
        }
    }

    /// The channels this side allocates from.
    pub fn own_half(&self) -> core::ops::Range<u16> {
        match self.role {
            Role::Host => self.cfg.device_first()..self.cfg.half(),
            Role::Guest => self.cfg.half()..self.cfg.num_channels,
        }
    }

    fn is_peers(&self, channel: u16) -> bool {
        channel != CONTROL_CHANNEL
            && channel < self.cfg.num_channels
            && !self.own_half().contains(&channel)
    }

    fn xid(&mut self) -> u32 {
        let x = self.next_xid;
        self.next_xid = self.next_xid.wrapping_add(1).max(1);
        x
    }

    /// Starts allocating a flow to application `dst` of the peer: picks a
    /// free channel of our half and returns it with the `ALLOC_REQ` to
    /// send. `window`: what we grant (at least [`MIN_WINDOW`]).
    pub fn request(
        &mut self,
        chans: &mut [Chan],
        dst: Name,
        src: Option<Name>,
        window: u32,
        now: u64,
        timeout: u64,
    ) -> Result<(u16, Ctrl), AllocError> {
        if !self.is_up() {
            return Err(AllocError::NotConnected);
        }
        let window = window.max(MIN_WINDOW);
        let half = self.own_half();
        let channel = half
            .clone()
            .find(|&c| matches!(chans.get(c as usize), Some(Chan::Free)))
            .ok_or(AllocError::NoChannel)?;
        let xid = self.xid();
        if let Some(slot) = chans.get_mut(channel as usize) {
            *slot = Chan::Requesting {
                xid,
                deadline: now.saturating_add(timeout),
                window,
            };
        }
        Ok((
            channel,
            Ctrl::AllocReq {
                xid,
                channel,
                window,
                dst,
                src,
            },
        ))
    }

    /// The application accepted the incoming flow on `channel`: it opens,
    /// and the returned `ALLOC_RESP` goes to the peer.
    pub fn accept(
        &mut self,
        chans: &mut [Chan],
        channel: u16,
        window: u32,
    ) -> Result<Ctrl, ChanError> {
        let slot = chans.get_mut(channel as usize).ok_or(ChanError::Invalid)?;
        let Chan::Incoming { xid, peer_window } = *slot else {
            return Err(ChanError::WrongState);
        };
        let window = window.max(MIN_WINDOW);
        *slot = Chan::Open(Credit {
            peer_window,
            window,
            ..Credit::default()
        });
        Ok(Ctrl::AllocResp {
            xid,
            channel,
            result: AllocResult::Accepted,
            window,
        })
    }

    /// The incoming request on `channel` is refused (no such application,
    /// backlog full, or the application went away before accepting).
    pub fn refuse(
        &mut self,
        chans: &mut [Chan],
        channel: u16,
        result: AllocResult,
    ) -> Result<Ctrl, ChanError> {
        let slot = chans.get_mut(channel as usize).ok_or(ChanError::Invalid)?;
        let Chan::Incoming { xid, .. } = *slot else {
            return Err(ChanError::WrongState);
        };
        *slot = Chan::Free;
        let result = if result == AllocResult::Accepted {
            AllocResult::Refused
        } else {
            result
        };
        Ok(Ctrl::AllocResp {
            xid,
            channel,
            result,
            window: 0,
        })
    }

    /// Binds a raw channel (no allocation, no credit).
    pub fn bind_raw(&mut self, chans: &mut [Chan], channel: u16) -> Result<(), ChanError> {
        if channel == CONTROL_CHANNEL {
            return Err(ChanError::Invalid);
        }
        let slot = chans.get_mut(channel as usize).ok_or(ChanError::Invalid)?;
        if *slot != Chan::Free {
            return Err(ChanError::WrongState);
        }
        *slot = Chan::Raw;
        Ok(())
    }

    /// Our user closes `channel`. Returns the message to send, if any. An
    /// open or requested flow goes to `Closing` until the peer's
    /// `DEALLOC_ACK`; a raw binding is free at once.
    pub fn close(&mut self, chans: &mut [Chan], channel: u16) -> Result<Option<Ctrl>, ChanError> {
        let slot = chans.get_mut(channel as usize).ok_or(ChanError::Invalid)?;
        match *slot {
            Chan::Raw => {
                *slot = Chan::Free;
                Ok(None)
            }
            Chan::Open(_) | Chan::Requesting { .. } => {
                *slot = Chan::Closing;
                Ok(Some(Ctrl::Dealloc { channel }))
            }
            Chan::Incoming { .. } => self.refuse(chans, channel, AllocResult::Refused).map(Some),
            Chan::Free | Chan::Closing => Err(ChanError::WrongState),
        }
    }

    /// Our `DEALLOC` of `channel`, whose close crossed the peer's
    /// ([`Event::CloseCrossed`]), was dropped unsent: no ACK will come,
    /// and the channel is free.
    pub fn unsent_close(&mut self, chans: &mut [Chan], channel: u16) {
        if let Some(slot @ Chan::Closing) = chans.get_mut(channel as usize) {
            *slot = Chan::Free;
        }
    }

    /// Resets every channel (this side or the peer restarted).
    pub fn reset(&mut self, chans: &mut [Chan]) {
        chans.iter_mut().for_each(|c| *c = Chan::Free);
    }

    /// The time of the earliest pending allocation deadline, if any.
    pub fn next_deadline(&self, chans: &[Chan]) -> Option<u64> {
        chans
            .iter()
            .filter_map(|c| match c {
                Chan::Requesting { deadline, .. } => Some(*deadline),
                _ => None,
            })
            .min()
    }

    /// Times out the first pending allocation past its deadline: it goes
    /// to `Closing`, and the caller sends the returned `DEALLOC` and fails
    /// the allocation with `ETIMEDOUT`. Call until it returns `None`.
    pub fn expire(&mut self, chans: &mut [Chan], now: u64) -> Option<(u16, Ctrl)> {
        let (i, slot) = chans
            .iter_mut()
            .enumerate()
            .find(|(_, c)| matches!(c, Chan::Requesting { deadline, .. } if *deadline <= now))?;
        *slot = Chan::Closing;
        let channel = i as u16;
        Some((channel, Ctrl::Dealloc { channel }))
    }

    /// Handles a control message from the peer. Returns the message to send
    /// back, if any, and what else to do.
    pub fn on_ctrl(&mut self, chans: &mut [Chan], msg: Ctrl) -> (Option<Ctrl>, Event) {
        match msg {
            Ctrl::Hello {
                reply,
                epoch,
                num_channels,
                max_sdu,
            } => {
                if num_channels != self.cfg.num_channels || max_sdu < MAX_SDU {
                    return (None, Event::Bad);
                }
                let answer = if reply {
                    None
                } else {
                    Some(self.hello_msg(true))
                };
                let ev = match self.peer_epoch {
                    Some(e) if e == epoch => Event::None,
                    Some(_) => {
                        self.reset(chans);
                        Event::PeerRestarted
                    }
                    None => Event::LinkUp,
                };
                self.peer_epoch = Some(epoch);
                (answer, ev)
            }
            Ctrl::AllocReq {
                xid,
                channel,
                window,
                dst,
                src,
            } => {
                let refuse = |result| {
                    (
                        Some(Ctrl::AllocResp {
                            xid,
                            channel,
                            result,
                            window: 0,
                        }),
                        Event::None,
                    )
                };
                if !self.is_peers(channel) || window < MIN_WINDOW {
                    return refuse(AllocResult::Invalid);
                }
                let Some(slot) = chans.get_mut(channel as usize) else {
                    return refuse(AllocResult::Invalid);
                };
                if *slot != Chan::Free || !self.is_up() {
                    return refuse(AllocResult::Refused);
                }
                *slot = Chan::Incoming {
                    xid,
                    peer_window: window,
                };
                (None, Event::Incoming { channel, dst, src })
            }
            Ctrl::AllocResp {
                xid,
                channel,
                result,
                window,
            } => {
                let Some(slot) = chans.get_mut(channel as usize) else {
                    return (None, Event::Bad);
                };
                match *slot {
                    Chan::Requesting {
                        xid: x,
                        window: ours,
                        ..
                    } if x == xid => {
                        let result = match result {
                            AllocResult::Accepted if window >= MIN_WINDOW => {
                                *slot = Chan::Open(Credit {
                                    peer_window: window,
                                    window: ours,
                                    ..Credit::default()
                                });
                                return (
                                    None,
                                    Event::Allocated {
                                        channel,
                                        result: Ok(()),
                                    },
                                );
                            }
                            AllocResult::Accepted => {
                                // Accepted with an unusable window: close it.
                                *slot = Chan::Closing;
                                return (
                                    Some(Ctrl::Dealloc { channel }),
                                    Event::Allocated {
                                        channel,
                                        result: Err(AllocError::Invalid),
                                    },
                                );
                            }
                            AllocResult::NoSuchApp => AllocError::NoSuchApp,
                            AllocResult::Refused => AllocError::Refused,
                            AllocResult::Invalid => AllocError::Invalid,
                        };
                        *slot = Chan::Free;
                        (
                            None,
                            Event::Allocated {
                                channel,
                                result: Err(result),
                            },
                        )
                    }
                    // Crossed with our DEALLOC (timeout or close): that
                    // DEALLOC settles it.
                    Chan::Closing => (None, Event::None),
                    _ => (None, Event::Bad),
                }
            }
            Ctrl::Dealloc { channel } => {
                let ack = Some(Ctrl::DeallocAck { channel });
                let Some(slot) = chans.get_mut(channel as usize) else {
                    return (None, Event::Bad);
                };
                let ev = match *slot {
                    Chan::Open(_) => Event::PeerClosed { channel },
                    Chan::Incoming { .. } => Event::Cancelled { channel },
                    Chan::Requesting { .. } => Event::Allocated {
                        channel,
                        result: Err(AllocError::Reset),
                    },
                    // Both sides closed at once: the channel stays
                    // closing until the peer's ACK of our DEALLOC, which
                    // it sends as we send ours. Freed now, the channel
                    // could carry a new flow whose close that late ACK
                    // would end early: the peer's last SDUs of that flow
                    // would then reach the flow after it.
                    Chan::Closing => return (ack, Event::CloseCrossed { channel }),
                    Chan::Free | Chan::Raw => return (ack, Event::None),
                };
                *slot = Chan::Free;
                (ack, ev)
            }
            Ctrl::DeallocAck { channel } => match chans.get_mut(channel as usize) {
                Some(slot @ Chan::Closing) => {
                    *slot = Chan::Free;
                    (None, Event::Closed { channel })
                }
                Some(_) => (None, Event::None),
                None => (None, Event::Bad),
            },
            Ctrl::Credit { channel, consumed } => match chans.get_mut(channel as usize) {
                Some(Chan::Open(c)) => {
                    // The peer cannot have consumed more than we sent.
                    if c.sent.wrapping_sub(consumed) > c.sent.wrapping_sub(c.peer_consumed) {
                        return (None, Event::Bad);
                    }
                    c.peer_consumed = consumed;
                    (None, Event::CreditGranted { channel })
                }
                Some(Chan::Closing) => (None, Event::None),
                _ => (None, Event::Bad),
            },
        }
    }

    /// Checks an SDU of `len` bytes received on data channel `channel`;
    /// accounts it on success.
    pub fn on_data(
        &mut self,
        chans: &mut [Chan],
        channel: u16,
        len: usize,
    ) -> Result<(), DropReason> {
        self.may_receive(chans, channel, len)?;
        if let Some(Chan::Open(c)) = chans.get_mut(channel as usize) {
            c.received = c.received.wrapping_add(cost(len));
        }
        Ok(())
    }

    /// Whether [`Link::on_data`] would take an SDU of `len` bytes on
    /// `channel` now (nothing is accounted): a receiver checks before it
    /// spends a buffer and a copy on one it would drop.
    pub fn may_receive(&self, chans: &[Chan], channel: u16, len: usize) -> Result<(), DropReason> {
        match chans.get(channel as usize) {
            Some(Chan::Raw) if channel != CONTROL_CHANNEL => Ok(()),
            Some(Chan::Open(c)) => {
                let outstanding = c.received.wrapping_sub(c.advertised);
                // (Not `is_none_or`: the kernel's MSRV is 1.78.)
                #[allow(clippy::unnecessary_map_or)]
                if outstanding
                    .checked_add(cost(len))
                    .map_or(true, |o| o > c.window)
                {
                    return Err(DropReason::NoCredit);
                }
                Ok(())
            }
            _ => Err(DropReason::BadChannel),
        }
    }

    /// Whether an SDU of `len` bytes may be sent on `channel` now. `Err`
    /// if the channel cannot carry data at all.
    pub fn can_send(&self, chans: &[Chan], channel: u16, len: usize) -> Result<bool, ChanError> {
        match chans.get(channel as usize) {
            Some(Chan::Raw) => Ok(true),
            Some(Chan::Open(c)) => {
                let in_flight = c.sent.wrapping_sub(c.peer_consumed);
                Ok(in_flight
                    .checked_add(cost(len))
                    .is_some_and(|t| t <= c.peer_window))
            }
            _ => Err(ChanError::WrongState),
        }
    }

    /// Accounts an SDU of `len` bytes sent on `channel` (after
    /// [`Link::can_send`] said yes).
    pub fn sent(&mut self, chans: &mut [Chan], channel: u16, len: usize) {
        if let Some(Chan::Open(c)) = chans.get_mut(channel as usize) {
            c.sent = c.sent.wrapping_add(cost(len));
        }
    }

    /// An SDU of `len` bytes [`Link::sent`] on `channel` never reached the
    /// peer whole (a fragment of it was lost): the peer will not count
    /// it, so its credit comes back.
    pub fn unsent(&mut self, chans: &mut [Chan], channel: u16, len: usize) {
        if let Some(Chan::Open(c)) = chans.get_mut(channel as usize) {
            c.sent = c.sent.wrapping_sub(cost(len));
        }
    }

    /// Our user consumed an SDU of `len` bytes from `channel`; returns the
    /// `CREDIT` to send when half a window was consumed since the last
    /// (as [`Link::consume`], then [`Link::credit_due`] and
    /// [`Link::credit_queued`]).
    pub fn consumed(&mut self, chans: &mut [Chan], channel: u16, len: usize) -> Option<Ctrl> {
        self.consume(chans, channel, len);
        let m = self.credit_due(chans, channel)?;
        self.credit_queued(chans, channel);
        Some(m)
    }

    /// Our user consumed an SDU of `len` bytes from `channel`.
    pub fn consume(&mut self, chans: &mut [Chan], channel: u16, len: usize) {
        if let Some(Chan::Open(c)) = chans.get_mut(channel as usize) {
            c.consumed = c.consumed.wrapping_add(cost(len));
        }
    }

    /// The `CREDIT` that open flow `channel` owes its peer: half a window
    /// or more was consumed since the last one queued.
    pub fn credit_due(&self, chans: &[Chan], channel: u16) -> Option<Ctrl> {
        match chans.get(channel as usize) {
            Some(Chan::Open(c)) if c.consumed.wrapping_sub(c.advertised) >= c.window / 2 => {
                Some(Ctrl::Credit {
                    channel,
                    consumed: c.consumed,
                })
            }
            _ => None,
        }
    }

    /// The `CREDIT` from [`Link::credit_due`] was queued.
    pub fn credit_queued(&mut self, chans: &mut [Chan], channel: u16) {
        if let Some(Chan::Open(c)) = chans.get_mut(channel as usize) {
            c.advertised = c.consumed;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: u16 = 16;

    fn name(s: &str) -> Name {
        Name::new(s.as_bytes()).unwrap()
    }

    /// Two sides wired back to back, with their channel tables.
    struct Pair {
        dev: Link,
        drv: Link,
        dchans: [Chan; N as usize],
        gchans: [Chan; N as usize],
    }

    impl Pair {
        fn new() -> Self {
            let cfg = Config::new(N).unwrap();
            let mut p = Pair {
                dev: Link::new(Role::Host, cfg, 11),
                drv: Link::new(Role::Guest, cfg, 22),
                dchans: [Chan::Free; N as usize],
                gchans: [Chan::Free; N as usize],
            };
            let h = p.drv.hello();
            let (reply, ev) = p.dev.on_ctrl(&mut p.dchans, h);
            assert_eq!(ev, Event::LinkUp);
            let (none, ev) = p.drv.on_ctrl(&mut p.gchans, reply.unwrap());
            assert_eq!((none, ev), (None, Event::LinkUp));
            p
        }

        /// Delivers `m` to the device; returns its answer and event.
        fn send_dev(&mut self, m: Ctrl) -> (Option<Ctrl>, Event) {
            self.dev.on_ctrl(&mut self.dchans, m)
        }
        fn send_drv(&mut self, m: Ctrl) -> (Option<Ctrl>, Event) {
            self.drv.on_ctrl(&mut self.gchans, m)
        }

        /// The driver allocates a flow to "srv" and the device accepts.
        fn open_from_driver(&mut self) -> u16 {
            let (c, req) = self
                .drv
                .request(&mut self.gchans, name("srv"), None, 0, 0, 100)
                .unwrap();
            let (none, ev) = self.send_dev(req);
            assert_eq!(none, None);
            assert!(matches!(ev, Event::Incoming { channel, .. } if channel == c));
            let resp = self.dev.accept(&mut self.dchans, c, 0).unwrap();
            assert_eq!(
                self.send_drv(resp),
                (
                    None,
                    Event::Allocated {
                        channel: c,
                        result: Ok(())
                    }
                )
            );
            c
        }
    }

    #[test]
    fn halves_do_not_overlap() {
        let p = Pair::new();
        assert_eq!(p.dev.own_half(), 1..8);
        assert_eq!(p.drv.own_half(), 8..16);
    }

    #[test]
    fn no_allocation_before_hello() {
        let cfg = Config::new(N).unwrap();
        let mut l = Link::new(Role::Guest, cfg, 1);
        let mut chans = [Chan::Free; N as usize];
        assert_eq!(
            l.request(&mut chans, name("a"), None, 0, 0, 1),
            Err(AllocError::NotConnected)
        );
        // And a request from a peer we have not heard from is refused.
        let mut dev = Link::new(Role::Host, cfg, 2);
        let req = Ctrl::AllocReq {
            xid: 1,
            channel: 9,
            window: MIN_WINDOW,
            dst: name("a"),
            src: None,
        };
        let (resp, _) = dev.on_ctrl(&mut chans, req);
        assert!(matches!(
            resp,
            Some(Ctrl::AllocResp {
                result: AllocResult::Refused,
                ..
            })
        ));
    }

    #[test]
    fn allocate_and_release_from_either_side() {
        let mut p = Pair::new();
        let c = p.open_from_driver();
        assert!(p.drv.own_half().contains(&c));
        assert!(matches!(p.dchans[c as usize], Chan::Open(_)));
        // Device-side allocation picks from the device half at the same time.
        let (d, req) = p
            .dev
            .request(&mut p.dchans, name("cli"), Some(name("me")), 0, 0, 100)
            .unwrap();
        assert!(p.dev.own_half().contains(&d));
        let (_, ev) = p.send_drv(req);
        assert!(matches!(ev, Event::Incoming { channel, src: Some(_), .. } if channel == d));
        // Release c from the device side.
        let dealloc = p.dev.close(&mut p.dchans, c).unwrap().unwrap();
        let (ack, ev) = p.send_drv(dealloc);
        assert_eq!(ev, Event::PeerClosed { channel: c });
        assert_eq!(p.gchans[c as usize], Chan::Free);
        assert_eq!(
            p.send_dev(ack.unwrap()),
            (None, Event::Closed { channel: c })
        );
        assert_eq!(p.dchans[c as usize], Chan::Free);
    }

    #[test]
    fn refusals() {
        let mut p = Pair::new();
        // No such application.
        let (c, req) = p
            .drv
            .request(&mut p.gchans, name("nobody"), None, 0, 0, 100)
            .unwrap();
        let (_, ev) = p.send_dev(req);
        assert!(matches!(ev, Event::Incoming { .. }));
        let resp = p
            .dev
            .refuse(&mut p.dchans, c, AllocResult::NoSuchApp)
            .unwrap();
        assert_eq!(
            p.send_drv(resp).1,
            Event::Allocated {
                channel: c,
                result: Err(AllocError::NoSuchApp)
            }
        );
        assert_eq!(p.gchans[c as usize], Chan::Free);
        // A channel from the wrong half, channel 0, or a small window.
        for (ch, w) in [
            (3u16, MIN_WINDOW),
            (0, MIN_WINDOW),
            (9, MIN_WINDOW - 1),
            (N, MIN_WINDOW),
        ] {
            let req = Ctrl::AllocReq {
                xid: 5,
                channel: ch,
                window: w,
                dst: name("x"),
                src: None,
            };
            let (resp, ev) = p.send_dev(req);
            assert_eq!(ev, Event::None);
            assert!(
                matches!(
                    resp,
                    Some(Ctrl::AllocResp {
                        result: AllocResult::Invalid,
                        ..
                    })
                ),
                "{ch} {w}"
            );
        }
        // A busy channel (bound raw on the device).
        p.dev.bind_raw(&mut p.dchans, 9).unwrap();
        assert_eq!(p.dev.bind_raw(&mut p.dchans, 9), Err(ChanError::WrongState));
        let req = Ctrl::AllocReq {
            xid: 6,
            channel: 9,
            window: MIN_WINDOW,
            dst: name("x"),
            src: None,
        };
        assert!(matches!(
            p.send_dev(req).0,
            Some(Ctrl::AllocResp {
                result: AllocResult::Refused,
                ..
            })
        ));
        assert_eq!(p.dev.bind_raw(&mut p.dchans, 0), Err(ChanError::Invalid));
        assert_eq!(p.dev.bind_raw(&mut p.dchans, N), Err(ChanError::Invalid));
    }

    #[test]
    fn own_half_exhaustion() {
        let mut p = Pair::new();
        for _ in p.drv.own_half() {
            p.drv
                .request(&mut p.gchans, name("a"), None, 0, 0, 100)
                .unwrap();
        }
        assert_eq!(
            p.drv.request(&mut p.gchans, name("a"), None, 0, 0, 100),
            Err(AllocError::NoChannel)
        );
    }

    #[test]
    fn timeout_then_late_answer() {
        let mut p = Pair::new();
        let (c, req) = p
            .drv
            .request(&mut p.gchans, name("slow"), None, 0, 1000, 5000)
            .unwrap();
        assert_eq!(p.drv.next_deadline(&p.gchans), Some(6000));
        assert_eq!(p.drv.expire(&mut p.gchans, 5999), None);
        let (_, ev) = p.send_dev(req);
        assert!(matches!(ev, Event::Incoming { .. }));
        let (ch, dealloc) = p.drv.expire(&mut p.gchans, 6000).unwrap();
        assert_eq!(ch, c);
        assert_eq!(p.drv.next_deadline(&p.gchans), None);
        // The application accepts late: its response crosses the DEALLOC.
        let resp = p.dev.accept(&mut p.dchans, c, 0).unwrap();
        assert_eq!(p.send_drv(resp), (None, Event::None));
        let (ack, ev) = p.send_dev(dealloc);
        assert_eq!(ev, Event::PeerClosed { channel: c });
        assert_eq!(
            p.send_drv(ack.unwrap()),
            (None, Event::Closed { channel: c })
        );
        // Or the DEALLOC cancels a request still in the backlog.
        let (c, req) = p
            .drv
            .request(&mut p.gchans, name("slow"), None, 0, 0, 10)
            .unwrap();
        p.send_dev(req);
        let (_, dealloc) = p.drv.expire(&mut p.gchans, 10).unwrap();
        let (ack, ev) = p.send_dev(dealloc);
        assert_eq!(ev, Event::Cancelled { channel: c });
        assert_eq!(
            p.dev.accept(&mut p.dchans, c, 0),
            Err(ChanError::WrongState)
        );
        assert_eq!(p.send_drv(ack.unwrap()).1, Event::Closed { channel: c });
    }

    #[test]
    fn simultaneous_close_and_reuse() {
        let mut p = Pair::new();
        let c = p.open_from_driver();
        let d1 = p.drv.close(&mut p.gchans, c).unwrap().unwrap();
        let d2 = p.dev.close(&mut p.dchans, c).unwrap().unwrap();
        let (a1, e1) = p.send_dev(d1);
        let (a2, e2) = p.send_drv(d2);
        assert_eq!(
            (e1, e2),
            (
                Event::CloseCrossed { channel: c },
                Event::CloseCrossed { channel: c }
            )
        );
        // Each waits for the ACK of its own DEALLOC: c cannot be reused
        // before it (a late ACK would end the next flow's close early).
        assert_eq!(p.gchans[usize::from(c)], Chan::Closing);
        let (c2, _) = p
            .drv
            .request(&mut p.gchans, name("srv"), None, 0, 0, 100)
            .unwrap();
        assert_ne!(c2, c);
        assert_eq!(
            p.send_drv(a1.unwrap()),
            (None, Event::Closed { channel: c })
        );
        assert_eq!(
            p.send_dev(a2.unwrap()),
            (None, Event::Closed { channel: c })
        );
        let (c3, req) = p
            .drv
            .request(&mut p.gchans, name("srv"), None, 0, 0, 100)
            .unwrap();
        assert_eq!(c3, c);
        assert!(matches!(p.send_dev(req).1, Event::Incoming { .. }));
        // Stale or unknown messages.
        assert_eq!(p.send_drv(Ctrl::DeallocAck { channel: N }).1, Event::Bad);
        let stale = Ctrl::AllocResp {
            xid: 999,
            channel: c,
            result: AllocResult::Accepted,
            window: MIN_WINDOW,
        };
        assert_eq!(p.send_drv(stale).1, Event::Bad);
        assert_eq!(
            p.send_drv(Ctrl::Dealloc { channel: 3 }),
            (Some(Ctrl::DeallocAck { channel: 3 }), Event::None)
        );
    }

    #[test]
    fn crossed_close_whose_dealloc_was_never_sent() {
        let mut p = Pair::new();
        let c = p.open_from_driver();
        let d1 = p.drv.close(&mut p.gchans, c).unwrap().unwrap();
        // The device closes too; its DEALLOC waits behind data.
        p.dev.close(&mut p.dchans, c).unwrap().unwrap();
        let (ack, e) = p.send_dev(d1);
        assert_eq!(e, Event::CloseCrossed { channel: c });
        // It drops that DEALLOC unsent: no ACK of it will come.
        p.dev.unsent_close(&mut p.dchans, c);
        assert_eq!(p.dchans[usize::from(c)], Chan::Free);
        // The driver's close completes with the device's ACK.
        assert_eq!(
            p.send_drv(ack.unwrap()),
            (None, Event::Closed { channel: c })
        );
        // Only a closing channel is freed so.
        p.dev.unsent_close(&mut p.dchans, 1);
        let d = p.open_from_driver();
        p.dev.unsent_close(&mut p.dchans, d);
        assert!(matches!(p.dchans[usize::from(d)], Chan::Open(_)));
    }

    #[test]
    fn peer_restart_resets_everything() {
        let mut p = Pair::new();
        let c = p.open_from_driver();
        p.dev.bind_raw(&mut p.dchans, 2).unwrap();
        // Same epoch again: nothing changes.
        let h = p.drv.hello();
        assert_eq!(p.send_dev(h).1, Event::None);
        // The driver restarts with a new epoch.
        p.drv = Link::new(Role::Guest, Config::new(N).unwrap(), 23);
        p.gchans = [Chan::Free; N as usize];
        let h = p.drv.hello();
        let (reply, ev) = p.send_dev(h);
        assert_eq!(ev, Event::PeerRestarted);
        assert!(p.dchans.iter().all(|c| *c == Chan::Free));
        assert_eq!(p.send_drv(reply.unwrap()).1, Event::LinkUp);
        assert!(
            p.send_dev(Ctrl::Credit {
                channel: c,
                consumed: 0
            })
            .1 == Event::Bad
        );
        // A HELLO with another channel count is refused.
        let bad = Ctrl::Hello {
            reply: false,
            epoch: 5,
            num_channels: N + 1,
            max_sdu: MAX_SDU,
        };
        assert_eq!(p.send_dev(bad), (None, Event::Bad));
    }

    #[test]
    fn credit_flow() {
        let mut p = Pair::new();
        let c = p.open_from_driver();
        // The driver may send until the device's window is used up.
        let sdu = 4000;
        let mut n = 0;
        while p.drv.can_send(&p.gchans, c, sdu).unwrap() {
            p.drv.sent(&mut p.gchans, c, sdu);
            assert_eq!(p.dev.on_data(&mut p.dchans, c, sdu), Ok(()));
            n += 1;
        }
        assert_eq!(n, MIN_WINDOW / cost(sdu));
        // One more is a protocol violation at the receiver.
        assert_eq!(
            p.dev.on_data(&mut p.dchans, c, sdu),
            Err(DropReason::NoCredit)
        );
        // The device's user reads; a CREDIT goes out after half a window.
        let mut credit = None;
        for _ in 0..n {
            if let Some(m) = p.dev.consumed(&mut p.dchans, c, sdu) {
                credit = Some(m);
                break;
            }
        }
        let credit = credit.unwrap();
        assert_eq!(
            p.send_drv(credit),
            (None, Event::CreditGranted { channel: c })
        );
        assert!(p.drv.can_send(&p.gchans, c, sdu).unwrap());
        // A CREDIT claiming more than was sent is refused.
        let (sent, consumed) = match p.gchans[c as usize] {
            Chan::Open(cr) => (cr.sent, cr.peer_consumed),
            _ => unreachable!(),
        };
        assert!(consumed <= sent);
        assert_eq!(
            p.send_drv(Ctrl::Credit {
                channel: c,
                consumed: sent + 1
            })
            .1,
            Event::Bad
        );
        // Data on free, closing or control channels is dropped.
        assert_eq!(
            p.dev.on_data(&mut p.dchans, 5, 1),
            Err(DropReason::BadChannel)
        );
        assert_eq!(
            p.dev.on_data(&mut p.dchans, 0, 1),
            Err(DropReason::BadChannel)
        );
        assert_eq!(p.drv.can_send(&p.gchans, 5, 1), Err(ChanError::WrongState));
        p.dev.close(&mut p.dchans, c).unwrap();
        assert_eq!(
            p.dev.on_data(&mut p.dchans, c, 1),
            Err(DropReason::BadChannel)
        );
    }

    #[test]
    fn an_sdu_lost_on_the_way_gives_its_credit_back() {
        let mut p = Pair::new();
        let c = p.open_from_driver();
        let sdu = 4000;
        let mut n = 0;
        while p.drv.can_send(&p.gchans, c, sdu).unwrap() {
            p.drv.sent(&mut p.gchans, c, sdu);
            n += 1;
        }
        assert!(n > 1);
        // The last one never reached the peer whole: its credit is back,
        // and the peer, which did not count it, takes the next one.
        p.drv.unsent(&mut p.gchans, c, sdu);
        assert!(p.drv.can_send(&p.gchans, c, sdu).unwrap());
        for _ in 0..n {
            assert_eq!(p.dev.on_data(&mut p.dchans, c, sdu), Ok(()));
        }
        assert_eq!(
            p.dev.on_data(&mut p.dchans, c, sdu),
            Err(DropReason::NoCredit)
        );
        // Raw and closed channels have no credit: nothing happens.
        p.drv.unsent(&mut p.gchans, 5, sdu);
    }

    #[test]
    fn credit_wraps() {
        let mut p = Pair::new();
        let c = p.open_from_driver();
        // Start both counters near the wrap point.
        let start = u32::MAX - 10;
        if let Chan::Open(cr) = &mut p.gchans[c as usize] {
            cr.sent = start;
            cr.peer_consumed = start;
        }
        if let Chan::Open(cr) = &mut p.dchans[c as usize] {
            cr.received = start;
            cr.consumed = start;
            cr.advertised = start;
        }
        for _ in 0..1000 {
            assert!(p.drv.can_send(&p.gchans, c, 100).unwrap());
            p.drv.sent(&mut p.gchans, c, 100);
            assert_eq!(p.dev.on_data(&mut p.dchans, c, 100), Ok(()));
            if let Some(m) = p.dev.consumed(&mut p.dchans, c, 100) {
                assert_eq!(p.send_drv(m).1, Event::CreditGranted { channel: c });
            }
        }
    }
}
