//! IEEE 802.11 data frames (LLC/SNAP), bare or behind a radio header: radiotap, PPI, Prism, AVS.
//! Protected frames (the Protected Frame bit) and management/control frames carry nothing we
//! decode: ethertype 0, counted as `other`, as tshark shows them ("Data", never guessing).
use super::{decode, linktype, truncated, LinkFrame};
use crate::error::DecodeError;
use crate::wire::{le16, le32, llc_snap, mac};

const TYPE_DATA: u8 = 2;
const QOS: u8 = 0x08; // subtype bit of QoS data frames
const NULL_DATA: u8 = 0x04; // subtype bit of frames without a body
const TO_DS: u8 = 0x01;
const FROM_DS: u8 = 0x02;
const PROTECTED: u8 = 0x40;
const ORDER: u8 = 0x80; // with QoS: an HT control field follows

/// An 802.11 frame without FCS handling: the IP length bounds what follows, so a trailing FCS is
/// left as padding.
pub fn ieee80211(data: &[u8]) -> Result<LinkFrame<'_>, DecodeError> {
    let [fc0, flags, ..] = *data else { return Err(truncated("IEEE 802.11", 2, data.len())) };
    frame(fc0, flags, data)
}

/// An 802.11 frame whose two frame control bytes come swapped (some CAPWAP access points'; what
/// Wireshark assumes of CAPWAP by default).
pub fn ieee80211_swapped(data: &[u8]) -> Result<LinkFrame<'_>, DecodeError> {
    let [flags, fc0, ..] = *data else { return Err(truncated("IEEE 802.11", 2, data.len())) };
    frame(fc0, flags, data)
}

/// The frame `data` whose frame control is `fc0` (version, type, subtype) and `flags`.
fn frame(fc0: u8, flags: u8, data: &[u8]) -> Result<LinkFrame<'_>, DecodeError> {
    let (kind, subtype) = ((fc0 >> 2) & 3, fc0 >> 4);
    if kind != TYPE_DATA || subtype & NULL_DATA != 0 {
        return Ok(LinkFrame::default());
    }
    let four_addresses = flags & (TO_DS | FROM_DS) == TO_DS | FROM_DS;
    let mut at = if four_addresses { 30 } else { 24 };
    if subtype & QOS != 0 {
        at += if flags & ORDER != 0 { 6 } else { 2 };
    }
    if data.len() < at {
        return Err(truncated("IEEE 802.11", at, data.len()));
    }
    // Addresses 1-3 are receiver, transmitter and the third, whose role the DS bits give.
    let dst_mac = if flags & TO_DS != 0 { mac(data, 16) } else { mac(data, 4) };
    let src_mac = match flags & (TO_DS | FROM_DS) {
        FROM_DS => mac(data, 16),
        f if f == TO_DS | FROM_DS => mac(data, 24),
        _ => mac(data, 10),
    };
    let body = data.get(at..).unwrap_or_default();
    let frame = LinkFrame { src_mac, dst_mac, payload: body, ..Default::default() };
    if flags & PROTECTED != 0 {
        return Ok(frame);
    }
    match llc_snap(body) {
        Ok(Some(ethertype)) => Ok(LinkFrame { ethertype, payload: body.get(8..).unwrap_or_default(), ..frame }),
        Ok(None) => Ok(frame),
        Err(need) => Err(truncated("LLC/SNAP", at + need, data.len())),
    }
}

/// Radiotap: version 0, a pad byte, then its length (little-endian) counting the whole header.
pub fn radiotap(data: &[u8]) -> Result<LinkFrame<'_>, DecodeError> {
    let len = le16(data, 2).ok_or_else(|| truncated("radiotap", 4, data.len()))?;
    radio_header("radiotap", data, usize::from(len).max(4))
}

/// PPI: version, flags, its length (little-endian), then the link type of what follows.
pub fn ppi(data: &[u8]) -> Result<LinkFrame<'_>, DecodeError> {
    let (Some(len), Some(dlt)) = (le16(data, 2), le32(data, 4)) else { return Err(truncated("PPI", 8, data.len())) };
    let body = data.get(usize::from(len).max(8)..).ok_or_else(|| truncated("PPI", usize::from(len), data.len()))?;
    match dlt {
        // PPI inside PPI would recurse on attacker-chosen input: not followed.
        linktype::PPI => Ok(LinkFrame::default()),
        // 802.15.4 is read with the record's link type (`super::lowpan`): not followed here.
        linktype::IEEE802_15_4_WITHFCS | linktype::IEEE802_15_4_NOFCS | linktype::IEEE802_15_4_NONASK_PHY | linktype::IEEE802_15_4_TAP => Ok(LinkFrame::default()),
        dlt => decode(dlt, body),
    }
}

