// SPDX-License-Identifier: GPL-2.0

//! `vmpi-perf`: goodput and SDU rate of VMPI flows (like the paper's
//! rina-tgen), and of the baselines `make bench-vmpi` compares them with,
//! measured the same way: at the receiver, from the first to the last SDU.
//!
//! ```text
//! vmpi-perf server [--dev /dev/vmpiN | --role host|guest] [--name NAME]
//! vmpi-perf client [--dev /dev/vmpiN | --role host|guest] [--name NAME]
//!                  [--size N[,N...] | --sweep] [--count N] [--down] [--repeat R]
//! vmpi-perf udp-server --port P
//! vmpi-perf udp-client --to ADDR --port P [--size ...] [--count N] [--repeat R]
//! vmpi-perf packet --ifname IF [--size ...] [--count N] [--repeat R]
//! vmpi-perf vsock-server [--type seqpacket|stream] [--port P] [--buffer BYTES]
//! vmpi-perf vsock-client [--type seqpacket|stream] [--cid C] [--port P] [--buffer BYTES]
//!                        [--size ...] [--count N] [--down | --rr] [--repeat R]
//! vmpi-perf memcpy [--size N[,N...]] [--repeat R]
//! ```
//!
//! `server` serves flows to application NAME (default `perf`) one at a
//! time until killed. `client` allocates a flow to it per measurement:
//! `--down` has the server send and the client receive. `udp-*` does the
//! same over UDP (data on port P, control on P+1; the client always sends,
//! `--down` only labels the result). `packet` sends Ethernet
//! frames out of IF and receives them back on IF (a loopback device such
//! as `vdpa_sim_net`). Every measurement prints one line:
//!
//! `result transport=vmpi dir=up size=1000 count=2000 received=2000 secs=0.1 sdus_per_s=19990 mbit_per_s=159.9`
//!
//! `vsock-*` measures AF_VSOCK the same way as VMPI (`--cid 1`, the
//! default: `vsock_loopback` in one kernel; `--buffer`: the sockets'
//! credit, 256 KiB as vsock's default), sizes from 1 byte. `--rr` (VMPI
//! and vsock) measures round trips instead: the client sends an SDU, the
//! server echoes it, COUNT times; the line adds the median and 99th
//! percentile round-trip time:
//!
//! `result transport=vmpi dir=rr size=64 count=1000 received=1000 secs=0.9 sdus_per_s=1111 mbit_per_s=0.57 rtt_p50_us=850 rtt_p99_us=1900`
//!
//! `--flows N` (`client`, `vsock-client`) runs N flows at once, the
//! measurement's SDUs split among them; their rate is over the client's
//! time from the start of all to the end of the last. `client` given
//! `--dev` more than once spreads the flows over those devices (each with
//! its own `server`). VMPI and vsock lines carry the busy CPU time of the
//! whole system per SDU (`cpu_us_per_sdu`, from `/proc/stat`: both ends in
//! one VM). `memcpy` measures this machine's single-thread copy bandwidth
//! in blocks of SIZE (default 65535): the limit an SDU copied k times
//! cannot beat by more than k.

