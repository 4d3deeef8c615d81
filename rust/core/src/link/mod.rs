//! Link layers: from a frame of a given link type to the network-layer bytes it carries.
mod firewall_logs;
mod ieee80211;
pub mod ieee802154;
mod wan;

use crate::error::DecodeError;
use crate::wire::{be16, mac, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_LOWPAN, ETHERTYPE_MACSEC, ETHERTYPE_QINQ, ETHERTYPE_QINQ_OLD, ETHERTYPE_VLAN, FRAME_AVS, FRAME_IEEE80211, FRAME_IEEE80211_SWAPPED, FRAME_IEEE802154, FRAME_IEEE802154_CC24XX, FRAME_PRISM};

/// LINKTYPE_* values (pcap-linktype(7)) and the DLT aliases some platforms write.
pub mod linktype {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    pub const PPP: u32 = 9;
    /// DLT_ATM_RFC1483 as BSDs write it; LINKTYPE_ATM_RFC1483 is 100.
    pub const ATM_RFC1483_DLT: u32 = 11;
    pub const RAW_BSD_12: u32 = 12;
    pub const RAW_BSD_14: u32 = 14;
    pub const PPP_HDLC: u32 = 50;
    pub const ATM_RFC1483: u32 = 100;
    pub const RAW: u32 = 101;
    pub const C_HDLC: u32 = 104;
    pub const IEEE802_11: u32 = 105;
    pub const FRELAY: u32 = 107;
    pub const LOOP: u32 = 108;
    pub const ENC: u32 = 109;
    pub const LINUX_SLL: u32 = 113;
    pub const PFLOG: u32 = 117;
    pub const PRISM: u32 = 119;
    pub const RADIOTAP: u32 = 127;
    pub const ARCNET_LINUX: u32 = 129;
    pub const AVS: u32 = 163;
    pub const PPI: u32 = 192;
    pub const IEEE802_15_4_WITHFCS: u32 = 195;
    pub const IEEE802_15_4_NONASK_PHY: u32 = 215;
    pub const IPNET: u32 = 226;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const IEEE802_15_4_NOFCS: u32 = 230;
    pub const NFLOG: u32 = 239;
    pub const IPOIB: u32 = 242;
    pub const LINUX_SLL2: u32 = 276;
    pub const IEEE802_15_4_TAP: u32 = 283;
}

/// The network layer inside a frame, with the link facts the tables keep.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkFrame<'a> {
    /// An ethertype (IPv4 and IPv6 are the ones decoded further).
    pub ethertype: u16,
    pub payload: &'a [u8],
    /// The outermost 802.1Q/802.1ad VLAN id.
    pub vlan: Option<u16>,
    /// All VLAN ids folded together: keeps reassembly of different VLANs apart.
    pub vlan_key: u32,
    pub src_mac: Option<[u8; 6]>,
    pub dst_mac: Option<[u8; 6]>,
}

/// The SecTAG's TCI bits E and C (IEEE 802.1AE 9.5).
const MACSEC_ENCRYPTED: u8 = 0x08;
const MACSEC_CHANGED: u8 = 0x04;

pub(super) fn truncated(layer: &'static str, need: usize, have: usize) -> DecodeError {
    DecodeError::Truncated { layer, need, have }
}

