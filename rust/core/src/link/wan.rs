//! Wide-area links: Frame Relay (RFC 2427) and ATM with LLC/SNAP (RFC 1483). SLIP (link type 8)
//! is not here: tshark 4.0 has no dissector for it (its frames are "Data"), so it stays unsupported.
use super::{truncated, LinkFrame};
use crate::error::DecodeError;
use crate::wire::{llc_snap, ETHERTYPE_IPV4, ETHERTYPE_IPV6};

const UI: u8 = 0x03;
const NLPID_SNAP: u8 = 0x80;
const NLPID_IPV4: u8 = 0xcc;
const NLPID_IPV6: u8 = 0x8e;

/// Frame Relay: a Q.922 address of 2 to 4 bytes (the low bit ends it), the UI control byte, an
/// optional pad, then an NLPID: IPv4, IPv6, or SNAP with an ethertype.
pub fn frame_relay(data: &[u8]) -> Result<LinkFrame<'_>, DecodeError> {
    let address = (1..4).find(|&i| data.get(i).is_some_and(|b| b & 1 == 1)).ok_or_else(|| truncated("Frame Relay", 2, data.len()))? + 1;
    if data.get(address) != Some(&UI) {
        return Ok(LinkFrame::default());
    }
    let mut at = address + 1;
    if data.get(at) == Some(&0) {
        at += 1;
    }
    let nlpid = *data.get(at).ok_or_else(|| truncated("Frame Relay", at + 1, data.len()))?;
    let (ethertype, at) = match nlpid {
        NLPID_IPV4 => (ETHERTYPE_IPV4, at + 1),
        NLPID_IPV6 => (ETHERTYPE_IPV6, at + 1),
        // SNAP without the LLC bytes: OUI and protocol id.
        NLPID_SNAP => match (data.get(at + 1..at + 4), crate::wire::be16(data, at + 4)) {
            (Some([0, 0, 0]), Some(ethertype)) => (ethertype, at + 6),
            (Some(_), Some(_)) => (0, at + 6),
            _ => return Err(truncated("Frame Relay SNAP", at + 6, data.len())),
        },
        _ => (0, at + 1),
    };
    Ok(LinkFrame { ethertype, payload: data.get(at..).unwrap_or_default(), ..Default::default() })
}

/// ATM AAL5 with RFC 1483's LLC/SNAP encapsulation.
pub fn atm_rfc1483(data: &[u8]) -> Result<LinkFrame<'_>, DecodeError> {
    match llc_snap(data) {
        Ok(Some(ethertype)) => Ok(LinkFrame { ethertype, payload: data.get(8..).unwrap_or_default(), ..Default::default() }),
        Ok(None) => Ok(LinkFrame::default()),
        Err(need) => Err(truncated("LLC/SNAP", need, data.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_relay_nlpids() {
        assert_eq!(frame_relay(&[0x18, 0x41, 0x03, 0xcc, 0x45]).unwrap().payload, &[0x45]);
        assert_eq!(frame_relay(&[0x18, 0x41, 0x03, 0x8e, 0x60]).unwrap().ethertype, ETHERTYPE_IPV6);
        let snap = frame_relay(&[0x18, 0x41, 0x03, 0x00, 0x80, 0, 0, 0, 0x08, 0x00, 0x45]).unwrap();
        assert_eq!((snap.ethertype, snap.payload), (ETHERTYPE_IPV4, &[0x45u8][..]));
        assert_eq!(frame_relay(&[0x18, 0x40, 0x41, 0x03, 0xcc, 0x45]).unwrap().payload, &[0x45]);
        assert_eq!(frame_relay(&[0x18, 0x41, 0x08, 0x00]).unwrap().ethertype, 0);
        assert!(matches!(frame_relay(&[0x18, 0x41, 0x03, 0x80, 0, 0]), Err(DecodeError::Truncated { need: 9, .. })));
        assert!(matches!(frame_relay(&[0x18]), Err(DecodeError::Truncated { .. })));
    }

    #[test]
    fn atm_llc_snap() {
        let l = atm_rfc1483(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x86, 0xdd, 0x60]).unwrap();
        assert_eq!((l.ethertype, l.payload), (ETHERTYPE_IPV6, &[0x60u8][..]));
        assert!(matches!(atm_rfc1483(&[0xaa, 0xaa, 0x03]), Err(DecodeError::Truncated { need: 8, .. })));
    }
}