use std::ffi::{c_int, c_void, CString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::exit;
use std::time::{Duration, Instant};
use vmpi::{vsock, Device, Flow, MAX_SDU};

const HELLO: &str = "VMPI-PERF 1";

/// The sizes of the benchmark sweep.
fn sweep() -> Vec<usize> {
    let mut v: Vec<usize> = (0..=4000).step_by(250).collect();
    v.extend([16384, 65535]);
    v
}

struct Opts {
    dev: Option<PathBuf>,
    role: Option<String>,
    name: String,
    sizes: Vec<usize>,
    count: Option<usize>,
    down: bool,
    repeat: usize,
    port: u16,
    to: String,
    ifname: String,
    rr: bool,
    flows: usize,
    /// `--dev` given more than once: flows spread over these devices.
    devs: Vec<PathBuf>,
    kind: vsock::Kind,
    cid: u32,
    buffer: u64,
}

impl Opts {
    /// `--size` or `--sweep`'s sizes, else `default` alone.
    fn sizes_or(&self, default: usize) -> Vec<usize> {
        if self.sizes.is_empty() {
            vec![default]
        } else {
            self.sizes.clone()
        }
    }
}

const USAGE: &str = "usage:
  vmpi-perf server [--dev /dev/vmpiN | --role host|guest] [--name NAME]
  vmpi-perf client [--dev /dev/vmpiN | --role host|guest] [--name NAME]
                   [--size N[,N...] | --sweep] [--count N] [--down] [--repeat R]
  vmpi-perf udp-server --port P
  vmpi-perf udp-client --to ADDR --port P [--size ...] [--count N] [--repeat R]
  vmpi-perf packet --ifname IF [--size ...] [--count N] [--repeat R]
  vmpi-perf vsock-server [--type seqpacket|stream] [--port P] [--buffer BYTES]
  vmpi-perf vsock-client [--type seqpacket|stream] [--cid C] [--port P] [--buffer BYTES]
                         [--size ...] [--count N] [--down | --rr] [--repeat R]
  vmpi-perf memcpy [--size N[,N...]] [--repeat R]
  (client and vsock-client take --rr: round trips, not goodput; --flows N:
   N flows at once; client takes --dev more than once: flows spread over them)";

fn usage() -> ! {
    eprintln!("{USAGE}");
    exit(2)
}

fn parse(args: &[String]) -> Opts {
    let mut o = Opts {
        dev: None,
        role: None,
        name: "perf".into(),
        sizes: Vec::new(),
        count: None,
        down: false,
        repeat: 1,
        port: 5201,
        to: String::new(),
        ifname: String::new(),
        rr: false,
        flows: 1,
        devs: Vec::new(),
        kind: vsock::Kind::SeqPacket,
        cid: vsock::CID_LOCAL,
        buffer: 256 * 1024,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().unwrap_or_else(|| usage());
        match a.as_str() {
            "--dev" => {
                let p: PathBuf = val().into();
                o.devs.push(p.clone());
                o.dev = Some(p);
            }
            "--role" => o.role = Some(val()),
            "--name" => o.name = val(),
            "--size" => {
                o.sizes = val()
                    .split(',')
                    .map(|s| s.parse().unwrap_or_else(|_| usage()))
                    .collect();
            }
            "--sweep" => o.sizes = sweep(),
            "--count" => o.count = Some(val().parse().unwrap_or_else(|_| usage())),
            "--down" => o.down = true,
            "--repeat" => o.repeat = val().parse().unwrap_or_else(|_| usage()),
            "--port" => o.port = val().parse().unwrap_or_else(|_| usage()),
            "--to" => o.to = val(),
            "--ifname" => o.ifname = val(),
            "--rr" => o.rr = true,
            "--flows" => o.flows = val().parse().unwrap_or_else(|_| usage()),
            "--type" => o.kind = vsock::Kind::parse(&val()).unwrap_or_else(|| usage()),
            "--cid" => o.cid = val().parse().unwrap_or_else(|_| usage()),
            "--buffer" => o.buffer = val().parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    if o.sizes.iter().any(|&s| s > MAX_SDU) {
        eprintln!("vmpi-perf: sizes are 0 to {MAX_SDU}");
        exit(2);
    }
    o
}

/// SDUs per measurement: `--count`, else about 1 MiB (200 to 3000 SDUs:
/// a few seconds each in an emulated VM).
fn count_for(o: &Opts, size: usize) -> usize {
    match o.count {
        Some(n) => n.max(2),
        None => ((1 << 20) / size.max(350)).clamp(200, 3000),
    }
}

/// Round trips per `--rr` measurement: `--count`, else 1000 (fewer for
/// large SDUs: 256 at 64 KiB).
fn rr_count_for(o: &Opts, size: usize) -> usize {
    match o.count {
        Some(n) => n.max(1),
        None => ((16 << 20) / size.max(16384)).clamp(200, 1000),
    }
}

/// What a receiver measured.
struct Measure {
    received: usize,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Measure {
    fn new() -> Self {
        Measure {
            received: 0,
            first: None,
            last: None,
        }
    }
    fn got(&mut self) {
        let now = Instant::now();
        self.first.get_or_insert(now);
        self.last = Some(now);
        self.received += 1;
    }
    fn secs(&self) -> f64 {
        match (self.first, self.last) {
            (Some(a), Some(b)) => (b - a).as_secs_f64(),
            _ => 0.0,
        }
    }
    fn encode(&self) -> String {
        format!("DONE {} {:.9}", self.received, self.secs())
    }
}

/// The busy CPU time of the whole system (every CPU, user and kernel,
/// `/proc/stat`): both ends of a measurement in one VM, and the kernel's
/// work between them.
struct CpuMeter(Option<u64>);

impl CpuMeter {
    /// Busy time now, in clock ticks (USER_HZ, 100 a second).
    fn busy_ticks() -> Option<u64> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
        let v: Vec<u64> = cpu
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal: not idle, iowait.
        Some(
            v.iter()
                .take(8)
                .enumerate()
                .filter(|(i, _)| *i != 3 && *i != 4)
                .map(|(_, x)| x)
                .sum(),
        )
    }

    fn start() -> Self {
        CpuMeter(Self::busy_ticks())
    }

    /// Busy microseconds per SDU since `start`.
    fn per_sdu(&self, sdus: usize) -> Option<f64> {
        let (a, b) = (self.0?, Self::busy_ticks()?);
        (sdus > 0).then(|| b.saturating_sub(a) as f64 * 10_000.0 / sdus as f64)
    }
}

/// A measurement's result line.
struct Line<'a> {
    transport: &'a str,
    dir: &'a str,
    size: usize,
    count: usize,
    received: usize,
    flows: usize,
    cpu: Option<f64>,
}

impl Line<'_> {
    /// Prints the line with rates over `secs` (from the first SDU to the
    /// last when `first_to_last`: one SDU fewer), and `extra` fields.
    fn print(&self, secs: f64, first_to_last: bool, extra: &str) {
        let n = if first_to_last {
            self.received.saturating_sub(1)
        } else {
            self.received
        } as f64;
        let (rate, mbit) = if secs > 0.0 {
            (n / secs, n * self.size as f64 * 8.0 / secs / 1e6)
        } else {
            (0.0, 0.0)
        };
        let cpu = self
            .cpu
            .map_or(String::new(), |c| format!(" cpu_us_per_sdu={c:.1}"));
        println!(
            "result transport={} dir={} size={} count={} received={} secs={secs:.6} sdus_per_s={rate:.0} mbit_per_s={mbit:.2} flows={}{cpu}{extra}",
            self.transport, self.dir, self.size, self.count, self.received, self.flows
        );
    }
}

fn report(transport: &str, dir: &str, size: usize, count: usize, received: usize, secs: f64) {
    Line {
        transport,
        dir,
        size,
        count,
        received,
        flows: 1,
        cpu: None,
    }
    .print(secs, true, "");
}

/// A round-trip measurement's line: the rates over `secs`, and the median
/// and 99th percentile of the round trips of every flow.
fn report_rr(line: &Line<'_>, rtt: &mut [Duration], secs: f64) {
    rtt.sort_unstable();
    let pct = |p: usize| {
        rtt.get((rtt.len() * p / 100).min(rtt.len().saturating_sub(1)))
            .map_or(0, |d| d.as_micros())
    };
    line.print(
        secs,
        false,
        &format!(" rtt_p50_us={} rtt_p99_us={}", pct(50), pct(99)),
    );
}

fn device(o: &Opts, default_role: &str) -> io::Result<Device> {
    match &o.dev {
        Some(p) => Device::at(p),
        None => Device::find(o.role.as_deref().unwrap_or(default_role), None),
    }
}

fn fail(what: &str, e: io::Error) -> ! {
    eprintln!("vmpi-perf: {what}: {e}");
    exit(1)
}

// --- One connection of a measured transport -----------------------------

/// A connection of a measured transport: messages (VMPI flows, vsock
/// `SOCK_SEQPACKET`) or bytes (vsock `SOCK_STREAM`, read in SDUs of the
/// size the client announced).
trait Conn {
    fn send(&mut self, sdu: &[u8]) -> io::Result<()>;
    /// The next SDU: the next message, or the next `len` bytes of a
    /// stream. `Ok(None)`: the peer closed.
    fn recv(&mut self, buf: &mut [u8], len: usize) -> io::Result<Option<usize>>;
}

impl Conn for Flow {
    fn send(&mut self, sdu: &[u8]) -> io::Result<()> {
        Flow::send(self, sdu)
    }
    fn recv(&mut self, buf: &mut [u8], _len: usize) -> io::Result<Option<usize>> {
        match Flow::recv(self, buf) {
            Ok(n) => Ok(Some(n)),
            // The peer's close (the flow's deallocation).
            Err(e) if e.raw_os_error() == Some(104) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// vsock `SOCK_SEQPACKET`: one `write` and one `read` per message.
struct Messages(File);

impl Conn for Messages {
    fn send(&mut self, sdu: &[u8]) -> io::Result<()> {
        let n = self.0.write(sdu)?;
        if n != sdu.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short message write",
            ));
        }
        Ok(())
    }
    fn recv(&mut self, buf: &mut [u8], _len: usize) -> io::Result<Option<usize>> {
        // Sizes are above 0 on vsock (see `VSOCK_MIN`): 0 is the end.
        match self.0.read(buf)? {
            0 => Ok(None),
            n => Ok(Some(n)),
        }
    }
}

/// vsock `SOCK_STREAM`: bytes, SDUs by their agreed size.
struct Bytes(File);

impl Conn for Bytes {
    fn send(&mut self, sdu: &[u8]) -> io::Result<()> {
        self.0.write_all(sdu)
    }
    fn recv(&mut self, buf: &mut [u8], len: usize) -> io::Result<Option<usize>> {
        match self.0.read_exact(&mut buf[..len]) {
            Ok(()) => Ok(Some(len)),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Control messages (the client's request, the server's `DONE`) are
/// `CTRL_LEN` bytes, padded with spaces: a stream reads them whole.
const CTRL_LEN: usize = 64;

fn send_ctrl(c: &mut dyn Conn, msg: &str) -> io::Result<()> {
    let mut b = msg.as_bytes().to_vec();
    b.resize(CTRL_LEN.max(b.len()), b' ');
    c.send(&b)
}

fn recv_ctrl(c: &mut dyn Conn, buf: &mut [u8]) -> io::Result<Vec<String>> {
    let n = c
        .recv(buf, CTRL_LEN)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "closed"))?;
    Ok(String::from_utf8_lossy(&buf[..n])
        .split_whitespace()
        .map(String::from)
        .collect())
}

/// Serves one measurement on `c`: the client's request
/// (`VMPI-PERF 1 DIR SIZE COUNT`), then `up` (receive COUNT SDUs, answer
/// `DONE received secs`), `down` (send COUNT SDUs of SIZE) or `rr`
/// (echo COUNT SDUs of SIZE); then waits for the client to close, so that
/// the next measurement starts idle.
fn serve_one(c: &mut dyn Conn, buf: &mut [u8]) -> io::Result<()> {
    let f = recv_ctrl(c, buf)?;
    let (Some("VMPI-PERF"), Some("1"), Some(dir), Some(size), Some(count)) = (
        f.first().map(String::as_str),
        f.get(1).map(String::as_str),
        f.get(2).map(String::as_str),
        f.get(3).and_then(|s| s.parse::<usize>().ok()),
        f.get(4).and_then(|s| s.parse::<usize>().ok()),
    ) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad request {f:?}"),
        ));
    };
    let size = size.min(MAX_SDU);
    match dir {
        "up" => {
            let mut m = Measure::new();
            while m.received < count {
                match c.recv(buf, size) {
                    Ok(Some(_)) => m.got(),
                    Ok(None) => break,
                    Err(e) => {
                        eprintln!("vmpi-perf: ended after {} SDUs: {e}", m.received);
                        break;
                    }
                }
            }
            send_ctrl(c, &m.encode())?;
        }
        "down" => {
            let data = vec![0xa5u8; size];
            for _ in 0..count {
                c.send(&data)?;
            }
        }
        "rr" => {
            for _ in 0..count {
                let Some(n) = c.recv(buf, size)? else {
                    break;
                };
                c.send(&buf[..n])?;
            }
        }
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad direction {dir}"),
            ))
        }
    }
    while let Ok(Some(_)) = c.recv(buf, 1) {}
    Ok(())
}

