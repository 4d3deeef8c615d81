//! PPPoE sessions (RFC 2516): a session id, then a PPP frame of the length the header gives.
use super::{be16, Bytes, Decap, Inner, Kind, Step};
use crate::link;

pub fn decode(b: Bytes) -> Step {
    let Some(h) = b.header("PPPoE", 8)? else { return Ok(None) };
    let (session, length) = (u32::from(be16(h, 2)), usize::from(be16(h, 4)));
    let frame = b.skip(6).limit(length);
    match link::ppp(frame.data) {
        Ok(l) if l.ethertype != 0 => {
            let bytes = frame.skip(frame.data.len() - l.payload.len());
            Ok(Some(Decap { kind: Kind::Pppoe, id: Some(session), inner: Inner { ethertype: l.ethertype, bytes }, vlan: None }))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_and_length() {
        let h = [0x11, 0, 0, 0x11, 0, 3, 0, 0x21, 0x45, 0, 0];
        let d = decode(Bytes::new(&h, h.len())).unwrap().unwrap();
        assert_eq!((d.kind, d.id, d.inner.ethertype, d.inner.bytes.data), (Kind::Pppoe, Some(0x11), 0x0800, &[0x45u8][..]));
        let lcp = [0x11, 0, 0, 0x11, 0, 4, 0xc0, 0x21, 1, 1];
        assert!(decode(Bytes::new(&lcp, lcp.len())).unwrap().is_none());
    }
}
