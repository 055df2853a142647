// SPDX-License-Identifier: GPL-2.0

//! Userspace access to VMPI devices: the char devices `/dev/vmpiN` of
//! rvio's `vmpi` module (`include/uapi/rvio/vmpi.h`,
//! `docs/vmpi-sysfs.md`).
//!
//! ```no_run
//! use vmpi::{Device, Flow};
//! use std::time::Duration;
//! // On the host: register "echo" and serve one flow.
//! let host = Device::find("host", None)?;
//! let reg = host.register("echo")?;
//! # let guest = Device::find("guest", None)?;
//! // In the guest: allocate a flow to the host's "echo".
//! let flow = guest.alloc("echo", Some("client"), Duration::from_secs(3))?;
//! flow.send(b"hello")?;
//! let served = reg.accept()?;
//! let mut buf = vec![0u8; vmpi::MAX_SDU];
//! let n = served.recv(&mut buf)?;
//! assert_eq!(&buf[..n], b"hello");
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod vsock;

use std::ffi::c_int;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The largest SDU (bytes).
pub const MAX_SDU: usize = 65535;
/// The longest application name (bytes).
pub const NAME_MAX: usize = 64;

const IOC_MAGIC: u32 = 0xB9;
const ALLOC_LEN: usize = 2 * NAME_MAX + 8;

const fn iow(nr: u32, size: usize) -> u64 {
    ((1u32 << 30) | ((size as u32) << 16) | (IOC_MAGIC << 8) | nr) as u64
}

/// `VMPI_IOC_BIND_RAW`.
pub const IOC_BIND_RAW: u64 = iow(1, 4);
/// `VMPI_IOC_REGISTER`.
pub const IOC_REGISTER: u64 = iow(2, NAME_MAX);
/// `VMPI_IOC_ACCEPT`.
pub const IOC_ACCEPT: u64 = iow(3, NAME_MAX);
/// `VMPI_IOC_ALLOC`.
pub const IOC_ALLOC: u64 = iow(4, ALLOC_LEN);

extern "C" {
    fn ioctl(fd: c_int, request: std::ffi::c_ulong, ...) -> c_int;
}

fn ioctl_ptr(f: &File, request: u64, arg: *const u8) -> io::Result<i32> {
    // SAFETY: `arg` points to a buffer of the size the request encodes,
    // valid for the call; the kernel only reads it (`_IOW`).
    let r = unsafe { ioctl(f.as_raw_fd(), request as std::ffi::c_ulong, arg) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// An application name as `struct vmpi_name` wants it: 1 to 64 printable
/// ASCII bytes, NUL-padded (empty allowed where `allow_empty`).
pub fn encode_name(name: &str, allow_empty: bool) -> io::Result<[u8; NAME_MAX]> {
    let b = name.as_bytes();
    let ok = b.len() <= NAME_MAX
        && (allow_empty || !b.is_empty())
        && b.iter().all(|c| (0x21..=0x7e).contains(c));
    if !ok {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad VMPI application name {name:?}"),
        ));
    }
    let mut out = [0u8; NAME_MAX];
    out[..b.len()].copy_from_slice(b);
    Ok(out)
}

/// `struct vmpi_alloc`.
pub fn encode_alloc(
    dst: &str,
    src: Option<&str>,
    timeout: Duration,
) -> io::Result<[u8; ALLOC_LEN]> {
    let ms = u32::try_from(timeout.as_millis())
        .ok()
        .filter(|&ms| ms <= 60_000)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "timeout above 60 s"))?;
    let mut out = [0u8; ALLOC_LEN];
    out[..NAME_MAX].copy_from_slice(&encode_name(dst, false)?);
    out[NAME_MAX..2 * NAME_MAX].copy_from_slice(&encode_name(src.unwrap_or(""), true)?);
    out[2 * NAME_MAX..2 * NAME_MAX + 4].copy_from_slice(&ms.to_ne_bytes());
    Ok(out)
}

/// One side of a VMPI device: `/dev/vmpiN` and its sysfs directory.
#[derive(Debug, Clone)]
pub struct Device {
    /// `/dev/vmpiN`.
    pub path: PathBuf,
    /// `host` or `guest`.
    pub role: String,
    /// The vDPA device (host side) or virtio device (guest side).
    pub transport: String,
}

fn sysfs(dev: &str, attr: &str) -> io::Result<String> {
    Ok(
        std::fs::read_to_string(format!("/sys/class/misc/{dev}/{attr}"))?
            .trim()
            .to_string(),
    )
}

