//! IEEE 802.15.4 MAC frames, bare or behind a PHY header (NONASK_PHY) or a TAP header, as
//! tshark reads them: the FCS is checked when it was captured (a bad one leaves the frame
//! undissected: `other`), and only unsecured data frames carry something decoded further (the
//! 6LoWPAN in `ip::lowpan`). Read with the record's wire length, to find where the FCS was.
use super::{linktype, truncated};
use crate::error::DecodeError;
use crate::ip::lowpan::LinkIds;
use crate::wire::{iid_eui64, iid_short, le16, FRAME_IEEE802154, FRAME_IEEE802154_CC24XX};

const FRAME_DATA: u16 = 1;
const SECURITY: u16 = 0x0008;
const PAN_ID_COMPRESSION: u16 = 0x0040;
/// 802.15.4-2015 frames only: no sequence number, header IEs after the addresses.
const SEQ_SUPPRESSED: u16 = 0x0100;
const IE_PRESENT: u16 = 0x0200;
const VERSION_2015: u16 = 2;

/// An 802.15.4 address, the extended one in EUI-64 order (it is sent little-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address {
    None,
    Short(u16),
    Extended([u8; 8]),
}

impl Address {
    /// The interface identifier 6LoWPAN derives from it; tshark takes a missing address as
    /// short address 0.
    pub fn iid(self) -> [u8; 8] {
        match self {
            Address::None => iid_short(0),
            Address::Short(a) => iid_short(a),
            Address::Extended(eui) => iid_eui64(eui),
        }
    }
}

/// An unsecured data frame's addresses and payload (without the FCS).
#[derive(Debug, Clone, Copy)]
pub struct MacFrame<'a> {
    pub src: Address,
    pub dst: Address,
    /// The source PAN id, as Wireshark has it: the source's own, else (compressed) the
    /// destination's; the broadcast PAN when the frame gives neither.
    pub src_pan: u16,
    pub payload: &'a [u8],
    /// The payload's length on the wire (more than `payload` holds when the capture cut it).
    pub payload_wire_len: usize,
}

/// What ends a frame in place of nothing: its FCS, or TI CC24xx metadata whose CRC-ok bit tells
/// what the FCS check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fcs {
    None,
    Crc16,
    Crc32,
    Cc24xx,
}

impl Fcs {
    fn len(self) -> usize {
        match self {
            Fcs::None => 0,
            Fcs::Crc16 | Fcs::Cc24xx => 2,
            Fcs::Crc32 => 4,
        }
    }
}

/// The data frame in a record of an 802.15.4 link type, `wire_len` bytes long on the wire;
/// `None` for frames that carry nothing decoded further (other frame types, secured frames,
/// a bad FCS, reserved versions or address modes).
pub fn frame(linktype: u32, data: &[u8], wire_len: usize) -> Result<Option<MacFrame<'_>>, DecodeError> {
    let (start, fcs) = match linktype {
        linktype::IEEE802_15_4_WITHFCS => (0, Fcs::Crc16),
        linktype::IEEE802_15_4_NOFCS => (0, Fcs::None),
        // Preamble (4 bytes), SFD and frame length, then the frame with its FCS.
        linktype::IEEE802_15_4_NONASK_PHY => (6, Fcs::Crc16),
        linktype::IEEE802_15_4_TAP => tap(data)?,
        _ => return Ok(None),
    };
    let wire_len = wire_len.max(data.len());
    let mac = data.get(start..).ok_or_else(|| truncated("IEEE 802.15.4 PHY", start, data.len()))?;
    mac_frame(mac, wire_len - start, fcs, start)
}

/// The data frame a tunnel carries as `wire::FRAME_IEEE802154*` (`data` as captured, `wire_len`
/// bytes on the wire), as [`frame`] reads a record; `None` for other frames.
pub fn carried(kind: u16, data: &[u8], wire_len: usize) -> Result<Option<MacFrame<'_>>, DecodeError> {
    let fcs = match kind {
        FRAME_IEEE802154 => Fcs::Crc16,
        FRAME_IEEE802154_CC24XX => Fcs::Cc24xx,
        _ => return Ok(None),
    };
    mac_frame(data, wire_len.max(data.len()), fcs, 0)
}

