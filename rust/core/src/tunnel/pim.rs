//! PIM Register messages (RFC 7761, IP protocol 103, PIMv2 type 1): the 4-byte PIM header, the
//! border and null-register flags, then the multicast packet the first-hop router encapsulated,
//! which its version nibble names. Other PIM messages carry no packet.
use super::{ip_by_version, Bytes, Decap, Inner, Kind, Step};

/// Version 2, type 1 (Register).
const REGISTER: u8 = 0x21;

pub fn register(b: Bytes) -> Step {
    let Some(h) = b.header("PIM", 1)? else { return Ok(None) };
    if h[0] != REGISTER || b.header("PIM Register", 9)?.is_none() {
        return Ok(None);
    }
    let rest = b.skip(8);
    let Some(ethertype) = ip_by_version(rest) else { return Ok(None) };
    Ok(Some(Decap { kind: Kind::Pim, id: None, inner: Inner { ethertype, bytes: rest }, vlan: None }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DecodeError;
    use crate::wire::ETHERTYPE_IPV4;

    #[test]
    fn registers_only() {
        let h = [0x21, 0, 0xde, 0xff, 0x80, 0, 0, 0, 0x45];
        let d = decode_ok(&h);
        assert_eq!((d.kind, d.id, d.inner.ethertype, d.inner.bytes.data), (Kind::Pim, None, ETHERTYPE_IPV4, &[0x45u8][..]));
        assert_eq!(register(Bytes::new(&h[..5], 40)).unwrap_err(), DecodeError::Truncated { layer: "PIM Register", need: 9, have: 5 });
        let hello = [0x20, 0, 0, 0, 0, 1, 0, 2];
        assert!(register(Bytes::new(&hello[..3], 40)).unwrap().is_none());
        assert!(register(Bytes::new(&[0x21, 0, 0, 0, 0, 0, 0, 0, 0x70], 9)).unwrap().is_none());
    }

    fn decode_ok(h: &[u8]) -> Decap<'_> {
        register(Bytes::new(h, h.len())).unwrap().unwrap()
    }
}