/// What one flow of a measurement saw, from the client's side.
struct Outcome {
    /// SDUs received (by the server for `up`).
    received: usize,
    /// The receiver's time from its first SDU to its last.
    secs: f64,
    /// Round trips (`rr`).
    rtt: Vec<Duration>,
}

/// The measurement's direction from the options.
fn dir_of(o: &Opts) -> &'static str {
    if o.rr {
        "rr"
    } else if o.down {
        "down"
    } else {
        "up"
    }
}

/// Asks the server on `c` for a measurement of `count` SDUs of `size`.
fn ask(c: &mut dyn Conn, dir: &str, size: usize, count: usize) -> io::Result<()> {
    send_ctrl(c, &format!("{HELLO} {dir} {size} {count}"))
}

/// The client's side of a measurement asked on `c`.
fn run(c: &mut dyn Conn, dir: &str, size: usize, count: usize) -> io::Result<Outcome> {
    let mut buf = vec![0u8; MAX_SDU.max(CTRL_LEN)];
    let mut out = Outcome {
        received: 0,
        secs: 0.0,
        rtt: Vec::new(),
    };
    match dir {
        "down" => {
            let mut m = Measure::new();
            while m.received < count {
                if c.recv(&mut buf, size)?.is_none() {
                    break;
                }
                m.got();
            }
            (out.received, out.secs) = (m.received, m.secs());
        }
        "up" => {
            let data = vec![0x5au8; size];
            for _ in 0..count {
                c.send(&data)?;
            }
            let f = recv_ctrl(c, &mut buf)?;
            out.received = f.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            out.secs = f.get(2).and_then(|s| s.parse().ok()).unwrap_or(0.0);
        }
        _ => {
            let data = vec![0x5au8; size];
            out.rtt.reserve(count);
            for _ in 0..count {
                let t = Instant::now();
                c.send(&data)?;
                match c.recv(&mut buf, size)? {
                    Some(n) if n == size => out.rtt.push(t.elapsed()),
                    Some(n) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{n} bytes came back for {size}"),
                        ))
                    }
                    None => break,
                }
            }
            out.received = out.rtt.len();
        }
    }
    Ok(out)
}

