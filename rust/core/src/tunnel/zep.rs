//! ZEP, the ZigBee Encapsulation Protocol (UDP 17754), as Wireshark's packet-zep.c reads it: the
//! preamble "EX", a version, then for version 1 a 16-byte header and for any other a 32-byte one
//! (an 8-byte ack, type 2, carries no frame); the IEEE 802.15.4 frame follows, as long as the
//! header's last byte says (7 bits). The CRC/LQI mode byte says whether the frame ends with its
//! FCS ([`FRAME_IEEE802154`]) or with TI CC24xx metadata ([`FRAME_IEEE802154_CC24XX`]). A
//! datagram longer than its header and that length is not ZEP (tshark shows it as data); a
//! shorter one is the frame cut short. The id is the channel.
use super::{Bytes, Decap, Inner, Kind, Step};
use crate::wire::{FRAME_IEEE802154, FRAME_IEEE802154_CC24XX};

const V1_HEADER_LEN: usize = 16;
const V2_HEADER_LEN: usize = 32;
const ACK_LEN: usize = 8;
const TYPE_ACK: u8 = 2;
const LENGTH_MASK: u8 = 0x7f;

pub fn decode(b: Bytes) -> Step {
    let Some(h) = b.header("ZEP", ACK_LEN)? else { return Ok(None) };
    if &h[..2] != b"EX" || (h[2] != 1 && h[3] == TYPE_ACK) {
        return Ok(None);
    }
    // Where the channel, the CRC/LQI mode and the frame's length are.
    let (len, channel, mode) = if h[2] == 1 { (V1_HEADER_LEN, 3, 6) } else { (V2_HEADER_LEN, 4, 7) };
    let Some(h) = b.header("ZEP", len)? else { return Ok(None) };
    let frame_len = usize::from(h[len - 1] & LENGTH_MASK);
    let rest = b.skip(len);
    if frame_len < rest.wire_len() {
        return Ok(None);
    }
    let ethertype = if h[mode] != 0 { FRAME_IEEE802154 } else { FRAME_IEEE802154_CC24XX };
    let data = &rest.data[..frame_len.min(rest.data.len())];
    let frame = Bytes { data, missing: frame_len - data.len() };
    Ok(Some(Decap { kind: Kind::Zep, id: Some(u32::from(h[channel])), inner: Inner { ethertype, bytes: frame }, vlan: None }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DecodeError;

    fn v2(mode: u8, channel: u8, frame: &[u8]) -> Vec<u8> {
        let mut h = vec![b'E', b'X', 2, 1, channel, 0x12, 0x34, mode, 0xff];
        h.resize(V2_HEADER_LEN - 1, 0);
        h.push(frame.len() as u8);
        h.extend_from_slice(frame);
        h
    }

    #[test]
    fn versions_modes_and_channel() {
        let z = v2(1, 11, &[0x41, 0xee]);
        let d = decode(Bytes::new(&z, z.len())).unwrap().unwrap();
        assert_eq!((d.kind, d.id, d.inner.ethertype, d.inner.bytes.data, d.inner.bytes.missing), (Kind::Zep, Some(11), FRAME_IEEE802154, &[0x41, 0xee][..], 0));
        let z = v2(0, 26, &[0x41]);
        assert_eq!(decode(Bytes::new(&z, z.len())).unwrap().unwrap().inner.ethertype, FRAME_IEEE802154_CC24XX);
        // Version 1: channel at 3, mode at 6, length at 15; other versions read as 2.
        let mut z = vec![b'E', b'X', 1, 15, 0, 1, 1, 0xff, 0, 0, 0, 0, 0, 0, 0, 0x81, 0xaa];
        let d = decode(Bytes::new(&z, z.len())).unwrap().unwrap();
        assert_eq!((d.id, d.inner.ethertype, d.inner.bytes.data), (Some(15), FRAME_IEEE802154, &[0xaa][..]));
        z[6] = 0;
        assert_eq!(decode(Bytes::new(&z, z.len())).unwrap().unwrap().inner.ethertype, FRAME_IEEE802154_CC24XX);
        let mut z = v2(1, 11, &[0x41]);
        z[2] = 3;
        z[3] = 7;
        assert!(decode(Bytes::new(&z, z.len())).unwrap().is_some());
    }

    #[test]
    fn acks_other_preambles_and_lengths() {
        let ack = [b'E', b'X', 2, 2, 0, 0, 0, 9];
        assert!(decode(Bytes::new(&ack, 8)).unwrap().is_none());
        let mut z = v2(1, 11, &[0x41, 0xee]);
        z[0] = b'e';
        assert!(decode(Bytes::new(&z, z.len())).unwrap().is_none());
        // The length says less than the datagram holds: not ZEP; more: the frame was cut.
        let mut z = v2(1, 11, &[0x41, 0xee]);
        z[V2_HEADER_LEN - 1] = 1;
        assert!(decode(Bytes::new(&z, z.len())).unwrap().is_none());
        z[V2_HEADER_LEN - 1] = 5;
        let d = decode(Bytes::new(&z, z.len())).unwrap().unwrap();
        assert_eq!((d.inner.bytes.data.len(), d.inner.bytes.missing), (2, 3));
        // Shorter on the wire than a header: not ZEP; cut by the capture: an error.
        assert!(decode(Bytes::new(&z[..20], 20)).unwrap().is_none());
        assert!(decode(Bytes::new(&z[..4], 4)).unwrap().is_none());
        assert_eq!(decode(Bytes::new(&z[..20], z.len())).unwrap_err(), DecodeError::Truncated { layer: "ZEP", need: 32, have: 20 });
        // Cut inside the frame: what was captured, the rest missing.
        let d = decode(Bytes::new(&z[..33], z.len())).unwrap().unwrap();
        assert_eq!((d.inner.bytes.data, d.inner.bytes.missing), (&[0x41][..], 4));
    }
}
