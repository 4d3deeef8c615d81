//! L2TP data messages: version 2 (RFC 2661) over UDP 1701 carrying PPP, and version 3 (RFC 3931)
//! over IP or over UDP 1701 carrying an Ethernet pseudo-wire. Control messages carry no packets and are left alone.
//!
//! An L2TPv3 session's pseudo-wire type, cookie and L2-specific sublayer are signalled in its
//! control connection; a data message alone does not say them. We read every data message as an
//! Ethernet pseudo-wire with no cookie and no sublayer (tshark does so when told
//! `-d l2tp.pw_type==0,eth`; by default it decodes only sessions whose set-up it saw).
use super::{Bytes, Decap, Inner, Kind, Step, ETHERNET};
use crate::error::DecodeError;
use crate::wire::{self, u16_at, u32_at};

const CONTROL: u16 = 0x8000;
const LENGTH: u16 = 0x4000;
const SEQUENCE: u16 = 0x0800;
const OFFSET: u16 = 0x0200;

/// L2TP over UDP (1701): version 2, or version 3 by the version field of the same header.
pub fn over_udp(b: Bytes) -> Step {
    let Some(h) = b.header("L2TP", 2)? else { return Ok(None) };
    if u16_at(h, 0) & 0x0f == 3 { v3_udp(b) } else { v2(b) }
}

/// L2TPv3 over UDP (RFC 3931 4.1.2.1): flags and version, 16 reserved bits, then the data
/// message's session id (control messages carry their T bit), then the frame.
fn v3_udp(b: Bytes) -> Step {
    let Some(h) = b.header("L2TPv3", 2)? else { return Ok(None) };
    if u16_at(h, 0) & CONTROL != 0 {
        return Ok(None);
    }
    match b.header("L2TPv3", 4)? {
        Some(_) => v3(b.skip(4)),
        None => Ok(None),
    }
}

/// L2TPv2: flags and version, the optional length, tunnel and session ids, the optional
/// Ns/Nr and offset (its size, then that many pad bytes), then a PPP frame.
fn v2(b: Bytes) -> Step {
    let Some(h) = b.header("L2TP", 2)? else { return Ok(None) };
    let flags = u16_at(h, 0);
    if flags & 0x0f != 2 || flags & CONTROL != 0 {
        return Ok(None);
    }
    let length_at = 2;
    let ids_at = if flags & LENGTH != 0 { 4 } else { 2 };
    let mut len = ids_at + 4;
    if flags & SEQUENCE != 0 {
        len += 4;
    }
    let offset_at = len;
    if flags & OFFSET != 0 {
        len += 2;
    }
    let Some(h) = b.header("L2TP", len)? else { return Ok(None) };
    if flags & OFFSET != 0 {
        len += usize::from(u16_at(h, offset_at));
        if b.header("L2TP", len)?.is_none() {
            return Ok(None);
        }
    }
    let session = u32::from(u16_at(h, ids_at + 2));
    // A length that disagrees with UDP's is ignored, as elsewhere.
    let total = usize::from(u16_at(h, length_at));
    let message = if flags & LENGTH != 0 && (len..=b.wire_len()).contains(&total) { b.limit(total) } else { b };
    let frame = message.skip(len);
    match wire::ppp(frame.data) {
        Ok((ethertype, ppp_len)) if ethertype != 0 => {
            Ok(Some(Decap { kind: Kind::L2tp, id: Some(session), inner: Inner { ethertype, bytes: frame.skip(ppp_len) }, vlan: None }))
        }
        Err(need) if frame.missing > 0 => Err(DecodeError::Truncated { layer: "PPP", need, have: frame.data.len() }),
        _ => Ok(None),
    }
}