/// One measurement of `size` over `conns` (one flow each, at once), from
/// the client's side: prints its result. With one flow the rate is the
/// receiver's (first to last SDU); with more, all flows' SDUs over the
/// client's time from the start of all to the end of the last.
fn measure(
    conns: &mut [Box<dyn Conn + Send>],
    o: &Opts,
    transport: &str,
    size: usize,
) -> io::Result<()> {
    let dir = dir_of(o);
    let n = conns.len().max(1);
    let total = if o.rr {
        rr_count_for(o, size)
    } else {
        count_for(o, size)
    };
    let count = total.div_ceil(n).max(2);
    for c in conns.iter_mut() {
        ask(c.as_mut(), dir, size, count)?;
    }
    let cpu = CpuMeter::start();
    let t0 = Instant::now();
    let outs: Vec<io::Result<Outcome>> = if n == 1 {
        vec![run(conns[0].as_mut(), dir, size, count)]
    } else {
        std::thread::scope(|sc| {
            let hs: Vec<_> = conns
                .iter_mut()
                .map(|c| sc.spawn(move || run(c.as_mut(), dir, size, count)))
                .collect();
            hs.into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(io::Error::other("flow thread panicked")))
                })
                .collect()
        })
    };
    let wall = t0.elapsed().as_secs_f64();
    let mut received = 0;
    let mut secs = 0.0;
    let mut rtt = Vec::new();
    for out in outs {
        let out = out?;
        received += out.received;
        secs = out.secs;
        rtt.extend(out.rtt);
    }
    let cpu = cpu.per_sdu(received);
    let line = Line {
        transport,
        dir,
        size,
        count: count * n,
        received,
        flows: n,
        cpu,
    };
    if o.rr {
        report_rr(&line, &mut rtt, wall);
    } else {
        line.print(if n == 1 { secs } else { wall }, n == 1, "");
    }
    Ok(())
}

