//! Wire constants and byte helpers shared by the decoders: the bottom of the house. `link/`, `ip/`
//! and `tunnel/` all build on this module and it builds on none of them, so a new encapsulation
//! finds here the numbers and readers it may use, whichever layer it lives in.

// Ethertypes (IEEE registry), as link layers and tunnels name what they carry.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
/// Transparent Ethernet bridging: a whole Ethernet frame follows.
pub const ETHERTYPE_TEB: u16 = 0x6558;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const ETHERTYPE_QINQ: u16 = 0x88A8;
pub const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
pub const ETHERTYPE_MACSEC: u16 = 0x88E5;
pub const ETHERTYPE_MPLS: u16 = 0x8847;
pub const ETHERTYPE_MPLS_MULTICAST: u16 = 0x8848;
pub const ETHERTYPE_PPPOE_DISCOVERY: u16 = 0x8863;
pub const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
pub const ETHERTYPE_PPP: u16 = 0x880B;
pub const ETHERTYPE_CISCO_METADATA: u16 = 0x8909;
pub const ETHERTYPE_NSH: u16 = 0x894F;
/// NHRP as GRE names it (RFC 2332 section 5: its protocol type 0x2001).
pub const ETHERTYPE_NHRP: u16 = 0x2001;

// Not ethertypes: a type field below 0x0600 is an 802.3 length, never a type on the wire, so
// these name, as ETHERTYPE_TEB does Ethernet, the whole frames without an ethertype that tunnels
// carry. A type field read from the wire goes through `ethertype_field`, which never yields one.
/// An IEEE 802.11 frame (TZSP's encapsulation 18).
pub const FRAME_IEEE80211: u16 = 0x0001;
/// An IEEE 802.11 frame with its two frame control bytes swapped: CAPWAP's native frames as
/// Wireshark reads them by default (its "Swap Frame Control" preference, on).
pub const FRAME_IEEE80211_SWAPPED: u16 = 0x0002;
/// An 802.11 frame behind a Prism header (TZSP's encapsulation 119).
pub const FRAME_PRISM: u16 = 0x0003;
/// An 802.11 frame behind an AVS header (TZSP's encapsulation 127).
pub const FRAME_AVS: u16 = 0x0004;
/// A CAPWAP data fragment, its CAPWAP header included: for the reassembler, never a frame.
pub const FRAME_CAPWAP_FRAGMENT: u16 = 0x0005;
/// An IEEE 802.15.4 frame ending with its 16-bit FCS (ZEP's CRC mode, as link type 195).
pub const FRAME_IEEE802154: u16 = 0x0006;
/// An IEEE 802.15.4 frame whose last two bytes are TI CC24xx metadata in place of the FCS (RSSI,
/// then the CRC-ok bit and the LQI): ZEP's LQI mode, Wireshark's `wpan_cc24xx`.
pub const FRAME_IEEE802154_CC24XX: u16 = 0x0007;
const MIN_ETHERTYPE: u16 = 0x0600;

/// The ethertype a type field read from the wire names: 0 (nothing decoded) below 0x0600, so that
/// it never names one of the frames above.
#[inline]
pub fn ethertype_field(field: u16) -> u16 {
    if field < MIN_ETHERTYPE { 0 } else { field }
}
/// 6LoWPAN (RFC 7973): a 6LoWPAN dispatch follows (Ethernet); the link layers of IEEE 802.15.4
/// give it too, for their whole frame.
pub const ETHERTYPE_LOWPAN: u16 = 0xA0ED;

