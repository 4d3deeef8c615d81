//! IPv6 over UDP/IPv4 transition tunnels: Teredo (RFC 4380, with its authentication and origin
//! indications) and AYIYA ("anything in anything", as SixXS used it).
use super::{Bytes, Decap, Inner, Kind, Step};
use crate::wire::{u16_at, ETHERTYPE_IPV4, ETHERTYPE_IPV6};

pub fn teredo(b: Bytes) -> Step {
    let mut at = 0;
    let Some(h) = b.header("Teredo", 2)? else { return Ok(None) };
    if u16_at(h, 0) == 1 {
        // Authentication: client id and value lengths, then both, an 8-byte nonce, a confirmation.
        let Some(h) = b.header("Teredo", 4)? else { return Ok(None) };
        at = 13 + usize::from(h[2]) + usize::from(h[3]);
    }
    if let Some(h) = b.header("Teredo", at + 2)? {
        if u16_at(h, at) == 0 {
            at += 8; // origin indication: obfuscated port and address
        }
    }
    if b.header("Teredo", at + 1)?.is_none() {
        return Ok(None);
    }
    let rest = b.skip(at);
    // Wireshark hands the rest to IPv6; what is not IPv6 stays data.
    if rest.data.first().map(|v| v >> 4) != Some(6) {
        return Ok(None);
    }
    Ok(Some(Decap { kind: Kind::Teredo, id: None, inner: Inner { ethertype: ETHERTYPE_IPV6, bytes: rest }, vlan: None }))
}

pub fn ayiya(b: Bytes) -> Step {
    const FORWARD: u8 = 1;
    let Some(h) = b.header("AYIYA", 8)? else { return Ok(None) };
    let identity = 1usize << (h[0] >> 4);
    let signature = usize::from(h[1] >> 4) * 4;
    let len = 8 + identity + signature;
    if b.header("AYIYA", len)?.is_none() || h[2] & 0x0f != FORWARD {
        return Ok(None);
    }
    let ethertype = match h[3] {
        4 => ETHERTYPE_IPV4,
        41 => ETHERTYPE_IPV6,
        _ => return Ok(None),
    };
    Ok(Some(Decap { kind: Kind::Ayiya, id: None, inner: Inner { ethertype, bytes: b.skip(len) }, vlan: None }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DecodeError;

    #[test]
    fn teredo_indications() {
        // Authentication (id 1 byte, no value), then origin indication, then IPv6.
        let mut h = vec![0, 1, 1, 0, 0xaa];
        h.extend_from_slice(&[0; 9]);
        h.extend_from_slice(&[0, 0, 0xf1, 0x2a, 0x3f, 0xff, 0xfd, 0xfe, 0x60]);
        let d = teredo(Bytes::new(&h, h.len())).unwrap().unwrap();
        assert_eq!((d.kind, d.inner.ethertype, d.inner.bytes.data), (Kind::Teredo, ETHERTYPE_IPV6, &[0x60u8][..]));
        assert_eq!(teredo(Bytes::new(&h[..10], 60)).unwrap_err(), DecodeError::Truncated { layer: "Teredo", need: 16, have: 10 });
        assert!(teredo(Bytes::new(&[0x45, 0], 2)).unwrap().is_none());
    }

    #[test]
    fn ayiya_forwards_ip_only() {
        let mut h = vec![0x41, 0x52, 0x11, 41, 0, 0, 0, 0];
        h.extend_from_slice(&[0; 36]);
        h.push(0x60);
        let d = ayiya(Bytes::new(&h, h.len())).unwrap().unwrap();
        assert_eq!((d.kind, d.inner.ethertype, d.inner.bytes.data), (Kind::Ayiya, ETHERTYPE_IPV6, &[0x60u8][..]));
        h[2] = 0x12; // echo request: nothing forwarded
        assert!(ayiya(Bytes::new(&h, h.len())).unwrap().is_none());
    }
}
