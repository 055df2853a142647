// SPDX-License-Identifier: GPL-2.0

//! `vmpi-vmm`: serve a VMPI device through `/dev/vhost-vdpa-N` as QEMU
//! would, with a VMPI guest driver in this process instead of a guest.
//! `vmpi-vmm --help` says how.

use std::io::{self, BufRead, Write};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use vmpi_vmm::driver::{Delivery, Driver, Options};
use vmpi_vmm::hostile;
use vmpi_vmm::memory::MapShape;
use vmpi_vmm::net_echo;
use vmpi_vmm::vhost_vdpa::Batching;

const USAGE: &str = "\
usage: vmpi-vmm run DEV [OPTIONS]     a VMPI guest in this process, over DEV
       vmpi-vmm net-echo DEV [--count N] [--len N] [--map whole|pages]
                                     the control: frames through vdpa_sim_net
       vmpi-vmm hostile DEV [--case NAME,..|all|list] [--skip A,B] [--rounds N]
                        [--seed N] [--echo NAME] [--host vmpiN] [--grant-to D]
                        [--reset-loop N]
                                     a guest that writes its rings by hand:
                                     one `ok - hostile CASE` / `not ok - hostile
                                     CASE: why` line per case, one per random
                                     round (round K uses seed N+K), a summary;
                                     after each, a good guest must be served by
                                     the host application NAME (default
                                     host-echo), which echoes SDUs back.
                                     --case defaults to all without --rounds;
                                     --grant-to: the envelope switch's domain D
                                     (MAC 02:00:00:00:00:02) takes envelopes
                                     and never copies, DEV's is MAC
                                     02:00:00:00:00:01 (suspend-with-grant-held
                                     is skipped without it); --reset-loop:
                                     the starts of reset-and-remap-loop
                                     (default 20)
DEV is a /dev/vhost-vdpa-N. Options of run:
  --ram SIZE        guest RAM in bytes, K, M or G (default 8M)
  --map whole|pages the memory map: one IOTLB update, or one per 4 KiB page
  --no-batch        send the map's updates outside an IOTLB batch
  --like-qemu       carry on when the device refuses the map, as QEMU does
  --serve NAME      accept flows from the host to NAME; echo every SDU back
  --to NAME         allocate a flow to the host's NAME, send --sizes on it,
                    and check that each comes back byte for byte
  --sizes LIST      comma-separated SDU sizes (default 0,1,4096,65535)
  --count N         send the sizes N times (default 1)
  --exit            exit when --to is done, not at the end of standard input
Commands on standard input, one a line: reset (the guest resets the
device and starts it again), remap (invalidate and map all of RAM again,
in one batch unless --no-batch), stats, exit.
Prints one line per event; exits 0 if every check passed.";

struct Args {
    cmd: String,
    dev: String,
    o: Options,
    like_qemu: bool,
    serve: Option<String>,
    to: Option<String>,
    sizes: Vec<usize>,
    count: usize,
    len: usize,
    exit: bool,
}

fn size_arg(s: &str) -> Option<u64> {
    let (n, m) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 1 << 10),
        b'M' | b'm' => (&s[..s.len() - 1], 1 << 20),
        b'G' | b'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    n.parse::<u64>().ok()?.checked_mul(m)
}

