//! GTP T-PDUs (3GPP TS 29.060 and 29.281): GTPv1 with its optional fields and extension headers,
//! and GTPv0's 20-byte header. Signalling messages and GTP' proper (protocol type 0) carry no IP.
use super::{ip_by_version, Bytes, Decap, Inner, Kind, Step};
use crate::wire::{u16_at, u32_at};

const T_PDU: u8 = 0xff;

pub fn gtp_u(b: Bytes) -> Step {
    gtp(b, Kind::GtpU)
}

/// UDP 3386, where Wireshark calls the same headers GTP'.
pub fn gtp_prime(b: Bytes) -> Step {
    gtp(b, Kind::GtpPrime)
}

fn gtp(b: Bytes, kind: Kind) -> Step {
    let Some(h) = b.header("GTP", 8)? else { return Ok(None) };
    let (flags, message, length) = (h[0], h[1], usize::from(u16_at(h, 2)));
    if flags & 0x10 == 0 || message != T_PDU {
        return Ok(None);
    }
    let (header, id, fixed) = match flags >> 5 {
        1 => {
            let mut len = 8;
            if flags & 0x07 != 0 {
                let Some(h) = b.header("GTP", 12)? else { return Ok(None) };
                len = 12;
                let mut next = h[11];
                while next != 0 {
                    let Some(ext) = b.header("GTP", len + 1)? else { return Ok(None) };
                    let ext_len = usize::from(ext[len]) * 4;
                    if ext_len == 0 {
                        return Ok(None);
                    }
                    let Some(ext) = b.header("GTP", len + ext_len)? else { return Ok(None) };
                    next = ext[len + ext_len - 1];
                    len += ext_len;
                }
            }
            (len, Some(u32_at(h, 4)), 8)
        }
        0 => {
            if b.header("GTP", 20)?.is_none() {
                return Ok(None);
            }
            (20, None, 20)
        }
        _ => return Ok(None),
    };
    // The length field counts the bytes after the fixed header.
    let Some(end) = (fixed + length).checked_sub(header) else { return Ok(None) };
    let payload = b.skip(header).limit(end);
    // Wireshark's default: IPv4 or IPv6 by the first nibble (PPP T-PDUs are left alone).
    let Some(ethertype) = ip_by_version(payload) else { return Ok(None) };
    Ok(Some(Decap { kind, id, inner: Inner { ethertype, bytes: payload }, vlan: None }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DecodeError;

    #[test]
    fn teid_and_extension_headers() {
        let h = [0x34, 0xff, 0, 13, 0, 0, 0x12, 0x34, 0, 9, 0, 0x85, 1, 0, 9, 0, 0x60];
        let d = gtp_u(Bytes::new(&h, h.len())).unwrap().unwrap();
        assert_eq!((d.kind, d.id, d.inner.ethertype, d.inner.bytes.data), (Kind::GtpU, Some(0x1234), 0x86dd, &[0x60u8][..]));
        assert_eq!(gtp_u(Bytes::new(&h[..14], 40)).unwrap_err(), DecodeError::Truncated { layer: "GTP", need: 16, have: 14 });
    }

    #[test]
    fn version_zero_and_not_a_tpdu() {
        let mut h = vec![0x1e, 0xff, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff];
        h.extend_from_slice(&[0; 8]);
        h.push(0x45);
        let d = gtp_prime(Bytes::new(&h, h.len())).unwrap().unwrap();
        assert_eq!((d.kind, d.id, d.inner.bytes.data), (Kind::GtpPrime, None, &[0x45u8][..]));
        h[1] = 1; // echo request
        assert!(gtp_prime(Bytes::new(&h, h.len())).unwrap().is_none());
    }
}
