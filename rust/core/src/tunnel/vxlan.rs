//! VXLAN (RFC 7348) and Geneve (RFC 8926): a virtual network id, then an Ethernet frame (or, for
//! Geneve, whatever its protocol type says).
use super::{Bytes, Decap, Inner, Kind, Step, ETHERNET};
use crate::wire::{ethertype_field, u16_at, u32_at};

pub fn vxlan(b: Bytes) -> Step {
    // Wireshark decodes the frame whatever the flags say; so do we.
    let Some(h) = b.header("VXLAN", 8)? else { return Ok(None) };
    Ok(Some(Decap { kind: Kind::Vxlan, id: Some(u32_at(h, 4) >> 8), inner: Inner { ethertype: ETHERNET, bytes: b.skip(8) }, vlan: None }))
}

pub fn geneve(b: Bytes) -> Step {
    let Some(h) = b.header("Geneve", 8)? else { return Ok(None) };
    let len = 8 + usize::from(h[0] & 0x3f) * 4;
    if b.header("Geneve", len)?.is_none() {
        return Ok(None);
    }
    Ok(Some(Decap { kind: Kind::Geneve, id: Some(u32_at(h, 4) >> 8), inner: Inner { ethertype: ethertype_field(u16_at(h, 2)), bytes: b.skip(len) }, vlan: None }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DecodeError;

    #[test]
    fn vni_and_options() {
        let h = [0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0, 0xee];
        let d = vxlan(Bytes::new(&h, h.len())).unwrap().unwrap();
        assert_eq!((d.kind, d.id, d.inner.ethertype, d.inner.bytes.data), (Kind::Vxlan, Some(0x123456), ETHERNET, &[0xeeu8][..]));
        let h = [0x01, 0, 0x08, 0, 0, 0, 0x7b, 0, 1, 2, 3, 4, 0x45];
        let d = geneve(Bytes::new(&h, h.len())).unwrap().unwrap();
        assert_eq!((d.kind, d.id, d.inner.ethertype, d.inner.bytes.data), (Kind::Geneve, Some(123), 0x0800, &[0x45u8][..]));
        assert_eq!(geneve(Bytes::new(&h[..10], 13)).unwrap_err(), DecodeError::Truncated { layer: "Geneve", need: 12, have: 10 });
        assert!(vxlan(Bytes::new(&h[..3], 3)).unwrap().is_none());
    }
}