// --- VMPI ----------------------------------------------------------------

fn serve_vmpi(o: &Opts) -> io::Result<()> {
    let dev = device(o, "host")?;
    let reg = dev.register(&o.name)?;
    eprintln!("vmpi-perf: serving {} on {}", o.name, dev.path.display());
    loop {
        let flow = reg.accept()?;
        serve_in_thread(Box::new(flow));
    }
}

/// Serves a connection in a thread of its own (measurements of many
/// flows at once).
fn serve_in_thread(mut c: Box<dyn Conn + Send>) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; MAX_SDU.max(CTRL_LEN)];
        if let Err(e) = serve_one(c.as_mut(), &mut buf) {
            eprintln!("vmpi-perf: {e}");
        }
    });
}

fn client_vmpi(o: &Opts) -> io::Result<()> {
    let devs = o
        .devs
        .iter()
        .map(|p| Device::at(p))
        .collect::<io::Result<Vec<_>>>()?;
    let devs = if devs.is_empty() {
        vec![device(o, "guest")?]
    } else {
        devs
    };
    let transport = if devs.len() > 1 {
        format!("vmpi-{}dev", devs.len())
    } else {
        "vmpi".into()
    };
    for &size in &o.sizes_or(1000) {
        for _ in 0..o.repeat {
            // Flows spread over the devices.
            let mut conns = Vec::with_capacity(o.flows);
            for i in 0..o.flows.max(1) {
                let flow = devs[i % devs.len()].alloc(
                    &o.name,
                    Some("vmpi-perf"),
                    Duration::from_secs(10),
                )?;
                conns.push(Box::new(flow) as Box<dyn Conn + Send>);
            }
            measure(&mut conns, o, &transport, size)?;
        }
    }
    Ok(())
}

