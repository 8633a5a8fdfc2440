//! Netlink attributes (`struct nlattr`): a writer that builds them, nested, into a
//! message, and a reader that walks them back.
//!
//! An attribute is a 4-byte header — length (header included) and type, both in host
//! byte order — followed by its value, padded to 4 bytes. nf_tables puts integers in
//! attribute values in network byte order, so the integer helpers here are
//! big-endian; the few host-order values (a socket's uid) are written as bytes by
//! their callers.

use super::CaptureError;

/// Marks an attribute whose value is more attributes (`NLA_F_NESTED`), as nft sets it.
const NESTED: u16 = 0x8000;
/// The bits of an attribute's type that are flags, not the type.
const FLAGS: u16 = 0xc000;
/// An attribute header's size.
const HEADER: usize = 4;

/// Rounds a length up to netlink's 4-byte alignment.
pub(super) const fn align(len: usize) -> usize {
    (len + 3) & !3
}

// === impl Writer ===

/// Appends attributes to a message under construction.
#[derive(Debug)]
pub(super) struct Writer<'a> {
    buf: &'a mut Vec<u8>,
}

/// Where a nested attribute started, to be closed with [`Writer::end`].
#[derive(Debug, Clone, Copy)]
#[must_use = "close the nest with Writer::end"]
pub(super) struct Nest(usize);

impl<'a> Writer<'a> {
    /// Writes attributes at the end of `buf`.
    pub(super) fn new(buf: &'a mut Vec<u8>) -> Self {
        Self { buf }
    }

    /// An attribute holding `value` as it is.
    pub(super) fn bytes(&mut self, kind: u16, value: &[u8]) {
        let len = u16::try_from(HEADER + value.len()).expect("a netlink attribute under 64 KiB");
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.pad();
    }

    /// A NUL-terminated string (`NLA_STRING`, `NLA_NUL_STRING`).
    pub(super) fn string(&mut self, kind: u16, value: &str) {
        let mut bytes = Vec::with_capacity(value.len() + 1);
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(0);
        self.bytes(kind, &bytes);
    }

    /// A 32-bit integer in network byte order, as nf_tables reads `NLA_U32`.
    pub(super) fn u32(&mut self, kind: u16, value: u32) {
        self.bytes(kind, &value.to_be_bytes());
    }

    /// A 64-bit integer in network byte order.
    pub(super) fn u64(&mut self, kind: u16, value: u64) {
        self.bytes(kind, &value.to_be_bytes());
    }

    /// Opens a nested attribute; what is written until [`Writer::end`] goes inside.
    pub(super) fn nest(&mut self, kind: u16) -> Nest {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&(kind | NESTED).to_ne_bytes());
        Nest(start)
    }

    /// Closes a nested attribute: its length now covers what was written inside.
    pub(super) fn end(&mut self, nest: Nest) {
        let len = u16::try_from(self.buf.len() - nest.0).expect("a netlink attribute under 64 KiB");
        self.buf[nest.0..nest.0 + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn pad(&mut self) {
        self.buf.resize(align(self.buf.len()), 0);
    }
}

// === impl Attrs ===

/// The attributes in a buffer, as `(type without flags, value)`.
#[derive(Debug, Clone)]
pub(super) struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Attrs<'a> {
    /// Reads the attributes that fill `buf`.
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Self { rest: buf }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<(u16, &'a [u8]), CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.len() < HEADER {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([self.rest[0], self.rest[1]]));
        let kind = u16::from_ne_bytes([self.rest[2], self.rest[3]]) & !FLAGS;
        if len < HEADER || len > self.rest.len() {
            self.rest = &[];
            return Some(Err(malformed("an attribute runs past its message")));
        }
        let value = &self.rest[HEADER..len];
        self.rest = self.rest.get(align(len)..).unwrap_or_default();
        Some(Ok((kind, value)))
    }
}

/// A big-endian 32-bit value.
pub(super) fn be_u32(value: &[u8]) -> Result<u32, CaptureError> {
    value
        .try_into()
        .map(u32::from_be_bytes)
        .map_err(|_| malformed("a 32-bit attribute has the wrong size"))
}

/// A big-endian 64-bit value.
pub(super) fn be_u64(value: &[u8]) -> Result<u64, CaptureError> {
    value
        .try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| malformed("a 64-bit attribute has the wrong size"))
}

/// A string attribute, without its terminating NUL.
pub(super) fn string(value: &[u8]) -> String {
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    String::from_utf8_lossy(&value[..end]).into_owned()
}

/// The error for an answer that does not parse.
pub(super) fn malformed(what: &str) -> CaptureError {
    CaptureError::Malformed(what.to_owned())
}
