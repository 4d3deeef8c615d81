//! IPv6 (RFC 8200) and its extension-header chain.
use std::net::{IpAddr, Ipv6Addr};

use super::{ports, quoted_seq, AtomicFragment, Fragment, IpPacket, Quoted};
use crate::error::DecodeError;

use crate::wire::{
    PROTO_AH as AH, PROTO_DEST_OPTS as DEST_OPTS, PROTO_FRAGMENT as FRAGMENT, PROTO_HIP as HIP, PROTO_HOP_BY_HOP as HOP_BY_HOP,
    PROTO_MOBILITY as MOBILITY, PROTO_ROUTING as ROUTING, PROTO_SHIM6 as SHIM6,
};

/// Extension headers walked in one chain by default. Real captures (an IDS project's test
/// corpus) hold chains of 137 and 175 empty fragment headers that tshark decodes (it stops near
/// 495, at its limit of protocol layers); a header is at least 8 bytes, so the walk is bounded by
/// the packet's length anyway and this only caps the work a jumbogram of headers can ask for.
pub const DEFAULT_MAX_EXT_HEADERS: usize = 256;

fn addr(b: &[u8], at: usize) -> Option<IpAddr> {
    let w: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
    Some(IpAddr::V6(Ipv6Addr::from(w)))
}

/// Where an extension-header walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chain {
    /// The upper-layer protocol (or the header after a fragment header).
    pub proto: u8,
    /// Bytes of extension headers walked.
    pub len: usize,
    pub fragment: Option<Fragment>,
    /// The first atomic fragment header walked through.
    pub atomic_fragment: Option<AtomicFragment>,
}

/// Walks extension headers from `next` over `data`, stopping at an upper-layer protocol or after
/// a (non-atomic) fragment header: what follows it is only readable once reassembled.
pub fn walk(mut next: u8, data: &[u8], max_headers: usize) -> Result<Chain, DecodeError> {
    let mut at = 0usize;
    let mut seen = 0usize;
    let mut atomic_fragment = None;
    loop {
        let len = match next {
            HOP_BY_HOP | ROUTING | DEST_OPTS | MOBILITY | HIP | SHIM6 => {
                let hdr = data.get(at..at + 2).ok_or(DecodeError::BadExtHeader(next))?;
                (usize::from(hdr[1]) + 1) * 8
            }
            AH => {
                let hdr = data.get(at..at + 2).ok_or(DecodeError::BadExtHeader(next))?;
                (usize::from(hdr[1]) + 2) * 4
            }
            FRAGMENT => 8,
            _ => return Ok(Chain { proto: next, len: at, fragment: None, atomic_fragment }),
        };
        seen += 1;
        if seen > max_headers {
            return Err(DecodeError::ExtChainTooLong(max_headers));
        }
        let hdr = data.get(at..at + len).ok_or(DecodeError::BadExtHeader(next))?;
        if next == FRAGMENT {
            let field = u16::from_be_bytes([hdr[2], hdr[3]]);
            let fragment = Fragment {
                id: u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]),
                offset: u32::from(field & 0xfff8),
                more: field & 1 != 0,
            };
            if fragment.offset != 0 || fragment.more {
                return Ok(Chain { proto: hdr[0], len: at + len, fragment: Some(fragment), atomic_fragment });
            }
            let id = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
            atomic_fragment.get_or_insert(AtomicFragment { id, next: hdr[0], end: at + len });
        }
        next = hdr[0];
        at += len;
    }
}

pub fn decode(data: &[u8], wire_len: usize, max_ext_headers: usize) -> Result<IpPacket<'_>, DecodeError> {
    if data.len() < 40 {
        return Err(DecodeError::Truncated { layer: "IPv6", need: 40, have: data.len() });
    }
    let version = data[0] >> 4;
    if version != 6 {
        return Err(DecodeError::BadIpVersion(version));
    }
    let declared = usize::from(u16::from_be_bytes([data[4], data[5]]));
    // Payload length 0 means a jumbogram (or offload): the frame's length stands.
    let on_wire = wire_len.saturating_sub(40);
    let payload_total = if declared == 0 { on_wire } else { declared.min(on_wire) };
    let body = data.get(40..).unwrap_or_default();
    let body = body.get(..payload_total).unwrap_or(body);
    let chain = walk(data[6], body, max_ext_headers)?;
    let (Some(src), Some(dst)) = (addr(data, 8), addr(data, 24)) else {
        return Err(DecodeError::Truncated { layer: "IPv6", need: 40, have: data.len() });
    };
    Ok(IpPacket {
        version: 6,
        src,
        dst,
        ttl: data[7],
        tos: data[0] << 4 | data[1] >> 4,
        ident: 0,
        df: false,
        proto: chain.proto,
        header_len: 40 + chain.len,
        payload: body.get(chain.len..).unwrap_or_default(),
        payload_len: payload_total.saturating_sub(chain.len),
        fragment: chain.fragment,
        atomic_fragment: chain.atomic_fragment.map(|a| AtomicFragment { end: 40 + a.end, ..a }),
    })
}

pub fn quoted(data: &[u8]) -> Option<Quoted> {
    let mut q = Quoted { src: addr(data, 8), dst: addr(data, 24), ..Default::default() };
    let next = *data.get(6)?;
    let body = data.get(40..).unwrap_or_default();
    match walk(next, body, 8) {
        Ok(chain) => {
            q.proto = Some(chain.proto);
            if chain.fragment.is_none_or(|f| f.offset == 0) {
                let transport = body.get(chain.len..).unwrap_or_default();
                (q.sport, q.dport) = ports(chain.proto, transport);
                q.seq = quoted_seq(chain.proto, transport);
            }
        }
        Err(_) => q.proto = Some(next),
    }
    Some(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_stops_after_fragment_header() {
        // hop-by-hop (8 bytes) -> fragment (offset 8, M=1) -> ICMPv6
        let mut body = vec![FRAGMENT, 0, 0, 0, 0, 0, 0, 0];
        body.extend_from_slice(&[58, 0, 0, 9, 0, 0, 0, 7]);
        let c = walk(HOP_BY_HOP, &body, 8).unwrap();
        assert_eq!(c.proto, 58);
        assert_eq!(c.len, 16);
        assert_eq!(c.fragment, Some(Fragment { id: 7, offset: 8, more: true }));
        assert!(matches!(walk(HOP_BY_HOP, &body, 1), Err(DecodeError::ExtChainTooLong(1))));
    }

    #[test]
    fn atomic_fragment_is_walked_through() {
        let body = [58, 0, 0, 0, 0, 0, 0, 1, 128];
        let c = walk(FRAGMENT, &body, 8).unwrap();
        assert_eq!((c.proto, c.len, c.fragment), (58, 8, None));
        assert_eq!(c.atomic_fragment, Some(AtomicFragment { id: 1, next: 58, end: 8 }));
    }
}
