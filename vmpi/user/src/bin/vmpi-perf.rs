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

use std::ffi::{c_int, c_void, CString};
use std::io;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::exit;
use std::time::{Duration, Instant};
use vmpi::{Device, MAX_SDU};

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
}

const USAGE: &str = "usage:
  vmpi-perf server [--dev /dev/vmpiN | --role host|guest] [--name NAME]
  vmpi-perf client [--dev /dev/vmpiN | --role host|guest] [--name NAME]
                   [--size N[,N...] | --sweep] [--count N] [--down] [--repeat R]
  vmpi-perf udp-server --port P
  vmpi-perf udp-client --to ADDR --port P [--size ...] [--count N] [--repeat R]
  vmpi-perf packet --ifname IF [--size ...] [--count N] [--repeat R]";

fn usage() -> ! {
    eprintln!("{USAGE}");
    exit(2)
}

fn parse(args: &[String]) -> Opts {
    let mut o = Opts {
        dev: None,
        role: None,
        name: "perf".into(),
        sizes: vec![1000],
        count: None,
        down: false,
        repeat: 1,
        port: 5201,
        to: String::new(),
        ifname: String::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().unwrap_or_else(|| usage());
        match a.as_str() {
            "--dev" => o.dev = Some(val().into()),
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

fn report(transport: &str, dir: &str, size: usize, count: usize, received: usize, secs: f64) {
    // Rates over the intervals between the first and last SDU.
    let n = received.saturating_sub(1) as f64;
    let (rate, mbit) = if secs > 0.0 {
        (n / secs, n * size as f64 * 8.0 / secs / 1e6)
    } else {
        (0.0, 0.0)
    };
    println!(
        "result transport={transport} dir={dir} size={size} count={count} received={received} secs={secs:.6} sdus_per_s={rate:.0} mbit_per_s={mbit:.2}"
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

// --- VMPI ----------------------------------------------------------------

fn serve_vmpi(o: &Opts) -> io::Result<()> {
    let dev = device(o, "host")?;
    let reg = dev.register(&o.name)?;
    eprintln!("vmpi-perf: serving {} on {}", o.name, dev.path.display());
    let mut buf = vec![0u8; MAX_SDU];
    loop {
        let flow = reg.accept()?;
        let n = flow.recv(&mut buf)?;
        let hdr = String::from_utf8_lossy(&buf[..n]).into_owned();
        let f: Vec<&str> = hdr.split_whitespace().collect();
        let (Some(&"VMPI-PERF"), Some(&"1"), Some(dir), Some(size), Some(count)) = (
            f.first(),
            f.get(1),
            f.get(2),
            f.get(3).and_then(|s| s.parse::<usize>().ok()),
            f.get(4).and_then(|s| s.parse::<usize>().ok()),
        ) else {
            eprintln!("vmpi-perf: bad request {hdr:?}");
            continue;
        };
        let size = size.min(MAX_SDU);
        if *dir == "up" {
            let mut m = Measure::new();
            while m.received < count {
                match flow.recv(&mut buf) {
                    Ok(_) => m.got(),
                    Err(e) => {
                        eprintln!("vmpi-perf: flow ended after {} SDUs: {e}", m.received);
                        break;
                    }
                }
            }
            let _ = flow.send(m.encode().as_bytes());
        } else {
            let data = vec![0xa5u8; size];
            for _ in 0..count {
                if flow.send(&data).is_err() {
                    break;
                }
            }
        }
        // Wait for the client to close (reads ECONNRESET), so that the
        // next measurement starts on an idle device.
        while flow.recv(&mut buf).is_ok() {}
    }
}

fn client_vmpi(o: &Opts) -> io::Result<()> {
    let dev = device(o, "guest")?;
    let mut buf = vec![0u8; MAX_SDU];
    let dir = if o.down { "down" } else { "up" };
    for &size in &o.sizes {
        for _ in 0..o.repeat {
            let count = count_for(o, size);
            let flow = dev.alloc(&o.name, Some("vmpi-perf"), Duration::from_secs(10))?;
            flow.send(format!("{HELLO} {dir} {size} {count}").as_bytes())?;
            if o.down {
                let mut m = Measure::new();
                while m.received < count {
                    flow.recv(&mut buf)?;
                    m.got();
                }
                report("vmpi", dir, size, count, m.received, m.secs());
            } else {
                let data = vec![0x5au8; size];
                for _ in 0..count {
                    flow.send(&data)?;
                }
                let n = flow.recv(&mut buf)?;
                let done = String::from_utf8_lossy(&buf[..n]).into_owned();
                let f: Vec<&str> = done.split_whitespace().collect();
                let received = f.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
                let secs = f.get(2).and_then(|s| s.parse().ok()).unwrap_or(0.0);
                report("vmpi", dir, size, count, received, secs);
            }
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
    for &size in &o.sizes {
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
    for &size in &o.sizes {
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
        _ => usage(),
    };
    if let Err(e) = r {
        fail(cmd, e);
    }
}