// IP protocol numbers (IANA), as IPv4's protocol and IPv6's next header give them.
pub const PROTO_HOP_BY_HOP: u8 = 0;
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_IPIP: u8 = 4;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_IPV6: u8 = 41;
pub const PROTO_ROUTING: u8 = 43;
pub const PROTO_FRAGMENT: u8 = 44;
pub const PROTO_GRE: u8 = 47;
pub const PROTO_AH: u8 = 51;
pub const PROTO_ICMPV6: u8 = 58;
pub const PROTO_NO_NEXT: u8 = 59;
pub const PROTO_DEST_OPTS: u8 = 60;
pub const PROTO_PIM: u8 = 103;
pub const PROTO_L2TP: u8 = 115;
pub const PROTO_SCTP: u8 = 132;
pub const PROTO_MOBILITY: u8 = 135;
pub const PROTO_UDPLITE: u8 = 136;
pub const PROTO_MPLS_IN_IP: u8 = 137;
pub const PROTO_HIP: u8 = 139;
pub const PROTO_SHIM6: u8 = 140;
/// An Ethernet frame (RFC 8986's segment routing End.DX2 and friends).
pub const PROTO_ETHERNET: u8 = 143;

/// The `N` bytes at `at`, if they are there: the reader under both byte orders' words.
#[inline(always)]
fn bytes<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// The big-endian 16-bit word at `at`, if the bytes are there.
#[inline(always)]
pub fn be16(b: &[u8], at: usize) -> Option<u16> {
    bytes(b, at).map(u16::from_be_bytes)
}

/// The big-endian 32-bit word at `at`, if the bytes are there.
#[inline(always)]
pub fn be32(b: &[u8], at: usize) -> Option<u32> {
    bytes(b, at).map(u32::from_be_bytes)
}

/// The little-endian 16-bit word at `at` (radio headers, NFLOG), if the bytes are there.
#[inline(always)]
pub fn le16(b: &[u8], at: usize) -> Option<u16> {
    bytes(b, at).map(u16::from_le_bytes)
}

/// The little-endian 32-bit word at `at`, if the bytes are there.
#[inline(always)]
pub fn le32(b: &[u8], at: usize) -> Option<u32> {
    bytes(b, at).map(u32::from_le_bytes)
}

/// The 16-bit word at `at` of a header whose length was checked (0 when it is not there).
#[inline(always)]
pub fn u16_at(b: &[u8], at: usize) -> u16 {
    be16(b, at).unwrap_or(0)
}

/// The 32-bit word at `at` of a header whose length was checked (0 when it is not there).
#[inline(always)]
pub fn u32_at(b: &[u8], at: usize) -> u32 {
    be32(b, at).unwrap_or(0)
}

/// The 6 bytes of a MAC address at `at`.
#[inline(always)]
pub fn mac(b: &[u8], at: usize) -> Option<[u8; 6]> {
    b.get(at..at.checked_add(6)?)?.try_into().ok()
}

/// The IPv6 interface identifier 6LoWPAN derives from an IEEE 802.15.4 short address
/// (RFC 6282 section 3.2.2: 0000:00ff:fe00:XXXX).
#[inline]
pub fn iid_short(address: u16) -> [u8; 8] {
    let [hi, lo] = address.to_be_bytes();
    [0, 0, 0, 0xff, 0xfe, 0, hi, lo]
}

/// The IPv6 interface identifier of an EUI-64: its universal/local bit flipped (RFC 4291).
#[inline]
pub fn iid_eui64(mut eui: [u8; 8]) -> [u8; 8] {
    eui[0] ^= 0x02;
    eui
}

/// The ethertype of an IP packet by its version nibble (for carriers that say "IP" without
/// saying which).
#[inline]
pub fn ip_version_ethertype(first: u8) -> Option<u16> {
    match first >> 4 {
        4 => Some(ETHERTYPE_IPV4),
        6 => Some(ETHERTYPE_IPV6),
        _ => None,
    }
}

/// The ethertype of a PPP protocol number (RFC 1661) that carries something decoded further
/// (IP, MPLS); 0 for the others (LCP, IPCP, compression...).
#[inline]
pub fn ppp_protocol_ethertype(protocol: u16) -> u16 {
    match protocol {
        0x21 => ETHERTYPE_IPV4,
        0x57 => ETHERTYPE_IPV6,
        0x281 => ETHERTYPE_MPLS,
        0x283 => ETHERTYPE_MPLS_MULTICAST,
        _ => 0,
    }
}

