//! MPLS label stacks (RFC 3032) and what follows the bottom label, decided as Wireshark does by
//! the first nibble: IPv4, IPv6, an associated channel (RFC 4385/5586) or an Ethernet pseudo-wire
//! with or without its control word.
use super::{Bytes, Decap, Inner, Kind, Step, ETHERNET};
use crate::wire::{u16_at, u32_at, ETHERTYPE_IPV4, ETHERTYPE_IPV6};

/// The Generic Associated Channel label (RFC 5586).
const GAL: u32 = 13;

pub fn decode(b: Bytes) -> Step {
    let mut at = 0;
    let label = loop {
        let Some(h) = b.header("MPLS", at + 4)? else { return Ok(None) };
        let entry = u32_at(h, at);
        at += 4;
        if entry & 0x100 != 0 {
            break entry >> 12;
        }
    };
    let rest = b.skip(at);
    let mpls = |ethertype, bytes| Ok(Some(Decap { kind: Kind::Mpls, id: Some(label), inner: Inner { ethertype, bytes }, vlan: None }));
    let Some(first) = rest.header("MPLS", 1)? else { return Ok(None) };
    match (label, first[0] >> 4) {
        (GAL, _) | (_, 1) => {
            // Associated channel header: its channel type is a PPP protocol number.
            let Some(h) = rest.header("MPLS", 4)? else { return Ok(None) };
            match u16_at(h, 2) {
                0x0021 => mpls(ETHERTYPE_IPV4, rest.skip(4)),
                0x0057 => mpls(ETHERTYPE_IPV6, rest.skip(4)),
                _ => Ok(None),
            }
        }
        (_, 4) => mpls(ETHERTYPE_IPV4, rest),
        (_, 6) => mpls(ETHERTYPE_IPV6, rest),
        (_, 0) => {
            // Wireshark guesses the control word from the addresses' vendor codes; we guess it
            // from which reading gives a frame of a known ethertype, the control word winning ties.
            let plain = known_ethertype(u16_at(rest.data, 12));
            let after_cw = known_ethertype(u16_at(rest.data, 16));
            mpls(ETHERNET, if plain && !after_cw { rest } else { rest.skip(4) })
        }
        _ => Ok(None),
    }
}

fn known_ethertype(ethertype: u16) -> bool {
    matches!(ethertype, 0x0800 | 0x0806 | 0x86dd | 0x8100 | 0x88a8 | 0x9100 | 0x8847 | 0x8848 | 0x8863 | 0x8864 | 0x88e5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DecodeError;

    #[test]
    fn stack_to_bottom_label() {
        let h = [0, 0x06, 0x40, 0x40, 0, 0x0c, 0x81, 0x40, 0x45];
        let d = decode(Bytes::new(&h, h.len())).unwrap().unwrap();
        assert_eq!((d.kind, d.id, d.inner.ethertype, d.inner.bytes.data), (Kind::Mpls, Some(200), ETHERTYPE_IPV4, &[0x45u8][..]));
        assert_eq!(decode(Bytes::new(&h[..6], 20)).unwrap_err(), DecodeError::Truncated { layer: "MPLS", need: 8, have: 6 });
        let h = [0, 0x06, 0x41, 0x40, 0x70];
        assert!(decode(Bytes::new(&h, h.len())).unwrap().is_none());
    }

    #[test]
    fn pseudowire_control_word() {
        let mut with_cw = vec![0, 0x06, 0x41, 0x40, 0, 0, 0, 0];
        with_cw.extend_from_slice(&[0xcc; 12]);
        with_cw.extend_from_slice(&[0x08, 0x00]);
        let d = decode(Bytes::new(&with_cw, with_cw.len())).unwrap().unwrap();
        assert_eq!((d.inner.ethertype, d.inner.bytes.data.len()), (ETHERNET, 14));
        let mut plain = vec![0, 0x06, 0x41, 0x40];
        plain.extend_from_slice(&[0x00; 12]);
        plain.extend_from_slice(&[0x08, 0x00, 0x45, 0x00]);
        let d = decode(Bytes::new(&plain, plain.len())).unwrap().unwrap();
        assert_eq!(d.inner.bytes.data.len(), 16);
        let gal = [0, 0, 0xd1, 0x40, 0x10, 0, 0, 0x21, 0x45];
        let d = decode(Bytes::new(&gal, gal.len())).unwrap().unwrap();
        assert_eq!((d.id, d.inner.ethertype, d.inner.bytes.data), (Some(13), ETHERTYPE_IPV4, &[0x45u8][..]));
    }
}