// --- AF_VSOCK --------------------------------------------------------------

/// vsock has no empty message to measure (a read of 0 is the end).
const VSOCK_MIN: usize = 1;

fn vsock_conn(kind: vsock::Kind, f: File) -> Box<dyn Conn + Send> {
    match kind {
        vsock::Kind::SeqPacket => Box::new(Messages(f)),
        vsock::Kind::Stream => Box::new(Bytes(f)),
    }
}

fn serve_vsock(o: &Opts) -> io::Result<()> {
    let l = vsock::Listener::bind(o.kind, u32::from(o.port), o.buffer)?;
    eprintln!(
        "vmpi-perf: serving vsock {} on port {}",
        o.kind.name(),
        o.port
    );
    loop {
        serve_in_thread(vsock_conn(o.kind, l.accept()?));
    }
}

fn client_vsock(o: &Opts) -> io::Result<()> {
    let transport = format!("vsock-{}", o.kind.name());
    for &size in o.sizes_or(1000).iter().filter(|&&s| s >= VSOCK_MIN) {
        for _ in 0..o.repeat {
            let mut conns = Vec::with_capacity(o.flows);
            for _ in 0..o.flows.max(1) {
                let f = vsock::connect_to(o.kind, o.cid, u32::from(o.port), o.buffer)?;
                conns.push(vsock_conn(o.kind, f));
            }
            measure(&mut conns, o, &transport, size)?;
        }
    }
    Ok(())
}

// --- UDP -------------------------------------------------------------------

fn serve_udp(o: &Opts) -> io::Result<()> {
    let data = UdpSocket::bind(("0.0.0.0", o.port))?;
    let ctl = UdpSocket::bind(("0.0.0.0", o.port + 1))?;
    ctl.set_nonblocking(true)?;
    data.set_read_timeout(Some(Duration::from_millis(20)))?;
    let mut buf = vec![0u8; 65536];
    let mut m = Measure::new();
    loop {
        if data.recv(&mut buf).is_ok() {
            m.got();
            continue;
        }
        // Idle: an END on the control port closes the measurement.
        if let Ok((n, from)) = ctl.recv_from(&mut buf) {
            if &buf[..n] == b"END" {
                ctl.send_to(m.encode().as_bytes(), from)?;
                m = Measure::new();
            }
        }
    }
}

