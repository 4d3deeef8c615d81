//! CAPWAP data channel (RFC 5415, UDP 5247): the preamble (version 0, type 0; type 1 is DTLS and
//! stays opaque), a header whose HLEN counts it in words with the optional radio MAC address and
//! wireless-specific information, then the frame: an IEEE 802.3 frame (T bit clear), or a native
//! frame of the binding (T set), opened for the IEEE 802.11 binding (WBID 1) with its frame
//! control bytes swapped, as Wireshark reads them by default. Keep-alives (K) carry no frame.
//! Fragments (F) are not opened: Wireshark reassembles them (by carrier addresses, not ports, and
//! fragment id; offsets in 8-byte units; L marks the last), which would take a reassembler of
//! tunnel payloads beside the IP one, across the pieces a file is split into.
use super::{Bytes, Decap, Inner, Kind, Step, ETHERNET};
use crate::wire::FRAME_IEEE80211_SWAPPED;

const NATIVE: u8 = 0x01; // T, the low bit of the header's third byte (below the WBID's five)
const FRAGMENT: u8 = 0x80; // F
const KEEP_ALIVE: u8 = 0x08; // K
const WBID_IEEE80211: u8 = 1;

pub fn decode(b: Bytes) -> Step {
    let Some(h) = b.header("CAPWAP", 8)? else { return Ok(None) };
    let len = usize::from(h[1] >> 3) * 4;
    if h[0] != 0 || h[3] & (FRAGMENT | KEEP_ALIVE) != 0 || len < 8 {
        return Ok(None);
    }
    let ethertype = match (h[2] & NATIVE != 0, h[2] >> 1 & 0x1f) {
        (false, _) => ETHERNET,
        (true, WBID_IEEE80211) => FRAME_IEEE80211_SWAPPED,
        (true, _) => return Ok(None),
    };
    if b.header("CAPWAP", len)?.is_none() {
        return Ok(None);
    }
    Ok(Some(Decap { kind: Kind::Capwap, id: None, inner: Inner { ethertype, bytes: b.skip(len) }, vlan: None }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DecodeError;

    #[test]
    fn header_length_then_ethernet() {
        // HLEN 4: 8 bytes, the radio MAC (length 6, padded to 8).
        let mut h = vec![0, 0x20, 0x42, 0x10, 0, 0, 0, 0, 6];
        h.extend_from_slice(&[0; 7]);
        h.push(0xee);
        let d = decode(Bytes::new(&h, h.len())).unwrap().unwrap();
        assert_eq!((d.kind, d.id, d.inner.ethertype, d.inner.bytes.data), (Kind::Capwap, None, ETHERNET, &[0xeeu8][..]));
        assert_eq!(decode(Bytes::new(&h[..12], 40)).unwrap_err(), DecodeError::Truncated { layer: "CAPWAP", need: 16, have: 12 });
    }

    #[test]
    fn native_frames_of_the_80211_binding() {
        // HLEN 2, RID 1, WBID 1 and T: 0x10 0x43. WBID 0 (Cisco's), 3 and 17 are not opened.
        let d = decode(Bytes::new(&[0, 0x10, 0x43, 0x00, 0, 0, 0, 0, 0xee], 9)).unwrap().unwrap();
        assert_eq!((d.inner.ethertype, d.inner.bytes.data), (FRAME_IEEE80211_SWAPPED, &[0xeeu8][..]));
        for third in [0x41, 0x47, 0x63] {
            assert!(decode(Bytes::new(&[0, 0x10, third, 0x00, 0, 0, 0, 0, 0xee], 9)).unwrap().is_none());
        }
    }

    #[test]
    fn dtls_keep_alives_and_fragments_are_not_opened() {
        let plain = [0, 0x10, 0x42, 0x00, 0, 0, 0, 0, 0xee];
        assert!(decode(Bytes::new(&plain, 9)).unwrap().is_some());
        for (at, value) in [(0, 1), (3, 0x80), (3, 0x08), (1, 0x08)] {
            let mut h = plain;
            h[at] = value;
            assert!(decode(Bytes::new(&h, 9)).unwrap().is_none());
        }
    }
}
