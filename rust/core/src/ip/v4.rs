//! IPv4 (RFC 791).
use std::net::{IpAddr, Ipv4Addr};

use super::{ports, quoted_seq, Fragment, IpPacket, Quoted};
use crate::error::DecodeError;

fn addr(b: &[u8], at: usize) -> Option<IpAddr> {
    let w: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(IpAddr::V4(Ipv4Addr::from(w)))
}

pub fn decode(data: &[u8], wire_len: usize) -> Result<IpPacket<'_>, DecodeError> {
    if data.len() < 20 {
        return Err(DecodeError::Truncated { layer: "IPv4", need: 20, have: data.len() });
    }
    let version = data[0] >> 4;
    if version != 4 {
        return Err(DecodeError::BadIpVersion(version));
    }
    let header_len = usize::from(data[0] & 0x0f) * 4;
    if header_len < 20 {
        return Err(DecodeError::BadIhl(header_len));
    }
    if data.len() < header_len {
        return Err(DecodeError::Truncated { layer: "IPv4 options", need: header_len, have: data.len() });
    }
    let declared = usize::from(u16::from_be_bytes([data[2], data[3]]));
    // A zero total length comes from TCP segmentation offload: the frame's length stands.
    let total = if declared == 0 { wire_len } else { declared };
    if total < header_len {
        return Err(DecodeError::BadTotalLength { total, header: header_len });
    }
    let total = total.min(wire_len.max(header_len));
    let flags_offset = u16::from_be_bytes([data[6], data[7]]);
    let more = flags_offset & 0x2000 != 0;
    let offset = u32::from(flags_offset & 0x1fff) * 8;
    let fragment = (more || offset > 0).then(|| Fragment {
        id: u32::from(u16::from_be_bytes([data[4], data[5]])),
        offset,
        more,
    });
    let (Some(src), Some(dst)) = (addr(data, 12), addr(data, 16)) else {
        return Err(DecodeError::Truncated { layer: "IPv4", need: 20, have: data.len() });
    };
    Ok(IpPacket {
        version: 4,
        src,
        dst,
        ttl: data[8],
        tos: data[1],
        ident: u16::from_be_bytes([data[4], data[5]]),
        df: flags_offset & 0x4000 != 0,
        proto: data[9],
        header_len,
        payload: data.get(header_len..total.min(data.len())).unwrap_or_default(),
        payload_len: total - header_len,
        fragment,
        atomic_fragment: None,
    })
}

pub fn quoted(data: &[u8]) -> Option<Quoted> {
    let header_len = usize::from(*data.first()? & 0x0f) * 4;
    let proto = data.get(9).copied();
    let first_fragment = data.get(6..8).is_some_and(|f| u16::from_be_bytes([f[0], f[1]]) & 0x1fff == 0);
    let (sport, dport, seq) = match (proto, data.get(header_len.max(20)..)) {
        (Some(p), Some(t)) if first_fragment => {
            let (sport, dport) = ports(p, t);
            (sport, dport, quoted_seq(p, t))
        }
        _ => (None, None, None),
    };
    Some(Quoted { src: addr(data, 12), dst: addr(data, 16), proto, sport, dport, seq })
}