/// L2TPv3 over IP (protocol 115): a 32-bit session id (0 for a control message), then the frame.
pub fn v3(b: Bytes) -> Step {
    let Some(h) = b.header("L2TPv3", 4)? else { return Ok(None) };
    let session = u32_at(h, 0);
    if session == 0 {
        return Ok(None);
    }
    Ok(Some(Decap { kind: Kind::L2tpv3, id: Some(session), inner: Inner { ethertype: ETHERNET, bytes: b.skip(4) }, vlan: None }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{ETHERTYPE_IPV4, ETHERTYPE_IPV6};

    #[test]
    fn v2_optional_fields_then_ppp() {
        let h = [0x00, 0x02, 0, 1, 0, 9, 0xff, 0x03, 0, 0x21, 0x45];
        let d = v2(Bytes::new(&h, h.len())).unwrap().unwrap();
        assert_eq!((d.kind, d.id, d.inner.ethertype, d.inner.bytes.data), (Kind::L2tp, Some(9), ETHERTYPE_IPV4, &[0x45u8][..]));
        // Length, sequence, offset 2 (and its pad), PPP without address/control.
        let h = [0x4a, 0x02, 0, 19, 0, 1, 0, 10, 0, 1, 0, 2, 0, 2, 0xaa, 0xbb, 0, 0x57, 0x60, 0xee];
        let d = v2(Bytes::new(&h, h.len())).unwrap().unwrap();
        assert_eq!((d.id, d.inner.ethertype, d.inner.bytes.data), (Some(10), ETHERTYPE_IPV6, &[0x60u8][..]));
        assert_eq!(v2(Bytes::new(&h[..13], 40)).unwrap_err(), DecodeError::Truncated { layer: "L2TP", need: 14, have: 13 });
        assert_eq!(v2(Bytes::new(&h[..15], 40)).unwrap_err(), DecodeError::Truncated { layer: "L2TP", need: 16, have: 15 });
        assert_eq!(v2(Bytes::new(&h[..17], 40)).unwrap_err(), DecodeError::Truncated { layer: "PPP", need: 2, have: 1 });
    }

    #[test]
    fn v2_control_and_other_versions_are_not_opened() {
        let control = [0xc8, 0x02, 0, 12, 0, 1, 0, 0, 0, 0, 0, 0];
        assert!(v2(Bytes::new(&control, control.len())).unwrap().is_none());
        let v3 = [0x00, 0x03, 0, 1, 0, 9, 0xff, 0x03, 0, 0x21, 0x45];
        assert!(v2(Bytes::new(&v3, v3.len())).unwrap().is_none());
        let lcp = [0x00, 0x02, 0, 1, 0, 9, 0xff, 0x03, 0xc0, 0x21, 1];
        assert!(v2(Bytes::new(&lcp, lcp.len())).unwrap().is_none());
    }

    #[test]
    fn v3_session_then_ethernet() {
        let h = [0, 0, 0x12, 0x34, 0xee];
        let d = v3(Bytes::new(&h, h.len())).unwrap().unwrap();
        assert_eq!((d.kind, d.id, d.inner.ethertype, d.inner.bytes.data), (Kind::L2tpv3, Some(0x1234), ETHERNET, &[0xeeu8][..]));
        assert!(v3(Bytes::new(&[0, 0, 0, 0, 0xc8, 3], 6)).unwrap().is_none());
        assert_eq!(v3(Bytes::new(&h[..3], 5)).unwrap_err(), DecodeError::Truncated { layer: "L2TPv3", need: 4, have: 3 });
    }

    #[test]
    fn over_udp_by_version() {
        let h = [0, 3, 0, 0, 0, 0, 0x12, 0x34, 0xee];
        let d = over_udp(Bytes::new(&h, h.len())).unwrap().unwrap();
        assert_eq!((d.kind, d.id, d.inner.bytes.data), (Kind::L2tpv3, Some(0x1234), &[0xeeu8][..]));
        // A control message (T bit) carries no frame.
        assert!(over_udp(Bytes::new(&[0xc8, 3, 0, 12, 0, 0, 0, 0], 8)).unwrap().is_none());
        assert_eq!(over_udp(Bytes::new(&h[..3], 9)).unwrap_err(), DecodeError::Truncated { layer: "L2TPv3", need: 4, have: 3 });
        assert_eq!(over_udp(Bytes::new(&h[..6], 9)).unwrap_err(), DecodeError::Truncated { layer: "L2TPv3", need: 4, have: 2 });
        assert_eq!(over_udp(Bytes::new(&[0, 2, 0, 1, 0, 2, 0, 0x21, 0x45], 9)).unwrap().unwrap().kind, Kind::L2tp);
    }
}
