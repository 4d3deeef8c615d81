//! NHRP (RFC 2332; GRE protocol type 0x2001) traffic indications (type 8, as Cisco's DMVPN sends
//! them): a router tells a packet's sender of a shorter path and quotes "the packet causing the
//! indication". Wireshark dissects the quote as the protocol type says, so the ICMP message it
//! quotes is a row (`nhrp`); the quote is a copy, not traffic of its own. The other messages
//! (resolution, registration, purge; error indications, which quote NHRP) carry no packet.
use super::{Bytes, Decap, Inner, Kind, Step};
use crate::wire::{ip_version_ethertype, u16_at, ETHERTYPE_IPV4, ETHERTYPE_IPV6};

const TRAFFIC_INDICATION: u8 = 8;
// The NLPIDs (ISO/IEC TR 9577) of IP, which Wireshark takes for a protocol type too.
const NLPID_IPV4: u16 = 0xcc;
const NLPID_IPV6: u16 = 0x8e;
const ADDRESS_LEN: u8 = 0x3f; // of an address type/length byte

/// The traffic indication `b` in GRE whose key (if any) is `id`.
pub fn decode(b: Bytes, id: Option<u32>) -> Step {
    let Some(h) = b.header("NHRP", 22)? else { return Ok(None) };
    // The mandatory part ends where the extensions start (or the packet does); as Wireshark, an
    // empty one or offsets out of order leave the message undissected.
    let (size, extensions) = (u16_at(h, 10), u16_at(h, 14));
    let end = if extensions == 0 { size } else { extensions };
    if h[17] != TRAFFIC_INDICATION || end <= 20 || end > size {
        return Ok(None);
    }
    let ethertype = match u16_at(h, 2) {
        ETHERTYPE_IPV4 | NLPID_IPV4 => ETHERTYPE_IPV4,
        ETHERTYPE_IPV6 | NLPID_IPV6 => ETHERTYPE_IPV6,
        _ => return Ok(None),
    };
    // Fixed header, the two protocol address lengths, the code and unused words, then the source
    // NBMA address and subaddress and the source and destination protocol addresses.
    let at = 28 + [h[18] & ADDRESS_LEN, h[19] & ADDRESS_LEN, h[20], h[21]].into_iter().map(usize::from).sum::<usize>();
    let Some(first) = b.header("NHRP", at + 1)? else { return Ok(None) };
    // The quote runs to the end of the datagram (past any extensions: its IP header bounds it),
    // read as the protocol type says: a packet of the other version is not opened.
    if ip_version_ethertype(first[at]) != Some(ethertype) {
        return Ok(None);
    }
    Ok(Some(Decap { kind: Kind::Nhrp, id, inner: Inner { ethertype, bytes: b.skip(at) }, vlan: None }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DecodeError;

    /// A traffic indication over IPv4 NBMA quoting `quote`, with IPv4 protocol addresses.
    fn indication(quote: &[u8]) -> Vec<u8> {
        let size = (20 + 8 + 12 + quote.len()) as u16;
        let mut m = vec![0, 1, 0x08, 0, 0, 0, 0, 0, 0, 255];
        m.extend_from_slice(&size.to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0, 1, 8, 4, 0, 4, 4, 0, 0, 0, 0, 0, 0]);
        m.extend_from_slice(&[192, 0, 2, 1, 10, 0, 0, 1, 10, 0, 0, 2]);
        m.extend_from_slice(quote);
        m
    }

    fn open(m: &[u8]) -> Option<Decap<'_>> {
        decode(Bytes::new(m, m.len()), Some(7)).unwrap()
    }

    #[test]
    fn the_quote_follows_the_addresses() {
        let m = indication(&[0x45, 1, 2]);
        let d = open(&m).unwrap();
        assert_eq!((d.kind, d.id, d.inner.ethertype, d.inner.bytes.data), (Kind::Nhrp, Some(7), ETHERTYPE_IPV4, &[0x45u8, 1, 2][..]));
        // A source NBMA subaddress of 2 bytes moves it on; the NLPID of IPv6 names IPv6.
        let mut m = indication(&[0, 0, 0x60]);
        m[19] = 2;
        m[2..4].copy_from_slice(&NLPID_IPV6.to_be_bytes());
        let d = open(&m).unwrap();
        assert_eq!((d.inner.ethertype, d.inner.bytes.data), (ETHERTYPE_IPV6, &[0x60u8][..]));
    }

    #[test]
    fn other_messages_and_bad_offsets_are_not_opened() {
        let m = indication(&[0x45]);
        assert!(open(&m).is_some());
        let with = |at: usize, bytes: &[u8]| {
            let mut m = m.clone();
            m[at..at + bytes.len()].copy_from_slice(bytes);
            m
        };
        for bad in [
            with(17, &[7]),          // an error indication quotes NHRP
            with(17, &[1]),          // a resolution request
            with(2, &[0x86, 0xdd]),  // IPv6 says the type, IPv4 the quote
            with(2, &[0x00, 0x80]),  // SNAP
            with(10, &[0, 19]),      // shorter than its fixed header
            with(14, &[0, 20]),      // no mandatory part before the extensions
            with(14, &[0, 19]),      // extensions inside the fixed header
            with(14, &[0x10, 0]),    // extensions past the end
        ] {
            assert!(open(&bad).is_none());
        }
        assert!(open(&with(14, &[0, 21])).is_some());
    }

    #[test]
    fn cut_header_is_an_error_short_wire_is_not_nhrp() {
        let m = indication(&[0x45]);
        assert_eq!(decode(Bytes::new(&m[..21], 60), None).unwrap_err(), DecodeError::Truncated { layer: "NHRP", need: 22, have: 21 });
        assert_eq!(decode(Bytes::new(&m[..40], 60), None).unwrap_err(), DecodeError::Truncated { layer: "NHRP", need: 41, have: 40 });
        assert!(decode(Bytes::new(&m[..40], 40), None).unwrap().is_none());
    }
}
