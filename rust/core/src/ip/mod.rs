//! IPv4 and IPv6 headers: borrowed views that check lengths once.
pub mod lowpan;
pub mod v4;
pub mod v6;

use std::net::IpAddr;

use crate::error::DecodeError;

pub use crate::wire::{PROTO_AH, PROTO_ICMP, PROTO_ICMPV6, PROTO_SCTP, PROTO_TCP, PROTO_UDP, PROTO_UDPLITE};

/// Where a fragment sits in its datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    pub id: u32,
    /// Offset of this fragment's payload in the datagram's payload, in bytes.
    pub offset: u32,
    pub more: bool,
}

/// A decoded IP header and the upper-layer bytes it carries.
#[derive(Debug, Clone, Copy)]
pub struct IpPacket<'a> {
    pub version: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    /// IPv4 type of service (DSCP and ECN), IPv6 traffic class.
    pub tos: u8,
    /// IPv4 identification and don't-fragment flag (0 and false for IPv6, which has neither).
    pub ident: u16,
    pub df: bool,
    /// The upper-layer protocol (after IPv6 extension headers; of the fragment for fragments).
    pub proto: u8,
    /// IP header bytes in front of `payload` (IPv6: fixed header plus extension headers).
    pub header_len: usize,
    /// Upper-layer bytes captured, trimmed to the declared length.
    pub payload: &'a [u8],
    /// Upper-layer length the header declares (may exceed what was captured).
    pub payload_len: usize,
    /// Set when this packet is a fragment (IPv6 atomic fragments are not).
    pub fragment: Option<Fragment>,
    /// An IPv6 fragment header with offset 0 and M = 0 (RFC 6946) was walked through.
    pub atomic_fragment: Option<AtomicFragment>,
}

/// An IPv6 atomic fragment header (RFC 6946): offset 0 and M = 0, so the packet is whole and is
/// decoded through it; it is still a fragment header worth a `fragments` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtomicFragment {
    pub id: u32,
    /// The fragment header's next header.
    pub next: u8,
    /// Where the fragment header ends, in bytes from the start of the data walked (of the IPv6
    /// header, in an `IpPacket`).
    pub end: usize,
}

impl IpPacket<'_> {
    /// Length of the whole datagram as the header declares it.
    pub fn datagram_len(&self) -> usize {
        self.header_len + self.payload_len
    }
}

/// Decodes the IP packet in `data`. `wire_len` is its length on the wire (from the record's
/// original length): a header claiming more than the wire carried is believed only up to it, as
/// Wireshark does.
pub fn decode(ethertype: u16, data: &[u8], wire_len: usize, max_ext_headers: usize) -> Result<IpPacket<'_>, DecodeError> {
    let wire_len = wire_len.max(data.len());
    match ethertype {
        crate::wire::ETHERTYPE_IPV4 => v4::decode(data, wire_len),
        _ => v6::decode(data, wire_len, max_ext_headers),
    }
}

/// An IPv4 packet with the IPsec authentication header (RFC 4302) in front of its payload seen
/// as the packet that header protects (IPv6 walks AH with its other extension headers).
pub fn skip_ah<'a>(ip: &IpPacket<'a>) -> Result<IpPacket<'a>, DecodeError> {
    let hdr = ip.payload.get(..2).ok_or(DecodeError::Truncated { layer: "IPsec AH", need: 2, have: ip.payload.len() })?;
    let len = (usize::from(hdr[1]) + 2) * 4;
    if ip.payload.len() < len {
        return Err(DecodeError::Truncated { layer: "IPsec AH", need: len, have: ip.payload.len() });
    }
    Ok(IpPacket {
        proto: hdr[0],
        header_len: ip.header_len + len,
        payload: &ip.payload[len..],
        payload_len: ip.payload_len.saturating_sub(len),
        ..*ip
    })
}

/// What an ICMP error quotes of the datagram that caused it. Every field is best effort: the
/// quote is often cut short.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quoted {
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub proto: Option<u8>,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    /// The sequence number of a quoted TCP header (its bytes 4 to 8).
    pub seq: Option<u32>,
}

pub fn quoted(data: &[u8]) -> Option<Quoted> {
    match data.first()? >> 4 {
        4 => v4::quoted(data),
        6 => v6::quoted(data),
        _ => None,
    }
}