fn client_udp(o: &Opts) -> io::Result<()> {
    let data = UdpSocket::bind(("0.0.0.0", 0))?;
    data.connect((o.to.as_str(), o.port))?;
    let ctl = UdpSocket::bind(("0.0.0.0", 0))?;
    ctl.connect((o.to.as_str(), o.port + 1))?;
    ctl.set_read_timeout(Some(Duration::from_millis(500)))?;
    let mut buf = vec![0u8; 256];
    for &size in &o.sizes_or(1000) {
        if size > 65507 {
            continue;
        }
        for _ in 0..o.repeat {
            let count = count_for(o, size);
            let payload = vec![0x5au8; size];
            for _ in 0..count {
                // A full socket buffer blocks; other errors (ENOBUFS) lose
                // the datagram, which the receiver's count shows.
                let _ = data.send(&payload);
            }
            let mut done = None;
            for _ in 0..20 {
                ctl.send(b"END")?;
                if let Ok(n) = ctl.recv(&mut buf) {
                    done = Some(String::from_utf8_lossy(&buf[..n]).into_owned());
                    break;
                }
            }
            let done = done.ok_or_else(|| {
                io::Error::new(io::ErrorKind::TimedOut, "no answer from udp-server")
            })?;
            let f: Vec<&str> = done.split_whitespace().collect();
            let received = f.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            let secs = f.get(2).and_then(|s| s.parse().ok()).unwrap_or(0.0);
            report(
                "udp",
                if o.down { "down" } else { "up" },
                size,
                count,
                received,
                secs,
            );
        }
    }
    Ok(())
}

// --- Ethernet frames through a loopback device ----------------------------

const AF_PACKET: c_int = 17;
const SOCK_RAW: c_int = 3;
/// IEEE 802 local experimental ethertype.
const ETH_P_PERF: u16 = 0x88b5;

#[repr(C)]
struct SockaddrLl {
    family: u16,
    protocol: u16,
    ifindex: c_int,
    hatype: u16,
    pkttype: u8,
    halen: u8,
    addr: [u8; 8],
}

/// `PACKET_OUTGOING`: our own frame on its way out.
const PACKET_OUTGOING: u8 = 4;

#[repr(C)]
struct PollFd {
    fd: c_int,
    events: i16,
    revents: i16,
}

extern "C" {
    fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int;
    fn bind(fd: c_int, addr: *const SockaddrLl, len: u32) -> c_int;
    fn send(fd: c_int, buf: *const c_void, len: usize, flags: c_int) -> isize;
    fn recvfrom(
        fd: c_int,
        buf: *mut c_void,
        len: usize,
        flags: c_int,
        from: *mut SockaddrLl,
        fromlen: *mut u32,
    ) -> isize;
    fn poll(fds: *mut PollFd, nfds: u64, timeout_ms: c_int) -> c_int;
    fn if_nametoindex(name: *const std::ffi::c_char) -> u32;
    fn close(fd: c_int) -> c_int;
}

/// A packet socket bound to `ifindex` for our ethertype.
struct PacketSocket(c_int);