/// The MAC frame `mac` (`mac_wire_len` bytes on the wire, `start` bytes into its record) ending
/// with `fcs`.
fn mac_frame(mac: &[u8], mac_wire_len: usize, fcs: Fcs, start: usize) -> Result<Option<MacFrame<'_>>, DecodeError> {
    let Some(frame_len) = mac_wire_len.checked_sub(fcs.len()) else { return Err(truncated("IEEE 802.15.4", start + fcs.len(), start + mac_wire_len)) };
    // As captured, trimmed of the FCS; its check needs the frame whole.
    let body = mac.get(..frame_len).unwrap_or(mac);
    if mac.len() == mac_wire_len && !fcs_ok(body, &mac[frame_len..], fcs) {
        return Ok(None);
    }
    header(body, frame_len)
}

impl MacFrame<'_> {
    pub fn link_ids(&self) -> LinkIds {
        LinkIds { src: self.src.iid(), dst: self.dst.iid() }
    }
}

/// The TAP header's length and the FCS length its FCS-type TLV gives (none without it, as
/// tshark assumes).
fn tap(data: &[u8]) -> Result<(usize, Fcs), DecodeError> {
    let len = usize::from(le16(data, 2).ok_or_else(|| truncated("IEEE 802.15.4 TAP", 4, data.len()))?);
    let tlvs = data.get(4..len).ok_or_else(|| truncated("IEEE 802.15.4 TAP", len.max(4), data.len()))?;
    let mut at = 0;
    while let (Some(kind), Some(tlv_len)) = (le16(tlvs, at), le16(tlvs, at + 2)) {
        if kind == 0 {
            return Ok((len, match tlvs.get(at + 4) {
                Some(1) => Fcs::Crc16,
                Some(2) => Fcs::Crc32,
                _ => Fcs::None,
            }));
        }
        at += 4 + usize::from(tlv_len).next_multiple_of(4);
    }
    Ok((len, Fcs::None))
}

/// A 16-bit FCS is ITU-T CRC-16 (reflected, initial value 0), a 32-bit one IEEE CRC-32, both
/// sent little-endian; CC24xx metadata says in the top bit of its second byte.
fn fcs_ok(frame: &[u8], bytes: &[u8], fcs: Fcs) -> bool {
    const CC24XX_CRC_OK: u8 = 0x80;
    match *bytes {
        [] => true,
        [_, status] if fcs == Fcs::Cc24xx => status & CC24XX_CRC_OK != 0,
        [a, b] => crc16(frame) == u16::from_le_bytes([a, b]),
        [a, b, c, d] => {
            let mut crc = flate2::Crc::new();
            crc.update(frame);
            crc.sum() == u32::from_le_bytes([a, b, c, d])
        }
        _ => false,
    }
}

fn crc16(data: &[u8]) -> u16 {
    data.iter().fold(0u16, |crc, &byte| {
        (0..8).fold(crc ^ u16::from(byte), |crc, _| if crc & 1 != 0 { crc >> 1 ^ 0x8408 } else { crc >> 1 })
    })
}

