//! GRE (RFC 2784, 2890; RFC 1701 routing; PPTP's enhanced GRE of RFC 2637) and what rides in it:
//! ERSPAN types I, II and III, Cisco MetaData, PPP, MPLS, NSH, NHRP, Ethernet and IP.
use super::{ip_by_version, Bytes, Decap, Inner, Kind, Step, ETHERNET};
use crate::wire::{self, u16_at, u32_at, ETHERTYPE_CISCO_METADATA as CISCO_METADATA, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_MPLS, ETHERTYPE_MPLS_MULTICAST, ETHERTYPE_NHRP as NHRP, ETHERTYPE_NSH, ETHERTYPE_PPP as PPP};

const CHECKSUM: u16 = 0x8000;
const ROUTING: u16 = 0x4000;
const KEY: u16 = 0x2000;
const SEQUENCE: u16 = 0x1000;
const ACK: u16 = 0x0080;

const ERSPAN: u16 = 0x88BE;
const ERSPAN3: u16 = 0x22EB;

pub fn decode(b: Bytes) -> Step {
    let Some(h) = b.header("GRE", 4)? else { return Ok(None) };
    let flags = u16_at(h, 0);
    let mut len = 4;
    if flags & (CHECKSUM | ROUTING) != 0 {
        len += 4; // checksum and the routing offset
    }
    let key_at = len;
    if flags & KEY != 0 {
        len += 4;
    }
    if flags & SEQUENCE != 0 {
        len += 4;
    }
    if flags & 7 == 1 && flags & ACK != 0 {
        len += 4;
    }
    let Some(h) = b.header("GRE", len)? else { return Ok(None) };
    let key = (flags & KEY != 0).then(|| u32_at(h, key_at));
    if flags & ROUTING != 0 {
        // Source route entries, up to the one of address family 0 and length 0.
        loop {
            let Some(sre) = b.header("GRE", len + 4)? else { return Ok(None) };
            let (family, sre_len) = (u16_at(sre, len), usize::from(u16_at(sre, len + 2) & 0xff));
            len += 4 + sre_len;
            if family == 0 && sre_len == 0 {
                break;
            }
        }
        if b.header("GRE", len)?.is_none() {
            return Ok(None);
        }
    }
    // PPTP's key is a payload length and a call id: the call id names the session.
    let id = if flags & 7 == 1 { key.map(|k| k & 0xffff) } else { key };
    payload(u16_at(h, 2), b.skip(len), id, flags & SEQUENCE != 0, true)
}

/// What a GRE protocol type carries; `metadata` allows one Cisco MetaData header on the way.
fn payload(proto: u16, rest: Bytes, id: Option<u32>, sequenced: bool, metadata: bool) -> Step {
    let gre = |ethertype, bytes| Ok(Some(Decap { kind: Kind::Gre, id, inner: Inner { ethertype, bytes }, vlan: None }));
    match proto {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 | ETHERNET | ETHERTYPE_MPLS | ETHERTYPE_MPLS_MULTICAST | ETHERTYPE_NSH => gre(proto, rest),
        ERSPAN if !sequenced => Ok(Some(Decap { kind: Kind::Erspan1, id, inner: Inner { ethertype: ETHERNET, bytes: rest }, vlan: None })),
        ERSPAN | ERSPAN3 => erspan(rest),
        NHRP => super::nhrp::decode(rest, id),
        CISCO_METADATA if metadata => {
            // Inside GRE the inner ethertype comes first: type, version, length, options, SGT.
            let Some(h) = rest.header("Cisco MetaData", 8)? else { return Ok(None) };
            payload(u16_at(h, 0), rest.skip(8), id, sequenced, false)
        }
        PPP => match wire::ppp(rest.data) {
            Ok((ethertype, len)) if ethertype != 0 => gre(ethertype, rest.skip(len)),
            Err(need) if rest.missing > 0 => Err(crate::error::DecodeError::Truncated { layer: "PPP", need, have: rest.data.len() }),
            _ => Ok(None),
        },
        _ => Ok(None),
    }
}

