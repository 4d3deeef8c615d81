//! TZSP, the TaZmen sniffer protocol (UDP 37008): version, type and encapsulation, tagged fields
//! up to the END tag, then the captured frame. The encapsulations Wireshark's table maps are
//! opened: Ethernet (1), IEEE 802.11 (18), 802.11 behind a Prism (119) or AVS (127) header; not
//! the others, nor the types that carry no frame (configuration, null).
use super::{Bytes, Decap, Inner, Kind, Step, ETHERNET};
use crate::wire::{u16_at, FRAME_AVS, FRAME_IEEE80211, FRAME_PRISM};

const CONFIG: u8 = 4;
const NULL: u8 = 5;
const PADDING: u8 = 0;
const END: u8 = 1;

pub fn decode(b: Bytes) -> Step {
    let Some(h) = b.header("TZSP", 4)? else { return Ok(None) };
    // As Wireshark, the version is not checked.
    if matches!(h[1], CONFIG | NULL) {
        return Ok(None);
    }
    let ethertype = match u16_at(h, 2) {
        1 => ETHERNET,
        18 => FRAME_IEEE80211,
        119 => FRAME_PRISM,
        127 => FRAME_AVS,
        _ => return Ok(None),
    };
    let mut at = 4;
    loop {
        let Some(tags) = b.header("TZSP", at + 1)? else { return Ok(None) };
        match tags[at] {
            END => break,
            PADDING => at += 1,
            _ => {
                let Some(tags) = b.header("TZSP", at + 2)? else { return Ok(None) };
                at += 2 + usize::from(tags[at + 1]);
            }
        }
    }
    Ok(Some(Decap { kind: Kind::Tzsp, id: None, inner: Inner { ethertype, bytes: b.skip(at + 1) }, vlan: None }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DecodeError;

    #[test]
    fn tags_up_to_end() {
        let h = [1, 0, 0, 1, 0, 10, 1, 0x7f, 40, 2, 0, 1, 1, 0xee];
        let d = decode(Bytes::new(&h, h.len())).unwrap().unwrap();
        assert_eq!((d.kind, d.id, d.inner.ethertype, d.inner.bytes.data), (Kind::Tzsp, None, ETHERNET, &[0xeeu8][..]));
        assert_eq!(decode(Bytes::new(&h[..9], 40)).unwrap_err(), DecodeError::Truncated { layer: "TZSP", need: 10, have: 9 });
        assert_eq!(decode(Bytes::new(&h[..11], 40)).unwrap_err(), DecodeError::Truncated { layer: "TZSP", need: 13, have: 11 });
        // No END tag before the datagram ends: not TZSP.
        assert!(decode(Bytes::new(&h[..11], 11)).unwrap().is_none());
    }

    #[test]
    fn radio_encapsulations() {
        for (encapsulation, frame) in [(18, FRAME_IEEE80211), (119, FRAME_PRISM), (127, FRAME_AVS)] {
            let h = [1, 0, 0, encapsulation, 1, 0xee];
            let d = decode(Bytes::new(&h, 6)).unwrap().unwrap();
            assert_eq!((d.inner.ethertype, d.inner.bytes.data), (frame, &[0xeeu8][..]));
        }
    }

    #[test]
    fn other_encapsulations_and_frameless_types_are_not_opened() {
        // 25 (Prism in an old table) and 163 (AVS's link type) are not TZSP numbers tshark maps.
        for encapsulation in [0, 2, 25, 105, 163] {
            assert!(decode(Bytes::new(&[1, 0, 0, encapsulation, 1, 0xee], 6)).unwrap().is_none());
        }
        assert!(decode(Bytes::new(&[1, 4, 0, 1, 1, 0xee], 6)).unwrap().is_none());
        assert!(decode(Bytes::new(&[1, 5, 0, 1, 1, 0xee], 6)).unwrap().is_none());
        assert!(decode(Bytes::new(&[1, 1, 0, 1, 1, 0xee], 6)).unwrap().is_some());
    }
}
