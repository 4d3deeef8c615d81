//! Cisco MetaData as a link carries it (ethertype 0x8909): version, length, the SGT option and
//! the security group tag, then the ethertype of what follows (8 bytes in all). The tag groups
//! hosts for policy; it names no tunnel, so the row gets no tunnel id from it. (Inside GRE the
//! header puts the ethertype first; `gre` reads that one.)
use super::{Bytes, Decap, Inner, Kind, Step};
use crate::wire::{ethertype_field, u16_at};

pub fn decode(b: Bytes) -> Step {
    let Some(h) = b.header("Cisco MetaData", 8)? else { return Ok(None) };
    Ok(Some(Decap { kind: Kind::Cmd, id: None, inner: Inner { ethertype: ethertype_field(u16_at(h, 6)), bytes: b.skip(8) }, vlan: None }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DecodeError;

    #[test]
    fn the_ethertype_comes_last() {
        let h = [1, 1, 0, 1, 0, 0x28, 0x86, 0xdd, 0x60];
        let d = decode(Bytes::new(&h, h.len())).unwrap().unwrap();
        assert_eq!((d.kind, d.id, d.inner.ethertype, d.inner.bytes.data), (Kind::Cmd, None, 0x86dd, &[0x60u8][..]));
        assert_eq!(decode(Bytes::new(&h[..7], 9)).unwrap_err(), DecodeError::Truncated { layer: "Cisco MetaData", need: 8, have: 7 });
    }
}
