//! VXLAN-GPE (the generic protocol extension of VXLAN, UDP 4790): VXLAN's header with a next
//! protocol field (NSH's registry: IPv4, IPv6, Ethernet, NSH) in place of an implied Ethernet frame.
use super::{nsh, Bytes, Decap, Inner, Kind, Step};
use crate::wire::u32_at;

pub fn decode(b: Bytes) -> Step {
    // As Wireshark, the next protocol decides whatever the P flag says.
    let Some(h) = b.header("VXLAN-GPE", 8)? else { return Ok(None) };
    let Some(ethertype) = nsh::next_protocol(h[3]) else { return Ok(None) };
    Ok(Some(Decap { kind: Kind::VxlanGpe, id: Some(u32_at(h, 4) >> 8), inner: Inner { ethertype, bytes: b.skip(8) }, vlan: None }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DecodeError;
    use crate::wire::{ETHERTYPE_IPV6, ETHERTYPE_NSH};

    #[test]
    fn vni_and_next_protocol() {
        let h = [0x0c, 0, 0, 0x02, 0, 0, 0x05, 0, 0x60];
        let d = decode(Bytes::new(&h, h.len())).unwrap().unwrap();
        assert_eq!((d.kind, d.id, d.inner.ethertype, d.inner.bytes.data), (Kind::VxlanGpe, Some(5), ETHERTYPE_IPV6, &[0x60u8][..]));
        let h = [0x0c, 0, 0, 0x04, 0, 0, 0x05, 0];
        assert_eq!(decode(Bytes::new(&h, h.len())).unwrap().unwrap().inner.ethertype, ETHERTYPE_NSH);
        assert!(decode(Bytes::new(&[0x08, 0, 0, 0, 0, 0, 5, 0, 0xee], 9)).unwrap().is_none());
        assert_eq!(decode(Bytes::new(&h[..7], 20)).unwrap_err(), DecodeError::Truncated { layer: "VXLAN-GPE", need: 8, have: 7 });
    }
}