fn parse() -> Result<Args, String> {
    let v: Vec<String> = std::env::args().skip(1).collect();
    if v.len() < 2 || v[0] == "--help" || v[0] == "-h" {
        return Err(String::new());
    }
    let mut a = Args {
        cmd: v[0].clone(),
        dev: v[1].clone(),
        o: Options::default(),
        like_qemu: false,
        serve: None,
        to: None,
        sizes: vec![0, 1, 4096, 65535],
        count: 1,
        len: 64,
        exit: false,
    };
    let mut it = v[2..].iter();
    while let Some(opt) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{opt} needs a value"));
        match opt.as_str() {
            "--ram" => a.o.ram = size_arg(&val()?).ok_or("bad --ram")?,
            "--map" => {
                a.o.shape = match val()?.as_str() {
                    "whole" => MapShape::Whole,
                    "pages" => MapShape::Pages,
                    m => return Err(format!("unknown map shape {m}")),
                }
            }
            "--no-batch" => a.o.batching = Batching::Single,
            "--like-qemu" => a.like_qemu = true,
            "--serve" => a.serve = Some(val()?),
            "--to" => a.to = Some(val()?),
            "--sizes" => {
                a.sizes = val()?
                    .split(',')
                    .map(|s| s.parse().map_err(|_| format!("bad size {s}")))
                    .collect::<Result<_, _>>()?
            }
            "--count" => a.count = val()?.parse().map_err(|_| "bad --count")?,
            "--len" => a.len = val()?.parse().map_err(|_| "bad --len")?,
            "--exit" => a.exit = true,
            o => return Err(format!("unknown option {o}")),
        }
    }
    Ok(a)
}

/// SDU `k` of `len` bytes: every byte depends on both.
fn pattern(k: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(131) ^ k.wrapping_mul(17) ^ (len >> 3)) as u8)
        .collect()
}

fn say(line: &str) {
    let mut o = io::stdout().lock();
    let _ = writeln!(o, "{line}");
    let _ = o.flush();
}

/// The client's progress on its flow to the host.
#[derive(Default)]
struct Client {
    channel: Option<u16>,
    open: bool,
    next: usize,
    waiting: Option<Vec<u8>>,
    ok: usize,
    bad: usize,
    done: bool,
}

struct Run {
    a: Args,
    d: Driver,
    client: Client,
    /// SDUs echoed back on served flows, waiting for credit.
    echo: Vec<(u16, Vec<u8>)>,
    failed: bool,
}

impl Run {
    fn start(&mut self) -> io::Result<()> {
        let r = self.d.start()?;
        say(&format!(
            "map: {} updates, {} refused{}",
            r.sent,
            r.failed,
            r.first_error
                .as_ref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        ));
        if r.failed > 0 && !self.a.like_qemu {
            return Err(io::Error::other("the device refused the memory map"));
        }
        let st = self.d.device().status()?;
        say(&format!("started: status {st:#x}"));
        Ok(())
    }

    fn on(&mut self, ev: Delivery) -> io::Result<()> {
        match ev {
            Delivery::LinkUp => {
                say("link up");
                if let Some(to) = self.a.to.clone() {
                    if !self.client.done {
                        self.client = Client::default();
                        self.client.channel = Some(self.d.alloc(&to, Some("vmpi-vmm"))?);
                    }
                }
            }
            Delivery::PeerRestarted => {
                say("host restarted: flows reset");
                self.echo.clear();
            }
            Delivery::Accepted { channel, name } => say(&format!("accepted {name} on {channel}")),
            Delivery::Allocated { channel, result } => {
                if self.client.channel == Some(channel) {
                    match result {
                        Ok(()) => {
                            say(&format!(
                                "flow to {} open on {channel}",
                                self.a.to.as_deref().unwrap_or("")
                            ));
                            self.client.open = true;
                        }
                        Err(e) => {
                            say(&format!("flow to the host refused: {e:?}"));
                            self.failed = true;
                            self.client.done = true;
                        }
                    }
                }
            }
            Delivery::Data { channel, sdu } => {
                if self.client.channel == Some(channel) && self.client.open {
                    match self.client.waiting.take() {
                        Some(want) if want == sdu => self.client.ok += 1,
                        Some(want) => {
                            self.client.bad += 1;
                            let at = want.iter().zip(&sdu).position(|(a, b)| a != b);
                            say(&format!(
                                "MISMATCH: sent {} bytes, got {} back (first difference at {at:?})",
                                want.len(),
                                sdu.len()
                            ));
                        }
                        None => {
                            self.client.bad += 1;
                            say(&format!("MISMATCH: {} bytes nobody asked for", sdu.len()));
                        }
                    }
                } else {
                    self.echo.push((channel, sdu));
                }
            }
            Delivery::Closed { channel } => {
                say(&format!("flow {channel} closed"));
                self.echo.retain(|(c, _)| *c != channel);
                if self.client.channel == Some(channel) {
                    self.client.open = false;
                    if !self.client.done {
                        self.failed = true;
                        self.client.done = true;
                        say("the flow to the host closed before the end");
                    }
                }
            }
            Delivery::Credit { .. } => {}
        }
        Ok(())
    }

