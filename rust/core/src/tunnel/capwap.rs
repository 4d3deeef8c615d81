//! CAPWAP data channel (RFC 5415, UDP 5247): the preamble (version 0, type 0; type 1 is DTLS and
//! stays opaque), a header whose HLEN counts it in words with the optional radio MAC address and
//! wireless-specific information, then the frame. IEEE 802.3 frames (T bit clear) are opened;
//! native frames of the binding (802.11) and fragments (reassembled by Wireshark) are not.
use super::{Bytes, Decap, Inner, Kind, Step, ETHERNET};

const NATIVE: u8 = 0x01; // T, the low bit of the header's third byte
const FRAGMENT: u8 = 0x80; // F

pub fn decode(b: Bytes) -> Step {
    let Some(h) = b.header("CAPWAP", 8)? else { return Ok(None) };
    let len = usize::from(h[1] >> 3) * 4;
    if h[0] != 0 || h[2] & NATIVE != 0 || h[3] & FRAGMENT != 0 || len < 8 {
        return Ok(None);
    }
    if b.header("CAPWAP", len)?.is_none() {
        return Ok(None);
    }
    Ok(Some(Decap { kind: Kind::Capwap, id: None, inner: Inner { ethertype: ETHERNET, bytes: b.skip(len) }, vlan: None }))
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
    fn dtls_native_frames_and_fragments_are_not_opened() {
        let plain = [0, 0x10, 0x42, 0x00, 0, 0, 0, 0, 0xee];
        assert!(decode(Bytes::new(&plain, 9)).unwrap().is_some());
        for (at, value) in [(0, 1), (2, 0x43), (3, 0x80), (1, 0x08)] {
            let mut h = plain;
            h[at] = value;
            assert!(decode(Bytes::new(&h, 9)).unwrap().is_none());
        }
    }
}