/// Network-layer payload of `data` for a frame of link type `linktype`.
pub fn decode(linktype: u32, data: &[u8]) -> Result<LinkFrame<'_>, DecodeError> {
    use linktype::*;
    match linktype {
        ETHERNET => ethernet(data),
        RAW | RAW_BSD_12 | RAW_BSD_14 | IPV4 | IPV6 => raw_ip(data, 0),
        NULL | LOOP => null_loopback(data),
        LINUX_SLL => {
            let proto = be16(data, 14).ok_or_else(|| truncated("Linux SLL", 16, data.len()))?;
            let halen = be16(data, 4).unwrap_or(0);
            let src_mac = if halen == 6 { mac(data, 6) } else { None };
            let payload = data.get(16..).unwrap_or_default();
            Ok(LinkFrame { ethertype: proto, payload, src_mac, ..Default::default() })
        }
        LINUX_SLL2 => {
            let payload = data.get(20..).ok_or_else(|| truncated("Linux SLL2", 20, data.len()))?;
            let proto = be16(data, 0).unwrap_or(0);
            let src_mac = if data.get(11) == Some(&6) { mac(data, 12) } else { None };
            Ok(LinkFrame { ethertype: proto, payload, src_mac, ..Default::default() })
        }
        PPP | PPP_HDLC => ppp(data),
        C_HDLC => {
            let proto = be16(data, 2).ok_or_else(|| truncated("Cisco HDLC", 4, data.len()))?;
            Ok(LinkFrame { ethertype: proto, payload: data.get(4..).unwrap_or_default(), ..Default::default() })
        }
        IPNET => {
            let payload = data.get(24..).ok_or_else(|| truncated("IPNET", 24, data.len()))?;
            // Solaris address families: 2 = AF_INET, 26 = AF_INET6.
            let ethertype = match data.get(1) {
                Some(2) => ETHERTYPE_IPV4,
                Some(26) => ETHERTYPE_IPV6,
                _ => 0,
            };
            Ok(LinkFrame { ethertype, payload, ..Default::default() })
        }
        ARCNET_LINUX => arcnet_linux(data),
        IPOIB => ip_over_infiniband(data),
        IEEE802_11 => ieee80211::ieee80211(data),
        RADIOTAP => ieee80211::radiotap(data),
        PPI => ieee80211::ppi(data),
        PRISM => ieee80211::prism(data),
        AVS => ieee80211::avs(data),
        NFLOG => firewall_logs::nflog(data),
        PFLOG => firewall_logs::pflog(data),
        ENC => firewall_logs::enc(data),
        FRELAY => wan::frame_relay(data),
        ATM_RFC1483 | ATM_RFC1483_DLT => wan::atm_rfc1483(data),
        // Read further with the record's wire length (where its FCS is), by the pipeline's
        // 6LoWPAN step through `ieee802154::frame`: the payload is the whole record.
        IEEE802_15_4_WITHFCS | IEEE802_15_4_NOFCS | IEEE802_15_4_NONASK_PHY | IEEE802_15_4_TAP => {
            Ok(LinkFrame { ethertype: ETHERTYPE_LOWPAN, payload: data, ..Default::default() })
        }
        crate::source::pcapng::NON_PACKET => Ok(LinkFrame::default()),
        other => Err(DecodeError::UnsupportedLinkType(other)),
    }
}

/// The radio frame a tunnel carries, by the pseudo-ethertype that names it (`wire::FRAME_*`);
/// `None` for any other ethertype.
pub fn radio_frame(frame: u16, data: &[u8]) -> Option<Result<LinkFrame<'_>, DecodeError>> {
    Some(match frame {
        FRAME_IEEE80211 => ieee80211::ieee80211(data),
        FRAME_IEEE80211_SWAPPED => ieee80211::ieee80211_swapped(data),
        FRAME_PRISM => ieee80211::prism(data),
        FRAME_AVS => ieee80211::avs(data),
        _ => return None,
    })
}

/// The 6LoWPAN packet of a frame `decode` gave `ETHERTYPE_LOWPAN`, in a record of
/// `wire_len` bytes.
pub struct Lowpan<'a> {
    pub data: &'a [u8],
    pub wire_len: usize,
    pub ids: crate::ip::lowpan::LinkIds,
    /// The 802.15.4 frame's source PAN id (none behind an ethertype): the key of the contexts it
    /// uses and teaches (6LoWPAN behind an ethertype teaches none).
    pub pan: Option<u16>,
}

/// The 6LoWPAN packet carried by `frame`, decoded from the record `data` of link type
/// `linktype`: an IEEE 802.15.4 data frame's (`None` when it carries none), or RFC 7973's behind
/// an ethertype, with identifiers from the MACs as Wireshark 4.0 derives them (without the
/// U/L flip RFC 2464 would make).
pub fn lowpan<'a>(linktype: u32, data: &'a [u8], wire_len: usize, frame: &LinkFrame<'a>) -> Result<Option<Lowpan<'a>>, DecodeError> {
    use linktype::*;
    if let IEEE802_15_4_WITHFCS | IEEE802_15_4_NOFCS | IEEE802_15_4_NONASK_PHY | IEEE802_15_4_TAP = linktype {
        let mac = ieee802154::frame(linktype, data, wire_len)?;
        return Ok(mac.map(|m| Lowpan { data: m.payload, wire_len: m.payload_wire_len, ids: m.link_ids(), pan: Some(m.src_pan) }));
    }
    let header = data.len() - frame.payload.len();
    Ok(Some(behind_ethertype(frame.payload, wire_len.saturating_sub(header), frame)))
}

