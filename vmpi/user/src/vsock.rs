// SPDX-License-Identifier: GPL-2.0

//! AF_VSOCK sockets, the peer VMPI is measured against (`vmpi-perf`'s
//! `vsock-*` modes): what a user wanting VM-to-host messages without NIC
//! emulation picks today. `SOCK_SEQPACKET` keeps message boundaries (one
//! `read` is one message, as one VMPI SDU); `SOCK_STREAM` does not.
//! No `libc` crate (the workspace builds offline with what it has): the
//! few calls are declared here, as `lib.rs` declares `ioctl`.

use std::ffi::c_int;
use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

const AF_VSOCK: c_int = 40;
const SOCK_STREAM: c_int = 1;
const SOCK_SEQPACKET: c_int = 5;
const SOCK_CLOEXEC: c_int = 0o2_000_000;
const SOL_SOCKET: c_int = 1;
const SO_SNDBUF: c_int = 7;
const SO_RCVBUF: c_int = 8;
const AF_VSOCK_SOCKOPT: c_int = 40;
/// `SO_VM_SOCKETS_BUFFER_SIZE`: the credit a vsock peer may send ahead.
const SO_VM_SOCKETS_BUFFER_SIZE: c_int = 0;
/// `SO_VM_SOCKETS_BUFFER_MAX_SIZE`.
const SO_VM_SOCKETS_BUFFER_MAX_SIZE: c_int = 2;

/// `VMADDR_CID_LOCAL`: this kernel, through `vsock_loopback`.
pub const CID_LOCAL: u32 = 1;
/// `VMADDR_CID_HOST`: the host, from a guest.
pub const CID_HOST: u32 = 2;
/// `VMADDR_CID_ANY`.
const CID_ANY: u32 = u32::MAX;

/// `struct sockaddr_vm`.
#[repr(C)]
struct SockaddrVm {
    family: u16,
    reserved1: u16,
    port: u32,
    cid: u32,
    flags: u8,
    zero: [u8; 3],
}

impl SockaddrVm {
    fn new(cid: u32, port: u32) -> Self {
        SockaddrVm {
            family: AF_VSOCK as u16,
            reserved1: 0,
            port,
            cid,
            flags: 0,
            zero: [0; 3],
        }
    }
}

extern "C" {
    fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int;
    fn bind(fd: c_int, addr: *const SockaddrVm, len: u32) -> c_int;
    fn listen(fd: c_int, backlog: c_int) -> c_int;
    fn accept4(fd: c_int, addr: *mut SockaddrVm, len: *mut u32, flags: c_int) -> c_int;
    fn connect(fd: c_int, addr: *const SockaddrVm, len: u32) -> c_int;
    fn setsockopt(fd: c_int, level: c_int, name: c_int, val: *const u8, len: u32) -> c_int;
}

/// A vsock socket type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `SOCK_SEQPACKET`: messages.
    SeqPacket,
    /// `SOCK_STREAM`: bytes.
    Stream,
}

impl Kind {
    /// `seqpacket` or `stream`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "seqpacket" => Some(Kind::SeqPacket),
            "stream" => Some(Kind::Stream),
            _ => None,
        }
    }

    /// The name `parse` takes.
    pub fn name(self) -> &'static str {
        match self {
            Kind::SeqPacket => "seqpacket",
            Kind::Stream => "stream",
        }
    }

    fn sock_type(self) -> c_int {
        match self {
            Kind::SeqPacket => SOCK_SEQPACKET,
            Kind::Stream => SOCK_STREAM,
        }
    }
}

