//! The Network Service Header (RFC 8300, ethertype 0x894F): a base header whose length counts
//! the context headers too, the service path (its id is the tunnel's), then what the next
//! protocol field names.
use super::{Bytes, Decap, Inner, Kind, Step, ETHERNET};
use crate::wire::{u32_at, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_NSH};

/// The ethertype of a next protocol of NSH (and of VXLAN-GPE, which shares the registry), for
/// those decoded further: IPv4, IPv6, Ethernet, NSH.
pub fn next_protocol(protocol: u8) -> Option<u16> {
    match protocol {
        1 => Some(ETHERTYPE_IPV4),
        2 => Some(ETHERTYPE_IPV6),
        3 => Some(ETHERNET),
        4 => Some(ETHERTYPE_NSH),
        _ => None,
    }
}

pub fn decode(b: Bytes) -> Step {
    let Some(h) = b.header("NSH", 8)? else { return Ok(None) };
    let len = usize::from(h[1] & 0x3f) * 4;
    let Some(ethertype) = next_protocol(h[3]) else { return Ok(None) };
    if len < 8 || b.header("NSH", len)?.is_none() {
        return Ok(None);
    }
    let spi = u32_at(h, 4) >> 8;
    Ok(Some(Decap { kind: Kind::Nsh, id: Some(spi), inner: Inner { ethertype, bytes: b.skip(len) }, vlan: None }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DecodeError;

    #[test]
    fn service_path_and_context_headers() {
        // MD type 1: length 6 words (16 bytes of context), next protocol IPv4.
        let mut h = vec![0x0f, 0xc6, 0x01, 0x01, 0x00, 0x01, 0x23, 0xfe];
        h.extend_from_slice(&[0; 16]);
        h.push(0x45);
        let d = decode(Bytes::new(&h, h.len())).unwrap().unwrap();
        assert_eq!((d.kind, d.id, d.inner.ethertype, d.inner.bytes.data), (Kind::Nsh, Some(0x123), ETHERTYPE_IPV4, &[0x45u8][..]));
        assert_eq!(decode(Bytes::new(&h[..20], 40)).unwrap_err(), DecodeError::Truncated { layer: "NSH", need: 24, have: 20 });
        assert_eq!(decode(Bytes::new(&h[..5], 40)).unwrap_err(), DecodeError::Truncated { layer: "NSH", need: 8, have: 5 });
        // MD type 2 without metadata, Ethernet next.
        let h = [0x0f, 0xc2, 0x02, 0x03, 0, 0, 7, 0xff, 0xee];
        let d = decode(Bytes::new(&h, h.len())).unwrap().unwrap();
        assert_eq!((d.id, d.inner.ethertype, d.inner.bytes.data), (Some(7), ETHERNET, &[0xeeu8][..]));
    }

    #[test]
    fn unknown_next_protocol_or_short_length_is_not_opened() {
        assert!(decode(Bytes::new(&[0x0f, 0xc2, 0x02, 0x05, 0, 0, 7, 0xff, 0xee], 9)).unwrap().is_none());
        assert!(decode(Bytes::new(&[0x0f, 0xc1, 0x02, 0x01, 0, 0, 7, 0xff, 0x45], 9)).unwrap().is_none());
    }
}
