//! CAPWAP data channel (RFC 5415, UDP 5247): the preamble (version 0, type 0; type 1 is DTLS and
//! stays opaque), a header whose HLEN counts it in words with the optional radio MAC address and
//! wireless-specific information, then the frame: an IEEE 802.3 frame (T bit clear), or a native
//! frame of the binding (T set), opened for the IEEE 802.11 binding (WBID 1) with its frame
//! control bytes swapped, as Wireshark reads them by default. Keep-alives (K) carry no frame.
//! A fragment (F) is handed on whole, header included, as a [`FRAME_CAPWAP_FRAGMENT`] for the
//! pipeline to reassemble ([`fragment`] reads it), as Wireshark does by default: keyed by the
//! carrier's addresses (not ports) and the fragment id, offsets in 8-byte units, L marking the
//! last; the reassembled frame is what the header of the piece that completes it says.
use super::{Bytes, Decap, Inner, Kind, Step, ETHERNET};
use crate::error::DecodeError;
use crate::wire::{be16, FRAME_CAPWAP_FRAGMENT, FRAME_IEEE80211_SWAPPED};

const NATIVE: u8 = 0x01; // T, the low bit of the header's third byte (below the WBID's five)
const FRAGMENT: u8 = 0x80; // F
const LAST: u8 = 0x40; // L
const KEEP_ALIVE: u8 = 0x08; // K
const WBID_IEEE80211: u8 = 1;

pub fn decode(b: Bytes) -> Step {
    let Some(h) = b.header("CAPWAP", 8)? else { return Ok(None) };
    let len = usize::from(h[1] >> 3) * 4;
    if h[0] != 0 || h[3] & KEEP_ALIVE != 0 || len < 8 {
        return Ok(None);
    }
    if h[3] & FRAGMENT != 0 {
        if b.header("CAPWAP", len)?.is_none() {
            return Ok(None);
        }
        return Ok(Some(Decap { kind: Kind::Capwap, id: None, inner: Inner { ethertype: FRAME_CAPWAP_FRAGMENT, bytes: b }, vlan: None }));
    }
    let Some(ethertype) = frame_type(h) else { return Ok(None) };
    if b.header("CAPWAP", len)?.is_none() {
        return Ok(None);
    }
    Ok(Some(Decap { kind: Kind::Capwap, id: None, inner: Inner { ethertype, bytes: b.skip(len) }, vlan: None }))
}

/// The frame a header says follows: 802.3 (T clear) or the 802.11 binding's; `None` for another
/// binding's (Wireshark shows them as data).
fn frame_type(h: &[u8]) -> Option<u16> {
    match (h[2] & NATIVE != 0, h[2] >> 1 & 0x1f) {
        (false, _) => Some(ETHERNET),
        (true, WBID_IEEE80211) => Some(FRAME_IEEE80211_SWAPPED),
        (true, _) => None,
    }
}

/// A fragment of a CAPWAP data packet.
#[derive(Debug, Clone, Copy)]
pub struct Fragment<'a> {
    pub id: u16,
    /// In bytes of the reassembled payload.
    pub offset: u32,
    /// L is clear.
    pub more: bool,
    /// The frame the payload is, should this piece complete it (see [`frame_type`]).
    pub frame: Option<u16>,
    /// What follows the header.
    pub payload: Bytes<'a>,
}

/// The fragment `decode` handed on as a [`FRAME_CAPWAP_FRAGMENT`] (its header, checked there).
pub fn fragment(b: Bytes) -> Result<Fragment, DecodeError> {
    let h = b.data.get(..8).ok_or(DecodeError::Truncated { layer: "CAPWAP", need: 8, have: b.data.len() })?;
    let len = usize::from(h[1] >> 3) * 4;
    Ok(Fragment {
        id: be16(h, 4).unwrap_or(0),
        offset: u32::from(be16(h, 6).unwrap_or(0) >> 3) * 8,
        more: h[3] & LAST == 0,
        frame: frame_type(h),
        payload: b.skip(len),
    })
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
    fn fragments_are_handed_on_whole() {
        // HLEN 2, T and WBID 1, F and L, fragment id 0x1234, offset 3 units.
        let h = [0, 0x10, 0x43, 0xc0, 0x12, 0x34, 0x00, 0x18, 0xee, 0xff];
        let d = decode(Bytes::new(&h, 12)).unwrap().unwrap();
        assert_eq!((d.kind, d.inner.ethertype, d.inner.bytes.data.len(), d.inner.bytes.missing), (Kind::Capwap, FRAME_CAPWAP_FRAGMENT, 10, 2));
        let f = fragment(d.inner.bytes).unwrap();
        assert_eq!((f.id, f.offset, f.more, f.frame, f.payload.data, f.payload.missing), (0x1234, 24, false, Some(FRAME_IEEE80211_SWAPPED), &[0xee, 0xff][..], 2));
        // F alone: more to come; an 802.3 frame; a binding not opened is still a piece.
        let f = fragment(Bytes::new(&[0, 0x10, 0x42, 0x80, 0, 1, 0, 0], 8)).unwrap();
        assert_eq!((f.id, f.offset, f.more, f.frame), (1, 0, true, Some(ETHERNET)));
        assert_eq!(fragment(Bytes::new(&[0, 0x10, 0x47, 0x80, 0, 1, 0, 0], 8)).unwrap().frame, None);
        // Its header cut: an error, as an unfragmented packet's.
        assert!(decode(Bytes::new(&[0, 0x20, 0x42, 0x80, 0, 1, 0, 0, 6], 20)).is_err());
    }

    #[test]
    fn dtls_and_keep_alives_are_not_opened() {
        let plain = [0, 0x10, 0x42, 0x00, 0, 0, 0, 0, 0xee];
        assert!(decode(Bytes::new(&plain, 9)).unwrap().is_some());
        for (at, value) in [(0, 1), (3, 0x88), (3, 0x08), (1, 0x08)] {
            let mut h = plain;
            h[at] = value;
            assert!(decode(Bytes::new(&h, 9)).unwrap().is_none());
        }
    }
}