/// The 6LoWPAN packet a tunnel carries, `wire_len` bytes on the wire: in an IEEE 802.15.4 frame
/// (`wire::FRAME_IEEE802154*`, read as [`lowpan`] reads the link types), or behind RFC 7973's
/// ethertype in the Ethernet frame `frame`.
pub fn tunnelled_lowpan<'a>(ethertype: u16, data: &'a [u8], wire_len: usize, frame: &LinkFrame) -> Result<Option<Lowpan<'a>>, DecodeError> {
    if ethertype == ETHERTYPE_LOWPAN {
        return Ok(Some(behind_ethertype(data, wire_len, frame)));
    }
    let mac = ieee802154::carried(ethertype, data, wire_len)?;
    Ok(mac.map(|m| Lowpan { data: m.payload, wire_len: m.payload_wire_len, ids: m.link_ids(), pan: Some(m.src_pan) }))
}

/// Whether a tunnel's `ethertype` names a 6LoWPAN packet: an IEEE 802.15.4 frame, or RFC 7973's.
#[inline]
pub fn is_lowpan(ethertype: u16) -> bool {
    ethertype == ETHERTYPE_LOWPAN || is_ieee802154(ethertype)
}

/// Whether a tunnel's `ethertype` names an IEEE 802.15.4 frame (`wire::FRAME_IEEE802154*`).
#[inline]
pub fn is_ieee802154(ethertype: u16) -> bool {
    matches!(ethertype, FRAME_IEEE802154 | FRAME_IEEE802154_CC24XX)
}

/// RFC 7973's 6LoWPAN packet in an Ethernet frame, with identifiers from the MACs.
fn behind_ethertype<'a>(data: &'a [u8], wire_len: usize, frame: &LinkFrame) -> Lowpan<'a> {
    let iid = |m: Option<[u8; 6]>| m.map_or([0; 8], |m| [m[0], m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]]);
    Lowpan { data, wire_len, ids: crate::ip::lowpan::LinkIds { src: iid(frame.src_mac), dst: iid(frame.dst_mac) }, pan: None }
}

/// An Ethernet II frame (no FCS), through any 802.1Q/802.1ad tags and unencrypted MACsec.
#[inline]
pub fn ethernet(data: &[u8]) -> Result<LinkFrame<'_>, DecodeError> {
    if data.len() < 14 {
        return Err(truncated("Ethernet", 14, data.len()));
    }
    let mut frame = LinkFrame { dst_mac: mac(data, 0), src_mac: mac(data, 6), ..Default::default() };
    let mut at = 12;
    loop {
        let ethertype = be16(data, at).ok_or_else(|| truncated("802.1Q tag", at + 2, data.len()))?;
        match ethertype {
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                let tci = be16(data, at + 2).ok_or_else(|| truncated("802.1Q tag", at + 4, data.len()))?;
                let vid = tci & 0x0fff;
                frame.vlan.get_or_insert(vid);
                frame.vlan_key = frame.vlan_key.rotate_left(12) ^ u32::from(vid) ^ 0x1000;
                at += 4;
            }
            ETHERTYPE_MACSEC => {
                // SecTAG: 8 bytes, 16 with an explicit SCI. Encrypted or changed (C bit: the
                // text is not the frame's) payloads stay opaque, as tshark leaves them.
                let tci = *data.get(at + 2).ok_or_else(|| truncated("MACsec", at + 3, data.len()))?;
                if tci & (MACSEC_ENCRYPTED | MACSEC_CHANGED) != 0 {
                    frame.ethertype = ETHERTYPE_MACSEC;
                    frame.payload = data.get(at + 2..).unwrap_or_default();
                    return Ok(frame);
                }
                at += if tci & 0x20 != 0 { 16 } else { 8 };
            }
            _ => {
                frame.ethertype = ethertype;
                frame.payload = data.get(at + 2..).ok_or_else(|| truncated("Ethernet", at + 2, data.len()))?;
                return Ok(frame);
            }
        }
    }
}

/// Raw IP: the version nibble says which.
fn raw_ip(data: &[u8], at: usize) -> Result<LinkFrame<'_>, DecodeError> {
    let payload = data.get(at..).unwrap_or_default();
    let first = *payload.first().ok_or_else(|| truncated("raw IP", at + 1, data.len()))?;
    let ethertype = match first >> 4 {
        4 => ETHERTYPE_IPV4,
        6 => ETHERTYPE_IPV6,
        v => return Err(DecodeError::BadIpVersion(v)),
    };
    Ok(LinkFrame { ethertype, payload, ..Default::default() })
}

