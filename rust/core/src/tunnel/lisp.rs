//! The LISP data plane (RFC 9300, UDP 4341): an 8-byte header (flags, nonce or map versions,
//! then the instance id and locator-status bits, or locator-status bits alone), then an IP
//! packet, which its version nibble names.
use super::{ip_by_version, Bytes, Decap, Inner, Kind, Step};
use crate::wire::u32_at;

/// The I bit: the second word starts with a 24-bit instance id.
const INSTANCE: u8 = 0x08;

pub fn decode(b: Bytes) -> Step {
    let Some(h) = b.header("LISP", 8)? else { return Ok(None) };
    if b.header("LISP", 9)?.is_none() {
        return Ok(None);
    }
    let rest = b.skip(8);
    // Wireshark hands IPv4 and IPv6 on and leaves anything else as data.
    let Some(ethertype) = ip_by_version(rest) else { return Ok(None) };
    let id = (h[0] & INSTANCE != 0).then(|| u32_at(h, 4) >> 8);
    Ok(Some(Decap { kind: Kind::Lisp, id, inner: Inner { ethertype, bytes: rest }, vlan: None }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DecodeError;
    use crate::wire::{ETHERTYPE_IPV4, ETHERTYPE_IPV6};

    #[test]
    fn instance_id_when_the_i_bit_says_so() {
        let h = [0x88, 0, 0, 7, 0, 0x12, 0x34, 0, 0x45];
        let d = decode(Bytes::new(&h, h.len())).unwrap().unwrap();
        assert_eq!((d.kind, d.id, d.inner.ethertype, d.inner.bytes.data), (Kind::Lisp, Some(0x1234), ETHERTYPE_IPV4, &[0x45u8][..]));
        let h = [0x00, 0, 0, 0, 0, 0, 0, 3, 0x60];
        let d = decode(Bytes::new(&h, h.len())).unwrap().unwrap();
        assert_eq!((d.id, d.inner.ethertype), (None, ETHERTYPE_IPV6));
        assert!(decode(Bytes::new(&[0x08, 0, 0, 0, 0, 0, 5, 0, 0x02], 9)).unwrap().is_none());
        assert_eq!(decode(Bytes::new(&h[..8], 40)).unwrap_err(), DecodeError::Truncated { layer: "LISP", need: 9, have: 8 });
        assert!(decode(Bytes::new(&h[..8], 8)).unwrap().is_none());
    }
}