/// The MAC header of `frame` (captured bytes of a `wire_len`-byte frame without FCS).
fn header(frame: &[u8], wire_len: usize) -> Result<Option<MacFrame<'_>>, DecodeError> {
    let control = le16(frame, 0).ok_or_else(|| truncated("IEEE 802.15.4", 2, frame.len()))?;
    let (dst_mode, version, src_mode) = ((control >> 10) & 3, (control >> 12) & 3, control >> 14);
    if control & 7 != FRAME_DATA || control & SECURITY != 0 || version > VERSION_2015 || dst_mode == 1 || src_mode == 1 {
        return Ok(None);
    }
    let v2015 = version == VERSION_2015;
    let (dst_pan, src_pan) = pan_ids(v2015, dst_mode, src_mode, control & PAN_ID_COMPRESSION != 0);
    let mut at = if v2015 && control & SEQ_SUPPRESSED != 0 { 2 } else { 3 };
    let (mut dst_pan_id, mut src_pan_id) = (None, None);
    let mut field = |present: bool, mode: u16, pan: &mut Option<u16>| -> Result<Address, DecodeError> {
        if present {
            *pan = le16(frame, at);
            at += 2;
        }
        let (len, address) = match mode {
            2 => (2, le16(frame, at).map(Address::Short)),
            3 => (8, frame.get(at..at + 8).map(|b| {
                let mut eui: [u8; 8] = b.try_into().unwrap_or_default();
                eui.reverse();
                Address::Extended(eui)
            })),
            _ => (0, Some(Address::None)),
        };
        at += len;
        address.filter(|_| frame.len() >= at).ok_or_else(|| truncated("IEEE 802.15.4", at, frame.len()))
    };
    let dst = field(dst_pan, dst_mode, &mut dst_pan_id)?;
    let src = field(src_pan, src_mode, &mut src_pan_id)?;
    let src_pan = src_pan_id.or(dst_pan_id).unwrap_or(0xffff);
    if frame.len() < at {
        return Err(truncated("IEEE 802.15.4", at, frame.len()));
    }
    if v2015 && control & IE_PRESENT != 0 {
        match information_elements(frame, at)? {
            Some(end) => at = end,
            None => return Ok(None),
        }
    }
    Ok(Some(MacFrame { src, dst, src_pan, payload: frame.get(at..).unwrap_or_default(), payload_wire_len: wire_len.saturating_sub(at) }))
}

/// Which PAN IDs are there: 802.15.4-2015 table 7-2 for 2015 frames; before, the destination's
/// with a destination address and the source's with a source address unless compressed.
fn pan_ids(v2015: bool, dst_mode: u16, src_mode: u16, compression: bool) -> (bool, bool) {
    if !v2015 {
        return (dst_mode != 0, src_mode != 0 && !compression);
    }
    match (dst_mode, src_mode) {
        (0, 0) => (compression, false),
        (_, 0) => (!compression, false),
        (0, _) => (false, !compression),
        (3, 3) => (!compression, false),
        _ => (true, !compression),
    }
}