impl PacketSocket {
    fn new(ifindex: u32) -> io::Result<Self> {
        let proto = ETH_P_PERF.to_be();
        // SAFETY: plain syscall wrapper.
        let fd = unsafe { socket(AF_PACKET, SOCK_RAW, c_int::from(proto)) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let s = PacketSocket(fd);
        let sa = SockaddrLl {
            family: AF_PACKET as u16,
            protocol: proto,
            ifindex: ifindex as c_int,
            hatype: 0,
            pkttype: 0,
            halen: 0,
            addr: [0; 8],
        };
        // SAFETY: `sa` is a valid sockaddr_ll of the given length.
        if unsafe { bind(fd, &sa, std::mem::size_of::<SockaddrLl>() as u32) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(s)
    }
    fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: `frame` is valid for its length.
        if unsafe { send(self.0, frame.as_ptr().cast(), frame.len(), 0) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
    /// The next frame that came in (not our own going out), or `None`
    /// after `timeout_ms` without one.
    fn recv_in(&self, buf: &mut [u8], timeout_ms: c_int) -> io::Result<Option<usize>> {
        loop {
            let mut p = PollFd {
                fd: self.0,
                events: 1,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            match unsafe { poll(&mut p, 1, timeout_ms) } {
                0 => return Ok(None),
                r if r < 0 => return Err(io::Error::last_os_error()),
                _ => {}
            }
            let mut from = SockaddrLl {
                family: 0,
                protocol: 0,
                ifindex: 0,
                hatype: 0,
                pkttype: 0,
                halen: 0,
                addr: [0; 8],
            };
            let mut len = std::mem::size_of::<SockaddrLl>() as u32;
            // SAFETY: `buf` and `from` are valid for writes of their sizes.
            let n = unsafe {
                recvfrom(
                    self.0,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    &mut from,
                    &mut len,
                )
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            if from.pkttype != PACKET_OUTGOING {
                return Ok(Some(n as usize));
            }
        }
    }
}

impl Drop for PacketSocket {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { close(self.0) };
    }
}

fn packet_loop(o: &Opts) -> io::Result<()> {
    let name =
        CString::new(o.ifname.clone()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `name` is NUL-terminated.
    let ifindex = unsafe { if_nametoindex(name.as_ptr()) };
    if ifindex == 0 {
        return Err(io::Error::last_os_error());
    }
    let mac = std::fs::read_to_string(format!("/sys/class/net/{}/address", o.ifname))?;
    let mac: Vec<u8> = mac
        .trim()
        .split(':')
        .filter_map(|h| u8::from_str_radix(h, 16).ok())
        .collect();
    let mtu: usize = std::fs::read_to_string(format!("/sys/class/net/{}/mtu", o.ifname))?
        .trim()
        .parse()
        .unwrap_or(1500);
    for &size in &o.sizes_or(1000) {
        if size > mtu {
            continue;
        }
        for _ in 0..o.repeat {
            let count = count_for(o, size);
            let tx = PacketSocket::new(ifindex)?;
            let rx = PacketSocket::new(ifindex)?;
            let receiver = std::thread::spawn(move || {
                let mut m = Measure::new();
                let mut buf = vec![0u8; 65536];
                // Ends at the count, or after 2 s without a frame (lost).
                while m.received < count {
                    match rx.recv_in(&mut buf, 2000) {
                        Ok(Some(_)) => m.got(),
                        _ => break,
                    }
                }
                m
            });
            let mut frame = Vec::with_capacity(14 + size);
            frame.extend_from_slice(&mac);
            frame.extend_from_slice(&mac);
            frame.extend_from_slice(&ETH_P_PERF.to_be_bytes());
            frame.resize(14 + size, 0x5a);
            for _ in 0..count {
                let _ = tx.send(&frame);
            }
            let m = receiver
                .join()
                .map_err(|_| io::Error::other("receiver panicked"))?;
            report("virtio-net", "loop", size, count, m.received, m.secs());
        }
    }
    Ok(())
}

// --- The copy limit ----------------------------------------------------------

/// Copies `size`-byte blocks between two 32 MiB buffers (larger than any
/// cache of this machine) for about a second, `repeat` times per size
/// (default: [`MAX_SDU`], the largest SDU).
fn memcpy_bw(o: &Opts) -> io::Result<()> {
    const SPAN: usize = 32 << 20;
    let src = vec![0x5au8; SPAN];
    let mut dst = vec![0u8; SPAN];
    for &size in o.sizes_or(MAX_SDU).iter().filter(|&&s| s > 0 && s <= SPAN) {
        for _ in 0..o.repeat {
            let t0 = Instant::now();
            let mut blocks = 0usize;
            let mut at = 0;
            while t0.elapsed() < Duration::from_secs(1) {
                for _ in 0..64 {
                    if at + size > SPAN {
                        at = 0;
                    }
                    dst[at..at + size].copy_from_slice(&src[at..at + size]);
                    std::hint::black_box(&mut dst);
                    at += size;
                    blocks += 1;
                }
            }
            let secs = t0.elapsed().as_secs_f64();
            Line {
                transport: "memcpy",
                dir: "copy",
                size,
                count: blocks,
                received: blocks,
                flows: 1,
                cpu: None,
            }
            .print(secs, false, "");
        }
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(cmd) = args.get(1) else { usage() };
    let o = parse(&args[2..]);
    let r = match cmd.as_str() {
        "server" => serve_vmpi(&o),
        "client" => client_vmpi(&o),
        "udp-server" => serve_udp(&o),
        "udp-client" => client_udp(&o),
        "packet" => packet_loop(&o),
        "vsock-server" => serve_vsock(&o),
        "vsock-client" => client_vsock(&o),
        "memcpy" => memcpy_bw(&o),
        _ => usage(),
    };
    if let Err(e) = r {
        fail(cmd, e);
    }
}
