//! Packet logs of host firewalls: Linux NFLOG, OpenBSD PFLOG and ENC (IPsec before encryption).
use super::{bsd_family_ethertype, truncated, LinkFrame};
use crate::error::DecodeError;
use crate::wire::{le32, ETHERTYPE_IPV4, ETHERTYPE_IPV6};

const NFULA_PAYLOAD: u16 = 9;

/// NFLOG: family, version, resource id, then TLVs (length counting its 4-byte header, type; both
/// in the host's byte order, padded to 4 bytes) of which type 9 is the packet.
pub fn nflog(data: &[u8]) -> Result<LinkFrame<'_>, DecodeError> {
    let family = *data.first().ok_or_else(|| truncated("NFLOG", 4, data.len()))?;
    let ethertype = match family {
        2 => ETHERTYPE_IPV4,
        10 => ETHERTYPE_IPV6,
        _ => 0,
    };
    let mut at = 4;
    let mut little_endian = None;
    loop {
        let tlv: [u8; 4] = data.get(at..at + 4).and_then(|t| t.try_into().ok()).ok_or_else(|| truncated("NFLOG", at + 4, data.len()))?;
        // As Wireshark, the byte order is the one in which the first length fits the record.
        let le = *little_endian.get_or_insert_with(|| {
            let len = usize::from(u16::from_le_bytes([tlv[0], tlv[1]]));
            (4..=data.len() - at).contains(&len)
        });
        let word = |i: usize| if le { u16::from_le_bytes([tlv[i], tlv[i + 1]]) } else { u16::from_be_bytes([tlv[i], tlv[i + 1]]) };
        let (len, kind) = (usize::from(word(0)), word(2) & 0x7fff);
        if len < 4 {
            return Err(truncated("NFLOG TLV", at + 4, data.len()));
        }
        if kind == NFULA_PAYLOAD {
            let payload = data.get(at + 4..at + len).ok_or_else(|| truncated("NFLOG", at + len, data.len()))?;
            return Ok(LinkFrame { ethertype, payload, ..Default::default() });
        }
        at += len.next_multiple_of(4);
    }
}

/// PFLOG: the header's length in its first byte (rounded up to 4 bytes), the address family next.
pub fn pflog(data: &[u8]) -> Result<LinkFrame<'_>, DecodeError> {
    let [len, family, ..] = *data else { return Err(truncated("PFLOG", 2, data.len())) };
    let len = usize::from(len).next_multiple_of(4);
    let payload = data.get(len..).ok_or_else(|| truncated("PFLOG", len, data.len()))?;
    Ok(LinkFrame { ethertype: bsd_family_ethertype(u32::from(family)), payload, ..Default::default() })
}

/// ENC: address family (host byte order, as BSD loopback), SPI and flags: 12 bytes.
pub fn enc(data: &[u8]) -> Result<LinkFrame<'_>, DecodeError> {
    let family = le32(data, 0).filter(|_| data.len() >= 12).ok_or_else(|| truncated("OpenBSD ENC", 12, data.len()))?;
    Ok(LinkFrame { ethertype: bsd_family_ethertype(family), payload: data.get(12..).unwrap_or_default(), ..Default::default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nflog_finds_the_payload_tlv_in_either_byte_order() {
        let mut f = vec![2, 0, 0, 1, 5, 0, 1, 0, 0xee, 0, 0, 0, 5, 0, 9, 0, 0x45];
        assert_eq!(nflog(&f).unwrap().payload, &[0x45]);
        assert_eq!(nflog(&f).unwrap().ethertype, ETHERTYPE_IPV4);
        f[4..8].copy_from_slice(&[0, 5, 0, 1]);
        f[12..16].copy_from_slice(&[0, 5, 0, 9]);
        assert_eq!(nflog(&f).unwrap().payload, &[0x45]);
        assert!(matches!(nflog(&f[..14]), Err(DecodeError::Truncated { .. })));
        assert!(matches!(nflog(&[2, 0, 0, 1, 0, 0, 9, 0]), Err(DecodeError::Truncated { .. })));
    }

    #[test]
    fn pflog_and_enc() {
        let mut p = vec![61, 24];
        p.resize(64, 0);
        p.push(0x60);
        assert_eq!((pflog(&p).unwrap().ethertype, pflog(&p).unwrap().payload), (ETHERTYPE_IPV6, &[0x60u8][..]));
        assert!(matches!(pflog(&p[..63]), Err(DecodeError::Truncated { need: 64, .. })));
        let e = [0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0x45];
        assert_eq!((enc(&e).unwrap().ethertype, enc(&e).unwrap().payload), (ETHERTYPE_IPV4, &[0x45u8][..]));
        assert!(matches!(enc(&e[..11]), Err(DecodeError::Truncated { need: 12, .. })));
    }
}