/// Skips the header IEs at `at` (and the payload IEs after a Header Termination 1): where the
/// payload starts, `None` when the IEs run to the frame's end without saying a payload follows.
fn information_elements(frame: &[u8], mut at: usize) -> Result<Option<usize>, DecodeError> {
    const HT1: u16 = 0x7e; // payload IEs follow
    const HT2: u16 = 0x7f; // the payload follows
    const PAYLOAD_TERMINATION: u16 = 0xf;
    let need = |at: usize| truncated("IEEE 802.15.4 IE", at, frame.len());
    loop {
        if at == frame.len() {
            return Ok(None);
        }
        let ie = le16(frame, at).ok_or_else(|| need(at + 2))?;
        at += 2 + usize::from(ie & 0x7f);
        match (ie >> 7) & 0xff {
            HT2 => return Ok(Some(at)),
            HT1 => break,
            _ => {}
        }
    }
    loop {
        if at == frame.len() {
            return Ok(None);
        }
        let ie = le16(frame, at).ok_or_else(|| need(at + 2))?;
        at += 2 + usize::from(ie & 0x7ff);
        if (ie >> 11) & 0xf == PAYLOAD_TERMINATION {
            return Ok(Some(at));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A data frame, 2006 version, PAN ID compressed, extended addresses, sequence number 1.
    fn data_frame(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x41, 0xdc, 0x01, 0xcd, 0xab];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0, 0, 2]);
        f.extend_from_slice(payload);
        f
    }

    fn with_fcs(mut f: Vec<u8>) -> Vec<u8> {
        let crc = crc16(&f);
        f.extend_from_slice(&crc.to_le_bytes());
        f
    }

    #[test]
    fn crc16_is_the_itu_t_kermit_crc() {
        assert_eq!(crc16(b"123456789"), 0x2189);
    }

    #[test]
    fn data_frames_give_addresses_and_payload() {
        let f = with_fcs(data_frame(&[0x7a, 0x33]));
        let m = frame(linktype::IEEE802_15_4_WITHFCS, &f, f.len()).unwrap().unwrap();
        assert_eq!(m.dst, Address::Extended([2, 0, 0, 0, 0, 0, 0, 2]));
        assert_eq!(m.src, Address::Extended([2, 0, 0, 0, 0, 0, 0, 1]));
        assert_eq!((m.payload, m.payload_wire_len), (&[0x7a, 0x33][..], 2));
        let mut bad = f.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(frame(linktype::IEEE802_15_4_WITHFCS, &bad, bad.len()).unwrap().is_none());
        // Cut: the FCS cannot be checked, the payload's wire length still excludes it.
        let m = frame(linktype::IEEE802_15_4_WITHFCS, &bad[..22], bad.len()).unwrap().unwrap();
        assert_eq!((m.payload, m.payload_wire_len), (&[0x7a][..], 2));
        let nofcs = data_frame(&[0x41]);
        assert_eq!(frame(linktype::IEEE802_15_4_NOFCS, &nofcs, nofcs.len()).unwrap().unwrap().payload, &[0x41]);
    }

    #[test]
    fn other_frames_and_secured_ones_carry_nothing() {
        for control in [0x0000u16, 0x0002, 0xcc49, 0xdc41 | 0x3000, 0xd441] {
            let mut f = data_frame(&[0x41]);
            f[..2].copy_from_slice(&control.to_le_bytes());
            assert!(frame(linktype::IEEE802_15_4_NOFCS, &f, f.len()).unwrap().is_none(), "{control:#x}");
        }
        assert!(matches!(frame(linktype::IEEE802_15_4_NOFCS, &data_frame(&[])[..12], 21), Err(DecodeError::Truncated { need: 13, .. })));
    }

    #[test]
    fn short_addresses_pan_ids_and_2015_frames() {
        // 2003, short addresses, each with its PAN ID.
        let f = [0x01, 0x88, 0x07, 0xcd, 0xab, 0x34, 0x12, 0x11, 0x11, 0x78, 0x56, 0x41];
        let m = frame(linktype::IEEE802_15_4_NOFCS, &f, f.len()).unwrap().unwrap();
        assert_eq!((m.dst, m.src, m.payload), (Address::Short(0x1234), Address::Short(0x5678), &[0x41][..]));
        // 2015, sequence number suppressed, extended addresses sharing the PAN ID, an HT2 IE.
        let mut f = vec![0x41, 0xef];
        f.extend_from_slice(&[0; 16]);
        f.extend_from_slice(&[0x80, 0x3f, 0x41]);
        let m = frame(linktype::IEEE802_15_4_NOFCS, &f, f.len()).unwrap().unwrap();
        assert_eq!(m.payload, &[0x41]);
        assert_eq!(pan_ids(true, 2, 3, true), (true, false));
        assert_eq!(pan_ids(true, 3, 3, false), (true, false));
        assert_eq!(pan_ids(true, 0, 0, true), (true, false));
    }

    #[test]
    fn radio_headers() {
        let f = with_fcs(data_frame(&[0x41]));
        let mut phy = vec![0, 0, 0, 0, 0xa7, f.len() as u8];
        phy.extend_from_slice(&f);
        assert!(frame(linktype::IEEE802_15_4_NONASK_PHY, &phy, phy.len()).unwrap().is_some());
        let mut tap = vec![0, 0, 12, 0, 0, 0, 1, 0, 1, 0, 0, 0];
        tap.extend_from_slice(&f);
        assert_eq!(frame(linktype::IEEE802_15_4_TAP, &tap, tap.len()).unwrap().unwrap().payload, &[0x41]);
        // Without the FCS TLV, no FCS: its bytes are payload.
        tap[4] = 3;
        assert_eq!(frame(linktype::IEEE802_15_4_TAP, &tap, tap.len()).unwrap().unwrap().payload.len(), 3);
        assert!(matches!(frame(linktype::IEEE802_15_4_TAP, &tap[..5], tap.len()), Err(DecodeError::Truncated { need: 12, .. })));
    }
}