/// Ports of a quoted transport header, when the protocol has them at its start.
fn ports(proto: u8, transport: &[u8]) -> (Option<u16>, Option<u16>) {
    match proto {
        PROTO_TCP | PROTO_UDP | PROTO_SCTP | PROTO_UDPLITE if transport.len() >= 4 => (
            Some(u16::from_be_bytes([transport[0], transport[1]])),
            Some(u16::from_be_bytes([transport[2], transport[3]])),
        ),
        _ => (None, None),
    }
}

/// The sequence number of a quoted TCP header, when the quote reaches it.
fn quoted_seq(proto: u8, transport: &[u8]) -> Option<u32> {
    if proto == PROTO_TCP { crate::wire::be32(transport, 4) } else { None }
}

/// `sum` plus the 16-bit one's-complement sum (RFC 1071) of `data`; callers fold and complement.
pub fn ones_sum(data: &[u8], sum: u64) -> u64 {
    // Summed as little-endian 32-bit words, folded, and byte-swapped once: the one's complement
    // sum is independent of byte order (RFC 1071 2(B)), and 32-bit words fold to the same sum
    // as their 16-bit halves (2^16 = 1 modulo 0xffff). No byte swap per word, and the loop
    // vectorises. A record's words cannot overflow 64 bits.
    let (words, rest) = data.as_chunks::<4>();
    let mut le: u64 = words.iter().map(|&w| u64::from(u32::from_le_bytes(w))).sum();
    let mut pairs = rest.chunks_exact(2);
    for c in &mut pairs {
        le += u64::from(u16::from_le_bytes([c[0], c[1]]));
    }
    if let [last] = pairs.remainder() {
        le += u64::from(*last);
    }
    sum + u64::from(fold(le).swap_bytes())
}

/// A one's complement sum folded to 16 bits.
fn fold(mut s: u64) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// True when the data (with its checksum field in place) sums to 0xffff.
pub fn checksum_valid(sum: u64) -> bool {
    fold(sum) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ah_is_skipped_to_what_it_protects() {
        let mut packet = vec![0x45, 0, 0, 45, 0, 0, 0, 0, 64, PROTO_AH, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        packet.extend_from_slice(&[PROTO_ICMP, 4, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 1]);
        packet.extend_from_slice(&[0; 12]);
        packet.push(8);
        let ip = v4::decode(&packet, packet.len()).unwrap();
        let inner = skip_ah(&ip).unwrap();
        assert_eq!((inner.proto, inner.header_len, inner.payload, inner.payload_len), (PROTO_ICMP, 44, &[8u8][..], 1));
        let cut = v4::decode(&packet[..30], packet.len()).unwrap();
        assert_eq!(skip_ah(&cut).unwrap_err(), DecodeError::Truncated { layer: "IPsec AH", need: 24, have: 10 });
    }

    #[test]
    fn rfc1071_example() {
        // The worked example of RFC 1071 section 3: sum 0xddf2 before complement.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        let mut s = ones_sum(&data, 0);
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        assert_eq!(s, 0xddf2);
        let mut with_checksum = data.to_vec();
        with_checksum.extend_from_slice(&(!0xddf2u16).to_be_bytes());
        assert!(checksum_valid(ones_sum(&with_checksum, 0)));
        assert!(checksum_valid(ones_sum(&[0xff, 0xff, 0x00], 0)));
    }

    #[test]
    fn word_sums_fold_as_sixteen_bit_sums() {
        let fold = |mut s: u64| {
            while s > 0xffff {
                s = (s & 0xffff) + (s >> 16);
            }
            s
        };
        let by_halves = |data: &[u8]| {
            let padded: Vec<u8> = data.iter().copied().chain((data.len() % 2 == 1).then_some(0)).collect();
            fold(padded.chunks(2).map(|w| u64::from(u16::from_be_bytes([w[0], w[1]]))).sum())
        };
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..300 {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    if seed.is_multiple_of(5) { 0xff } else { seed as u8 }
                })
                .collect();
            assert_eq!(fold(ones_sum(&data, 0)), by_halves(&data), "{len} bytes");
        }
        assert_eq!(fold(ones_sum(&[0xff; 64], 0)), 0xffff);
    }
}