/// BSD loopback: a 4-byte address family in the writer's byte order (network order for LOOP,
/// though some writers get it wrong), so both orders are tried.
fn null_loopback(data: &[u8]) -> Result<LinkFrame<'_>, DecodeError> {
    let head: [u8; 4] = data.get(..4).and_then(|h| h.try_into().ok()).ok_or_else(|| truncated("BSD loopback", 4, data.len()))?;
    Ok(LinkFrame { ethertype: bsd_family_ethertype(u32::from_le_bytes(head)), payload: data.get(4..).unwrap_or_default(), ..Default::default() })
}

/// The ethertype of a BSD-style address family, read little-endian from a word the writer may
/// have put in either byte order (0 for the families not decoded further).
pub(super) fn bsd_family_ethertype(le: u32) -> u16 {
    match if le > 0xffff { le.swap_bytes() } else { le } {
        2 => ETHERTYPE_IPV4,
        // AF_INET6 on Linux, Windows, NetBSD/OpenBSD, FreeBSD and Darwin.
        10 | 23 | 24 | 28 | 30 => ETHERTYPE_IPV6,
        _ => 0,
    }
}

/// PPP, with or without the HDLC address/control bytes and with 1- or 2-byte protocol fields.
/// Protocols other than IP and MPLS give ethertype 0.
pub fn ppp(data: &[u8]) -> Result<LinkFrame<'_>, DecodeError> {
    let (ethertype, at) = crate::wire::ppp(data).map_err(|need| truncated("PPP", need, data.len()))?;
    Ok(LinkFrame { ethertype, payload: data.get(at..).unwrap_or_default(), ..Default::default() })
}

/// IP over InfiniBand: RFC 4391's 4-byte header (type, reserved), or as Linux captures it, behind
/// 20-byte source and destination hardware addresses (44 bytes in all).
fn ip_over_infiniband(data: &[u8]) -> Result<LinkFrame<'_>, DecodeError> {
    let at = match be16(data, 40) {
        Some(ETHERTYPE_IPV4 | ETHERTYPE_IPV6 | 0x0806) => 40,
        _ => 0,
    };
    let proto = be16(data, at).ok_or_else(|| truncated("IP over InfiniBand", at + 4, data.len()))?;
    let payload = data.get(at + 4..).ok_or_else(|| truncated("IP over InfiniBand", at + 4, data.len()))?;
    Ok(LinkFrame { ethertype: proto, payload, ..Default::default() })
}

/// Linux ARCnet: source, destination, 2 offset bytes, then the protocol id. RFC 1201 frames
/// add a split flag and sequence number (and 4 more bytes for an exception frame).
fn arcnet_linux(data: &[u8]) -> Result<LinkFrame<'_>, DecodeError> {
    let proto = *data.get(4).ok_or_else(|| truncated("ARCnet", 5, data.len()))?;
    let (ethertype, at) = match proto {
        0xF0 => (ETHERTYPE_IPV4, 5),                 // RFC 1051 IP
        0xD4 | 0xC4 => {
            let split = *data.get(5).ok_or_else(|| truncated("ARCnet", 6, data.len()))?;
            let at = if split == 0xff { 12 } else { 8 };
            (if proto == 0xD4 { ETHERTYPE_IPV4 } else { ETHERTYPE_IPV6 }, at)
        }
        _ => (0, 5),
    };
    let payload = data.get(at..).ok_or_else(|| truncated("ARCnet", at, data.len()))?;
    Ok(LinkFrame { ethertype, payload, ..Default::default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qinq_keeps_outer_vlan_and_finds_ip() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x88, 0xa8, 0x00, 0x0a, 0x81, 0x00, 0x00, 0x14, 0x08, 0x00, 0x45]);
        let l = decode(linktype::ETHERNET, &f).unwrap();
        assert_eq!(l.vlan, Some(10));
        assert_eq!(l.ethertype, ETHERTYPE_IPV4);
        assert_eq!(l.payload, &[0x45]);
    }

    #[test]
    fn null_either_byte_order() {
        assert_eq!(decode(0, &[2, 0, 0, 0, 0x45]).unwrap().ethertype, ETHERTYPE_IPV4);
        assert_eq!(decode(0, &[0, 0, 0, 30, 0x60]).unwrap().ethertype, ETHERTYPE_IPV6);
        assert!(matches!(decode(147, &[0]), Err(DecodeError::UnsupportedLinkType(147))));
        assert!(matches!(decode(1, &[0; 13]), Err(DecodeError::Truncated { .. })));
    }
}