    /// Sends what can be sent: echoes, then the client's next SDU.
    fn pump(&mut self) -> io::Result<()> {
        while let Some((c, sdu)) = self.echo.first() {
            match self.d.send(*c, sdu) {
                Ok(true) => {
                    self.echo.remove(0);
                }
                Ok(false) => break,
                Err(_) => {
                    self.echo.remove(0);
                }
            }
        }
        let total = self.a.sizes.len() * self.a.count;
        let c = &mut self.client;
        if !c.open || c.done || c.waiting.is_some() {
            return Ok(());
        }
        let Some(ch) = c.channel else { return Ok(()) };
        if c.next == total {
            c.done = true;
            say(&format!(
                "client: {} SDUs echoed byte for byte, {} bad",
                c.ok, c.bad
            ));
            if c.bad > 0 || c.ok != total {
                self.failed = true;
            }
            self.d.close(ch)?;
            return Ok(());
        }
        let len = self.a.sizes[c.next % self.a.sizes.len()];
        let sdu = pattern(c.next, len);
        if self.d.send(ch, &sdu)? {
            c.next += 1;
            c.waiting = Some(sdu);
        }
        Ok(())
    }

    fn command(&mut self, line: &str) -> io::Result<bool> {
        match line.trim() {
            "reset" => {
                let r = self.d.stop()?;
                say(&format!(
                    "reset: {} invalidates, {} refused",
                    r.sent, r.failed
                ));
                self.echo.clear();
                if !self.client.done {
                    self.client = Client::default();
                }
                self.start()?;
            }
            "remap" => {
                let r = self.d.remap()?;
                say(&format!("remap: {} messages, {} refused", r.sent, r.failed));
                if r.failed > 0 {
                    self.failed = true;
                }
            }
            "stats" => self.stats(),
            "exit" | "" => return Ok(false),
            c => say(&format!("unknown command {c:?}")),
        }
        Ok(true)
    }

    fn stats(&self) {
        let c = self.d.counters();
        let s = self.d.stats;
        say(&format!(
            "stats: rx_sdus {} tx_sdus {} rx_bufs {} tx_bufs {} kicks {} starts {} drops {:?}",
            c.rx_sdus, c.tx_sdus, s.rx_bufs, s.tx_bufs, s.kicks, s.starts, c.drops
        ));
    }
}

/// RLIMIT_MEMLOCK, which bounds what vhost_vdpa pins for a VMM in PA mode.
fn memlock() -> String {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a valid rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) } != 0 {
        return "?".into();
    }
    if r.rlim_cur == libc::RLIM_INFINITY {
        "unlimited".into()
    } else {
        format!("{} KiB", r.rlim_cur >> 10)
    }
}