fn check(r: c_int) -> io::Result<c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn new_socket(kind: Kind) -> io::Result<OwnedFd> {
    // SAFETY: a plain syscall; a descriptor it returns is ours alone.
    let fd = check(unsafe { socket(AF_VSOCK, kind.sock_type() | SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` was just returned by socket() and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_opt(fd: &OwnedFd, level: c_int, name: c_int, val: &[u8]) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `val` is valid for reads of its length for the call.
    check(unsafe { setsockopt(fd.as_raw_fd(), level, name, val.as_ptr(), val.len() as u32) })?;
    Ok(())
}

/// Socket buffers and vsock's credit of `bytes` (vsock's default credit,
/// 256 KiB, would hold a 64 KiB sender to four messages in flight; VMPI's
/// flows get the credit their readers give, `docs/vmpi-protocol.md`).
fn size_buffers(fd: &OwnedFd, bytes: u64) -> io::Result<()> {
    let v = bytes.to_ne_bytes();
    set_opt(fd, AF_VSOCK_SOCKOPT, SO_VM_SOCKETS_BUFFER_MAX_SIZE, &v)?;
    set_opt(fd, AF_VSOCK_SOCKOPT, SO_VM_SOCKETS_BUFFER_SIZE, &v)?;
    let b = (bytes.min(i32::MAX as u64) as c_int).to_ne_bytes();
    // Best effort: capped by net.core.[rw]mem_max.
    let _ = set_opt(fd, SOL_SOCKET, SO_SNDBUF, &b);
    let _ = set_opt(fd, SOL_SOCKET, SO_RCVBUF, &b);
    Ok(())
}

/// A listening vsock socket.
pub struct Listener {
    fd: OwnedFd,
    buffer: u64,
}

impl Listener {
    /// Listens on `port` of every CID this kernel has (loopback included),
    /// its connections with `buffer` bytes of credit.
    pub fn bind(kind: Kind, port: u32, buffer: u64) -> io::Result<Self> {
        use std::os::fd::AsRawFd;
        let fd = new_socket(kind)?;
        size_buffers(&fd, buffer)?;
        let sa = SockaddrVm::new(CID_ANY, port);
        let len = std::mem::size_of::<SockaddrVm>() as u32;
        // SAFETY: `sa` is a valid sockaddr_vm of `len` bytes.
        check(unsafe { bind(fd.as_raw_fd(), &sa, len) })?;
        // SAFETY: plain syscall on our descriptor.
        check(unsafe { listen(fd.as_raw_fd(), 64) })?;
        Ok(Listener { fd, buffer })
    }

    /// The next connection, as a file (`read`/`write`: one message each
    /// for `SOCK_SEQPACKET`).
    pub fn accept(&self) -> io::Result<File> {
        use std::os::fd::AsRawFd;
        let mut sa = SockaddrVm::new(0, 0);
        let mut len = std::mem::size_of::<SockaddrVm>() as u32;
        // SAFETY: `sa` and `len` are valid for writes of their sizes.
        let fd = check(unsafe { accept4(self.fd.as_raw_fd(), &mut sa, &mut len, SOCK_CLOEXEC) })?;
        // SAFETY: `fd` was just returned by accept4() and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        size_buffers(&fd, self.buffer)?;
        Ok(File::from(fd))
    }
}

/// Connects to `port` of `cid` with `buffer` bytes of credit.
pub fn connect_to(kind: Kind, cid: u32, port: u32, buffer: u64) -> io::Result<File> {
    use std::os::fd::AsRawFd;
    let fd = new_socket(kind)?;
    size_buffers(&fd, buffer)?;
    let sa = SockaddrVm::new(cid, port);
    let len = std::mem::size_of::<SockaddrVm>() as u32;
    // SAFETY: `sa` is a valid sockaddr_vm of `len` bytes.
    check(unsafe { connect(fd.as_raw_fd(), &sa, len) })?;
    Ok(File::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_vm_is_the_kernels() {
        // struct sockaddr_vm: 16 bytes, port at 4, cid at 8.
        assert_eq!(std::mem::size_of::<SockaddrVm>(), 16);
        let sa = SockaddrVm::new(7, 9);
        let p = &sa as *const SockaddrVm as usize;
        assert_eq!(&sa.port as *const u32 as usize - p, 4);
        assert_eq!(&sa.cid as *const u32 as usize - p, 8);
    }

    #[test]
    fn kinds_round_trip() {
        for k in [Kind::SeqPacket, Kind::Stream] {
            assert_eq!(Kind::parse(k.name()), Some(k));
        }
        assert_eq!(Kind::parse("dgram"), None);
    }
}