/// Prism (wlan-ng): a fixed 144-byte header of message code, length, device name and ten items.
pub fn prism(data: &[u8]) -> Result<LinkFrame<'_>, DecodeError> {
    radio_header("Prism", data, 144)
}

/// AVS: a big-endian version word (0x8021100x) and header length.
pub fn avs(data: &[u8]) -> Result<LinkFrame<'_>, DecodeError> {
    let len = crate::wire::be32(data, 4).ok_or_else(|| truncated("AVS", 8, data.len()))?;
    radio_header("AVS", data, usize::try_from(len).unwrap_or(usize::MAX).max(8))
}

fn radio_header<'a>(layer: &'static str, data: &'a [u8], len: usize) -> Result<LinkFrame<'a>, DecodeError> {
    let body = data.get(len..).ok_or_else(|| truncated(layer, len, data.len()))?;
    ieee80211(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ETHERTYPE_IPV4;

    const SNAP_IP: [u8; 9] = [0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00, 0x45];

    fn frame(fc0: u8, flags: u8, header: usize) -> Vec<u8> {
        let mut f = vec![fc0, flags];
        f.extend((2..header).map(|i| i as u8));
        f.extend_from_slice(&SNAP_IP);
        f
    }

    #[test]
    fn data_frames_by_ds_bits_and_qos() {
        let to_ap = frame(0x08, TO_DS, 24);
        let l = ieee80211(&to_ap).unwrap();
        assert_eq!((l.ethertype, l.payload, l.src_mac, l.dst_mac), (ETHERTYPE_IPV4, &[0x45u8][..], mac(&to_ap, 10), mac(&to_ap, 16)));
        assert_eq!(ieee80211(&frame(0x88, 0, 26)).unwrap().payload, &[0x45]);
        assert_eq!(ieee80211(&frame(0x88, ORDER, 30)).unwrap().payload, &[0x45]);
        let wds = frame(0x08, TO_DS | FROM_DS, 30);
        assert_eq!(ieee80211(&wds).unwrap().src_mac, mac(&wds, 24));
    }

    #[test]
    fn swapped_frame_control() {
        let mut f = frame(0x88, TO_DS, 26);
        f.swap(0, 1);
        let l = ieee80211_swapped(&f).unwrap();
        assert_eq!((l.ethertype, l.payload, l.src_mac), (ETHERTYPE_IPV4, &[0x45u8][..], mac(&f, 10)));
        assert_eq!(ieee80211(&f).unwrap().ethertype, 0);
        assert!(matches!(ieee80211_swapped(&f[..1]), Err(DecodeError::Truncated { need: 2, .. })));
        assert!(matches!(ieee80211_swapped(&f[..25]), Err(DecodeError::Truncated { need: 26, .. })));
    }

    #[test]
    fn protected_management_and_null_frames_carry_nothing() {
        for f in [frame(0x08, PROTECTED, 24), frame(0x80, 0, 24), frame(0x48, 0, 24)] {
            assert_eq!(ieee80211(&f).unwrap().ethertype, 0);
        }
        assert!(matches!(ieee80211(&frame(0x08, 0, 24)[..20]), Err(DecodeError::Truncated { need: 24, .. })));
        assert!(matches!(ieee80211(&frame(0x08, 0, 24)[..27]), Err(DecodeError::Truncated { need: 32, .. })));
    }

    #[test]
    fn radio_headers() {
        let f = frame(0x08, 0, 24);
        let mut rt = vec![0, 0, 8, 0, 0, 0, 0, 0];
        rt.extend_from_slice(&f);
        assert_eq!(radiotap(&rt).unwrap().ethertype, ETHERTYPE_IPV4);
        let mut p = vec![0, 0, 8, 0, 105, 0, 0, 0];
        p.extend_from_slice(&f);
        assert_eq!(ppi(&p).unwrap().ethertype, ETHERTYPE_IPV4);
        p[4] = 192;
        assert_eq!(ppi(&p).unwrap().ethertype, 0);
        let mut a = vec![0x80, 0x21, 0x10, 0x01, 0, 0, 0, 64];
        a.resize(64, 0);
        a.extend_from_slice(&f);
        assert_eq!(avs(&a).unwrap().ethertype, ETHERTYPE_IPV4);
        let mut pr = vec![0x41, 0, 0, 0, 144, 0, 0, 0];
        pr.resize(144, 0);
        pr.extend_from_slice(&f);
        assert_eq!(prism(&pr).unwrap().ethertype, ETHERTYPE_IPV4);
        assert!(matches!(prism(&pr[..143]), Err(DecodeError::Truncated { need: 144, .. })));
    }
}