fn run(a: Args) -> io::Result<bool> {
    let d = Driver::open(&a.dev, a.o)?;
    say(&format!(
        "realized {}: device id {}, {} queues of up to {}, features {:#x}, map {} entries, memlock {}",
        a.dev,
        d.device().device_id,
        d.device().num_queues,
        d.device().vq_num_max,
        d.device().device_features,
        d.map().len(),
        memlock()
    ));
    let mut r = Run {
        a,
        d,
        client: Client::default(),
        echo: Vec::new(),
        failed: false,
    };
    if let Some(n) = r.a.serve.clone() {
        r.d.register(&n)?;
    }
    r.start()?;
    let stdin = io::stdin();
    let mut lines = stdin.lock().lines();
    let mut evs = Vec::new();
    let mut last_up = Instant::now();
    let mut stdin_open = true;
    loop {
        let fd = stdin_open.then(|| io::stdin().as_raw_fd());
        let cmd = r.d.poll(Duration::from_millis(100), fd, &mut evs)?;
        for ev in evs.drain(..) {
            r.on(ev)?;
        }
        r.pump()?;
        if r.a.exit && (r.a.to.is_none() || r.client.done) {
            break;
        }
        if !r.d.is_up() && last_up.elapsed() > Duration::from_secs(10) {
            say("no HELLO from the host in 10 s");
            last_up = Instant::now();
        } else if r.d.is_up() {
            last_up = Instant::now();
        }
        if cmd {
            match lines.next() {
                Some(Ok(l)) => {
                    if !r.command(&l)? {
                        break;
                    }
                }
                // End of input: exit, unless --exit says when.
                _ if r.a.exit => stdin_open = false,
                _ => break,
            }
        }
    }
    r.stats();
    // Closing the file resets the device and drops the map (vhost_vdpa's
    // release), as when QEMU exits.
    Ok(!r.failed)
}

/// `vmpi-vmm hostile DEV ...`.
fn parse_hostile(v: &[String]) -> Result<Option<hostile::Opts>, String> {
    let dev = v.get(1).cloned().ok_or("hostile needs a device")?;
    let mut o = hostile::Opts {
        dev,
        cases: Vec::new(),
        skip: Vec::new(),
        rounds: 0,
        seed: 1,
        echo: "host-echo".into(),
        host: None,
        grant_to: None,
        reset_loop: hostile::RESET_LOOP,
    };
    let list = |s: String| -> Vec<String> {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut it = v[2..].iter();
    while let Some(opt) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{opt} needs a value"));
        match opt.as_str() {
            "--case" => {
                let c = val()?;
                if c == "list" {
                    for n in hostile::case_names() {
                        say(n);
                    }
                    return Ok(None);
                }
                o.cases.extend(list(c));
            }
            "--skip" => o.skip.extend(list(val()?)),
            "--rounds" => o.rounds = val()?.parse().map_err(|_| "bad --rounds")?,
            "--seed" => o.seed = val()?.parse().map_err(|_| "bad --seed")?,
            "--echo" => o.echo = val()?,
            "--host" => o.host = Some(val()?),
            "--grant-to" => o.grant_to = Some(val()?.parse().map_err(|_| "bad --grant-to")?),
            "--reset-loop" => o.reset_loop = val()?.parse().map_err(|_| "bad --reset-loop")?,
            x => return Err(format!("unknown option {x}")),
        }
    }
    if o.cases.is_empty() && o.rounds == 0 {
        o.cases.push("all".into());
    }
    Ok(Some(o))
}

fn main() -> ExitCode {
    let v: Vec<String> = std::env::args().skip(1).collect();
    if v.first().map(String::as_str) == Some("hostile") {
        let r = match parse_hostile(&v) {
            Ok(Some(o)) => hostile::run(&o),
            Ok(None) => return ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("vmpi-vmm: {e}\n{USAGE}");
                return ExitCode::from(2);
            }
        };
        return match r {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                say(&format!("not ok - hostile: {e}"));
                ExitCode::FAILURE
            }
        };
    }
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("vmpi-vmm: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let r = match a.cmd.as_str() {
        "run" => run(a),
        "net-echo" => net_echo::run(&a.dev, a.o.shape, a.count.max(1), a.len).map(|e| {
            say(&format!(
                "net-echo: map {} updates, {} refused; {} frames sent, {} came back unchanged",
                e.map.sent, e.map.failed, e.sent, e.matched
            ));
            e.map.failed == 0 && e.matched == e.sent
        }),
        c => {
            eprintln!("vmpi-vmm: unknown command {c}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match r {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("vmpi-vmm: {e}");
            ExitCode::FAILURE
        }
    }
}