impl Device {
    /// Every VMPI device side of this kernel, by id.
    pub fn list() -> io::Result<Vec<Device>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir("/sys/class/misc")? {
            let name = e?.file_name().to_string_lossy().into_owned();
            if !name
                .strip_prefix("vmpi")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
            {
                continue;
            }
            let (Ok(role), Ok(transport)) = (sysfs(&name, "role"), sysfs(&name, "transport"))
            else {
                continue;
            };
            out.push(Device {
                path: PathBuf::from(format!("/dev/{name}")),
                role,
                transport,
            });
        }
        out.sort_by_key(|d| d.id());
        Ok(out)
    }

    /// The first device side of `role` (`host`/`guest`) whose transport is
    /// `transport` (any if `None`).
    pub fn find(role: &str, transport: Option<&str>) -> io::Result<Device> {
        Self::list()?
            .into_iter()
            .find(|d| d.role == role && transport.is_none_or(|t| t == d.transport))
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("no VMPI {role} device"))
            })
    }

    /// The device at `path` (`/dev/vmpiN`).
    pub fn at(path: &Path) -> io::Result<Device> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        Ok(Device {
            path: path.to_path_buf(),
            role: sysfs(name, "role")?,
            transport: sysfs(name, "transport")?,
        })
    }

    /// N of `/dev/vmpiN`.
    pub fn id(&self) -> u32 {
        let name = self
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        name.trim_start_matches("vmpi").parse().unwrap_or(u32::MAX)
    }

    /// A sysfs attribute of the device (`docs/vmpi-sysfs.md`).
    pub fn attr(&self, attr: &str) -> io::Result<String> {
        sysfs(
            self.path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default(),
            attr,
        )
    }

    fn open(&self) -> io::Result<File> {
        OpenOptions::new().read(true).write(true).open(&self.path)
    }

    /// Binds raw channel `channel` (no allocation, no credit).
    pub fn bind_raw(&self, channel: u16) -> io::Result<Flow> {
        let f = self.open()?;
        let arg = u32::from(channel).to_ne_bytes();
        ioctl_ptr(&f, IOC_BIND_RAW, arg.as_ptr())?;
        Ok(Flow { file: f, channel })
    }

    /// Registers application `name` on this side.
    pub fn register(&self, name: &str) -> io::Result<Registration> {
        let f = self.open()?;
        let arg = encode_name(name, false)?;
        ioctl_ptr(&f, IOC_REGISTER, arg.as_ptr())?;
        Ok(Registration {
            file: f,
            dev: self.clone(),
            name: name.to_string(),
        })
    }

    /// Allocates a flow to application `dst` of the peer; blocks until the
    /// peer answers or `timeout` (at most 60 s).
    pub fn alloc(&self, dst: &str, src: Option<&str>, timeout: Duration) -> io::Result<Flow> {
        let f = self.open()?;
        let arg = encode_alloc(dst, src, timeout)?;
        let channel = ioctl_ptr(&f, IOC_ALLOC, arg.as_ptr())?;
        Ok(Flow {
            file: f,
            channel: channel as u16,
        })
    }
}

/// A registered application name; closing it unregisters the name.
#[derive(Debug)]
pub struct Registration {
    file: File,
    dev: Device,
    name: String,
}

impl Registration {
    /// Accepts the oldest allocation waiting for the name (blocks until one
    /// waits).
    pub fn accept(&self) -> io::Result<Flow> {
        let f = self.dev.open()?;
        let arg = encode_name(&self.name, false)?;
        let channel = ioctl_ptr(&f, IOC_ACCEPT, arg.as_ptr())?;
        Ok(Flow {
            file: f,
            channel: channel as u16,
        })
    }

    /// The registration's file (poll it for `POLLIN`: an allocation waits).
    pub fn file(&self) -> &File {
        &self.file
    }
}

/// A flow or raw channel: one SDU per `send` and `recv`.
#[derive(Debug)]
pub struct Flow {
    file: File,
    channel: u16,
}

impl Flow {
    /// Its channel.
    pub fn channel(&self) -> u16 {
        self.channel
    }

    /// Sends one SDU (blocks while the send queue or the credit window is
    /// full).
    pub fn send(&self, sdu: &[u8]) -> io::Result<()> {
        let n = (&self.file).write(sdu)?;
        if n != sdu.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short SDU write"));
        }
        Ok(())
    }

    /// Receives one SDU into `buf` (at least [`MAX_SDU`] bytes to take
    /// any); returns its length.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.file).read(buf)
    }

    /// The flow's file (poll, `O_NONBLOCK` through `fcntl`).
    pub fn file(&self) -> &File {
        &self.file
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_uapi_header() {
        // _IOW(0xB9, nr, size) as include/uapi/rvio/vmpi.h defines them.
        assert_eq!(IOC_BIND_RAW, 0x4004_b901);
        assert_eq!(IOC_REGISTER, 0x4040_b902);
        assert_eq!(IOC_ACCEPT, 0x4040_b903);
        assert_eq!(IOC_ALLOC, 0x4088_b904);
    }

    #[test]
    fn names_are_checked_and_padded() {
        let n = encode_name("srv", false).unwrap();
        assert_eq!(&n[..4], b"srv\0");
        assert!(n[3..].iter().all(|&c| c == 0));
        assert!(encode_name("", false).is_err());
        assert!(encode_name("", true).is_ok());
        assert!(encode_name("a b", false).is_err());
        assert!(encode_name(&"x".repeat(64), false).is_ok());
        assert!(encode_name(&"x".repeat(65), false).is_err());
        assert!(encode_name("é", false).is_err());
    }

    #[test]
    fn alloc_argument_layout() {
        let a = encode_alloc("dst", Some("src"), Duration::from_millis(1234)).unwrap();
        assert_eq!(&a[..3], b"dst");
        assert_eq!(&a[64..67], b"src");
        assert_eq!(u32::from_ne_bytes(a[128..132].try_into().unwrap()), 1234);
        assert_eq!(&a[132..], &[0, 0, 0, 0]);
        assert!(encode_alloc("dst", None, Duration::from_secs(61)).is_err());
    }
}
