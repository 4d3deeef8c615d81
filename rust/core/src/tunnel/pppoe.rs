//! PPPoE sessions (RFC 2516): a session id, then a PPP frame of the length the header gives.
use super::{Bytes, Decap, Inner, Kind, Step};
use crate::wire::{self, u16_at};

pub fn decode(b: Bytes) -> Step {
    let Some(h) = b.header("PPPoE", 8)? else { return Ok(None) };
    let (session, length) = (u32::from(u16_at(h, 2)), usize::from(u16_at(h, 4)));
    let frame = b.skip(6).limit(length);
    match wire::ppp(frame.data) {
        Ok((ethertype, len)) if ethertype != 0 => {
            Ok(Some(Decap { kind: Kind::Pppoe, id: Some(session), inner: Inner { ethertype, bytes: frame.skip(len) }, vlan: None }))
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