/// ERSPAN II (8-byte header) or III (12 bytes, and 8 more with the platform subheader); the
/// version field says which. The session id (the tunnel's id) and VLAN come from the header.
fn erspan(rest: Bytes) -> Step {
    let Some(h) = rest.header("ERSPAN", 8)? else { return Ok(None) };
    let vlan = u16_at(h, 0) & 0x0fff;
    let session = u32::from(u16_at(h, 2) & 0x03ff);
    let (kind, len, ethertype) = match h[0] >> 4 {
        1 => (Kind::Erspan2, 8, ETHERNET),
        2 => {
            let Some(h) = rest.header("ERSPAN", 12)? else { return Ok(None) };
            let len = if h[11] & 1 != 0 { 20 } else { 12 };
            if rest.header("ERSPAN", len)?.is_none() {
                return Ok(None);
            }
            // Frame type 0 is Ethernet; 2 is an IP packet.
            let ethertype = match (h[10] >> 2) & 0x1f {
                0 => ETHERNET,
                2 => match ip_by_version(rest.skip(len)) {
                    Some(e) => e,
                    None => return Ok(None),
                },
                _ => return Ok(None),
            };
            (Kind::Erspan3, len, ethertype)
        }
        _ => return Ok(None),
    };
    Ok(Some(Decap {
        kind,
        id: Some(session),
        inner: Inner { ethertype, bytes: rest.skip(len) },
        vlan: (vlan != 0).then_some(vlan),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DecodeError;

    fn open(h: &[u8]) -> Decap<'_> {
        decode(Bytes::new(h, h.len())).unwrap().unwrap()
    }

    #[test]
    fn key_sequence_checksum_and_routing_are_skipped() {
        let d = open(&[0xb0, 0, 0x08, 0, 0xaa, 0xbb, 0, 0, 0, 0, 0, 7, 0, 0, 0, 1, 0x45]);
        assert_eq!((d.kind, d.id, d.inner.ethertype, d.inner.bytes.data), (Kind::Gre, Some(7), ETHERTYPE_IPV4, &[0x45u8][..]));
        // Routing present: offset word, one IPv4 SRE of 4 bytes, the terminating SRE.
        let d = open(&[0x40, 0, 0x08, 0, 0, 0, 0, 0, 0, 2, 0, 4, 10, 0, 0, 1, 0, 0, 0, 0, 0x45]);
        assert_eq!(d.inner.bytes.data, &[0x45u8][..]);
        assert_eq!(d.id, None);
    }

    #[test]
    fn pptp_call_id_and_ppp() {
        // Version 1, key (length 5, call id 9), sequence and ack; PPP with address/control.
        let d = open(&[0x30, 0x81, 0x88, 0x0b, 0, 5, 0, 9, 0, 0, 0, 1, 0, 0, 0, 2, 0xff, 0x03, 0, 0x21, 0x45]);
        assert_eq!((d.kind, d.id, d.inner.ethertype, d.inner.bytes.data), (Kind::Gre, Some(9), ETHERTYPE_IPV4, &[0x45u8][..]));
    }

    #[test]
    fn erspan_types() {
        let d = open(&[0, 0, 0x88, 0xbe, 0xee]);
        assert_eq!((d.kind, d.inner.ethertype, d.inner.bytes.data.len()), (Kind::Erspan1, ETHERNET, 1));
        let d = open(&[0x10, 0, 0x88, 0xbe, 0, 0, 0, 1, 0x10, 0x17, 0x08, 0x64, 0, 0, 0, 0, 0xee]);
        assert_eq!((d.kind, d.id, d.vlan, d.inner.bytes.data), (Kind::Erspan2, Some(100), Some(23), &[0xeeu8][..]));
        let mut e3 = vec![0, 0, 0x22, 0xeb, 0x20, 0x0a, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1];
        e3.extend_from_slice(&[0; 8]);
        e3.push(0xee);
        let d = open(&e3);
        assert_eq!((d.kind, d.id, d.vlan, d.inner.bytes.data), (Kind::Erspan3, Some(5), Some(10), &[0xeeu8][..]));
    }

    #[test]
    fn cisco_metadata_then_ip() {
        let d = open(&[0x20, 0, 0x89, 0x09, 0, 0, 0, 0x28, 0x08, 0, 1, 1, 0, 1, 0, 0, 0x45]);
        assert_eq!((d.id, d.inner.ethertype, d.inner.bytes.data), (Some(0x28), ETHERTYPE_IPV4, &[0x45u8][..]));
    }

    #[test]
    fn cut_header_is_an_error_short_wire_is_not_gre() {
        let h = [0x20, 0, 0x08, 0, 0, 0];
        assert_eq!(decode(Bytes::new(&h, 40)).unwrap_err(), DecodeError::Truncated { layer: "GRE", need: 8, have: 6 });
        assert!(decode(Bytes::new(&h, 6)).unwrap().is_none());
        assert!(decode(Bytes::new(&[0, 0, 0x12, 0x34, 0], 5)).unwrap().is_none());
    }
}
