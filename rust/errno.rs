// SPDX-License-Identifier: GPL-2.0

//! Error codes the 6.12 `kernel::error::code` lacks, from the C headers
//! (through the module-local bindings). Include with `#[path =
//! ".../rust/errno.rs"] mod errno;` and use as `errno::emsgsize()`.

use crate::bindings;
use kernel::error::Error;

fn code(e: u32) -> Error {
    Error::from_errno(-(e as i32))
}

/// `EMSGSIZE`: message too long.
pub fn emsgsize() -> Error {
    code(bindings::EMSGSIZE)
}

/// `ENOTCONN`: not connected (not bound).
pub fn enotconn() -> Error {
    code(bindings::ENOTCONN)
}

/// `ECONNRESET`: the peer reset the flow.
pub fn econnreset() -> Error {
    code(bindings::ECONNRESET)
}

/// `ETIMEDOUT`: no answer in time.
pub fn etimedout() -> Error {
    code(bindings::ETIMEDOUT)
}

/// `ECONNREFUSED`: the peer refused.
pub fn econnrefused() -> Error {
    code(bindings::ECONNREFUSED)
}

/// `EADDRINUSE`: the name is taken.
pub fn eaddrinuse() -> Error {
    code(bindings::EADDRINUSE)
}

/// `EISCONN`: already connected.
pub fn eisconn() -> Error {
    code(bindings::EISCONN)
}

/// `EOPNOTSUPP`: operation not supported.
pub fn eopnotsupp() -> Error {
    code(bindings::EOPNOTSUPP)
}

/// `ENETDOWN`: the interface is down.
pub fn enetdown() -> Error {
    code(bindings::ENETDOWN)
}

/// `ENOBUFS`: a queue is full.
pub fn enobufs() -> Error {
    code(bindings::ENOBUFS)
}