/// A PPP header: with or without the HDLC address/control bytes (0xff 0x03) and with a 1- or
/// 2-byte protocol field. The ethertype it carries (0 when not decoded further) and the header's
/// length; `None` when `data` is shorter than the header, with the length it needed.
#[inline]
pub fn ppp(data: &[u8]) -> Result<(u16, usize), usize> {
    let at = if data.starts_with(&[0xff, 0x03]) { 2 } else { 0 };
    let first = *data.get(at).ok_or(at + 1)?;
    if first & 1 == 1 {
        return Ok((ppp_protocol_ethertype(u16::from(first)), at + 1));
    }
    let protocol = be16(data, at).ok_or(at + 2)?;
    Ok((ppp_protocol_ethertype(protocol), at + 2))
}

/// An 802.2 LLC header with SNAP (AA AA 03, an RFC 1042 or 802.1H OUI, an ethertype; 8 bytes):
/// the ethertype, `None` for other LLC payloads (not decoded further), or the bytes it needed.
#[inline]
pub fn llc_snap(data: &[u8]) -> Result<Option<u16>, usize> {
    match data.get(..3) {
        None if [0xaa, 0xaa, 0x03].starts_with(data) => Err(3),
        Some([0xaa, 0xaa, 0x03]) => match (data.get(3..6), be16(data, 6)) {
            (Some([0, 0, 0] | [0, 0, 0xf8]), Some(ethertype)) => Ok(Some(ethertype)),
            (Some(_), Some(_)) => Ok(None),
            _ => Err(8),
        },
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_read_only_what_is_there() {
        let b = [1, 2, 3, 4, 5];
        assert_eq!((be16(&b, 3), be16(&b, 4), be16(&b, usize::MAX)), (Some(0x0405), None, None));
        assert_eq!((be32(&b, 1), be32(&b, 2)), (Some(0x0203_0405), None));
        assert_eq!((u16_at(&b, 4), u32_at(&b, 0)), (0, 0x0102_0304));
        assert_eq!(mac(&[0; 6], 0), Some([0; 6]));
        assert_eq!(mac(&[0; 6], 1), None);
        assert_eq!((le16(&b, 3), le32(&b, 1), le32(&b, 2)), (Some(0x0504), Some(0x0504_0302), None));
    }

    #[test]
    fn type_fields_never_name_a_frame() {
        for frame in [FRAME_IEEE80211, FRAME_IEEE80211_SWAPPED, FRAME_PRISM, FRAME_AVS, 0x05ff] {
            assert_eq!(ethertype_field(frame), 0);
        }
        assert_eq!((ethertype_field(ETHERTYPE_TEB), ethertype_field(MIN_ETHERTYPE)), (ETHERTYPE_TEB, MIN_ETHERTYPE));
    }

    #[test]
    fn llc_snap_headers() {
        assert_eq!(llc_snap(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]), Ok(Some(ETHERTYPE_IPV4)));
        assert_eq!(llc_snap(&[0xaa, 0xaa, 0x03, 0, 0, 0xf8, 0x86, 0xdd]), Ok(Some(ETHERTYPE_IPV6)));
        assert_eq!(llc_snap(&[0xaa, 0xaa, 0x03, 0, 0x0b, 0x85, 0, 1]), Ok(None));
        assert_eq!(llc_snap(&[0x42, 0x42, 0x03]), Ok(None));
        assert_eq!((llc_snap(&[0xaa, 0xaa]), llc_snap(&[0xaa, 0xaa, 0x03, 0])), (Err(3), Err(8)));
    }

    #[test]
    fn ppp_headers() {
        assert_eq!(ppp(&[0xff, 0x03, 0x00, 0x21, 0x45]), Ok((ETHERTYPE_IPV4, 4)));
        assert_eq!(ppp(&[0x57, 0x60]), Ok((ETHERTYPE_IPV6, 1)));
        assert_eq!(ppp(&[0xc0, 0x21]), Ok((0, 2)));
        assert_eq!(ppp(&[0xff, 0x03, 0x00]), Err(4));
        assert_eq!(ppp(&[]), Err(1));
    }
}
