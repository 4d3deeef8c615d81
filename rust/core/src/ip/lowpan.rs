//! 6LoWPAN (RFC 4944, RFC 6282): the IPv6 packet a 6LoWPAN header compresses, rebuilt into an
//! owned buffer so that it decodes as any IPv6 packet. Mesh and broadcast headers are skipped
//! (a mesh header's originator and final addresses stand in for the link's), IPHC is read in
//! all its modes with its UDP and extension-header NHC, and fragments are only recognised.
//! Contexts (RFC 6282 3.1.2) are those a capture taught so far, as tshark learns them: from the
//! 6LoWPAN Context Options (RFC 6775 4.2, ND option 34) of the ND messages of earlier 802.15.4
//! frames, per source PAN and context id ([`Contexts`]); an unknown one is the zero prefix, as
//! tshark's default context is.
use crate::error::DecodeError;
use crate::wire::{be16, iid_eui64, iid_short, PROTO_DEST_OPTS, PROTO_HOP_BY_HOP, PROTO_MOBILITY, PROTO_ROUTING, PROTO_UDP};

const IPV6_HEADER_LEN: usize = 40;
const LINK_LOCAL: [u8; 8] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0];

/// A compression context: a prefix of `len` bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Context {
    pub len: u8,
    pub prefix: [u8; 16],
}

/// The contexts a capture taught so far, per PAN id and context id (16 each), for the first
/// [`MAX_CONTEXT_PANS`] PANs that gave one (a bound: later PANs teach nothing).
#[derive(Debug, Clone, Default)]
pub struct Contexts {
    pans: Vec<(u16, [Option<Context>; 16])>,
}

/// How many PANs' contexts a file keeps.
pub const MAX_CONTEXT_PANS: usize = 64;
/// The broadcast PAN id: its contexts hold in every PAN.
pub const BROADCAST_PAN: u16 = 0xffff;
/// RFC 6775 4.2: the 6LoWPAN Context Option's ND option type.
const ND_OPT_6CO: u8 = 34;

impl Contexts {
    pub const EMPTY: Contexts = Contexts { pans: Vec::new() };

    pub fn is_empty(&self) -> bool {
        self.pans.is_empty()
    }

    /// Context `cid` of `pan`, else of the broadcast PAN, as Wireshark looks it up (6LoWPAN not in
    /// an 802.15.4 frame is looked up in the broadcast PAN); none without a PAN.
    pub fn get(&self, pan: Option<u16>, cid: u8) -> Option<Context> {
        let pan = pan?;
        let find = |pan: u16| self.pans.iter().find(|(p, _)| *p == pan).and_then(|(_, c)| c[usize::from(cid & 0x0f)]);
        find(pan).or_else(|| if pan == BROADCAST_PAN { None } else { find(BROADCAST_PAN) })
    }

    fn learn(&mut self, pan: u16, cid: u8, context: Context) {
        let at = match self.pans.iter().position(|(p, _)| *p == pan) {
            Some(at) => at,
            None if self.pans.len() < MAX_CONTEXT_PANS => {
                self.pans.push((pan, [None; 16]));
                self.pans.len() - 1
            }
            None => return,
        };
        self.pans[at].1[usize::from(cid & 0x0f)] = Some(context);
    }

    /// Learns the 6LoWPAN Context Options of `packet` (a rebuilt IPv6 packet, from a frame of
    /// source PAN `pan`) when it is an ND message (router or neighbour solicitation or
    /// advertisement, redirect) without extension headers, as Wireshark does: any option of at
    /// most 24 bytes, whatever its C flag and valid lifetime (tshark 4.0 checks neither), the
    /// prefix's bits past its length cleared. Options cut by the capture end the walk.
    pub fn learn_from(&mut self, pan: u16, packet: &[u8]) {
        const PROTO_ICMPV6: u8 = 58;
        if packet.get(6) != Some(&PROTO_ICMPV6) {
            return;
        }
        let Some(icmp) = packet.get(IPV6_HEADER_LEN..) else { return };
        let mut at = match icmp.first() {
            Some(133) => 8,
            Some(134) => 16,
            Some(135 | 136) => 24,
            Some(137) => 40,
            _ => return,
        };
        while let (Some(&kind), Some(&units)) = (icmp.get(at), icmp.get(at + 1)) {
            let len = usize::from(units) * 8;
            if len == 0 {
                return;
            }
            if kind == ND_OPT_6CO && len <= 24 {
                let Some(option) = icmp.get(at..at + len) else { return };
                let bits = option[2].min(128);
                let mut prefix = [0u8; 16];
                let given = &option[8..];
                prefix[..given.len()].copy_from_slice(given);
                clear_past(&mut prefix, bits);
                if option[2] <= 128 {
                    self.learn(pan, option[3] & 0x0f, Context { len: bits, prefix });
                }
            }
            at += len;
        }
    }
}

/// Clears the bits of `prefix` past its first `bits`.
fn clear_past(prefix: &mut [u8; 16], bits: u8) {
    let bits = usize::from(bits);
    for (i, b) in prefix.iter_mut().enumerate() {
        let keep = bits.saturating_sub(i * 8).min(8);
        *b &= !(0xffu8.checked_shr(keep as u32).unwrap_or(0));
    }
}

/// Copies the first `context.len` bits of its prefix over `address`.
fn apply(context: Context, address: &mut [u8]) {
    for (i, b) in address.iter_mut().enumerate().take(16) {
        let bits = usize::from(context.len).saturating_sub(i * 8).min(8);
        let mask = !(0xffu8.checked_shr(bits as u32).unwrap_or(0));
        *b = (*b & !mask) | (context.prefix[i] & mask);
    }
}

/// The contexts known when a packet is decompressed, and the PAN it was sent in.
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    pub contexts: &'a Contexts,
    pub pan: Option<u16>,
}

/// Interface identifiers of the link's source and destination, for addresses IPHC elides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkIds {
    pub src: [u8; 8],
    pub dst: [u8; 8],
}

/// What a 6LoWPAN packet turned into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decompressed {
    /// An IPv6 packet in the output buffer, `wire_len` bytes long on the wire.
    Ipv6 { wire_len: usize },
    /// A FRAG1 or FRAGN piece of a larger datagram, its bytes (FRAG1's decompressed) in the
    /// output buffer.
    Fragment(Fragment),
    /// Something else (not a dispatch we decode, a reserved mode).
    Other,
}

/// A piece of a fragmented 6LoWPAN datagram, in bytes of the uncompressed IPv6 datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// The datagram size the header declares (11 bits).
    pub size: u16,
    pub tag: u16,
    pub offset: u32,
    /// The piece's length on the wire (FRAG1: decompressed).
    pub len: u32,
    /// The whole piece is in the output buffer (the capture did not cut it).
    pub whole: bool,
    /// The addresses it was sent between (the mesh header's, when there is one): the key.
    pub ids: LinkIds,
}

impl Fragment {
    /// More pieces follow, as Wireshark decides it: this one ends short of the datagram size.
    pub fn more(&self) -> bool {
        self.offset.saturating_add(self.len) < u32::from(self.size)
    }
}

/// How long the packet being rebuilt is: the rest of the frame on the wire, or (a first
/// fragment's) the datagram size its fragment header declares.
#[derive(Debug, Clone, Copy)]
enum Size {
    Wire(usize),
    Datagram(usize),
}

impl Size {
    /// The IPv6 packet's length once `rebuilt` bytes of it are rebuilt from the first `read`
    /// bytes of the 6LoWPAN packet.
    fn packet_len(self, read: usize, rebuilt: usize) -> usize {
        match self {
            Size::Wire(wire_len) => rebuilt + wire_len.saturating_sub(read),
            Size::Datagram(size) => size,
        }
    }
}

/// The bytes of a 6LoWPAN header, read in order.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.at + n;
        let bytes = self.data.get(self.at..end).ok_or(DecodeError::Truncated { layer: "6LoWPAN", need: end, have: self.data.len() })?;
        self.at = end;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
}

/// Rebuilds into `out` the IPv6 packet of the 6LoWPAN packet `data` (captured bytes of
/// `wire_len` on the wire) sent between the link addresses whose identifiers are `ids`.
pub fn decompress(data: &[u8], wire_len: usize, mut ids: LinkIds, known: Known, out: &mut Vec<u8>) -> Result<Decompressed, DecodeError> {
    let mut r = Reader { data, at: 0 };
    loop {
        match r.byte()? {
            0x41 => {
                out.clear();
                out.extend_from_slice(&data[r.at..]);
                return Ok(Decompressed::Ipv6 { wire_len: wire_len.saturating_sub(r.at) });
            }
            // Broadcast header: a sequence number.
            0x50 => _ = r.take(1)?,
            dispatch @ 0x60..=0x7f => return iphc(&mut r, dispatch, Size::Wire(wire_len), ids, known, out),
            dispatch @ 0x80..=0xbf => ids = mesh(&mut r, dispatch)?,
            dispatch @ (0xc0..=0xc7 | 0xe0..=0xe7) => return fragment(&mut r, dispatch, wire_len, ids, known, out),
            _ => return Ok(Decompressed::Other),
        }
    }
}

/// A fragment header: FRAG1 (size and tag, then the datagram's first bytes, its headers
/// compressed or not) or FRAGN (size, tag and offset in 8-byte units, then bytes as they are).
fn fragment(r: &mut Reader, dispatch: u8, wire_len: usize, ids: LinkIds, known: Known, out: &mut Vec<u8>) -> Result<Decompressed, DecodeError> {
    let size = u16::from(dispatch & 0x07) << 8 | u16::from(r.byte()?);
    let tag = be16(r.take(2)?, 0).unwrap_or(0);
    let first = dispatch < 0xe0;
    let offset = if first { 0 } else { u32::from(r.byte()?) * 8 };
    if first {
        // Only the dispatches Wireshark rebuilds a first fragment from: uncompressed and IPHC.
        match r.byte()? {
            0x41 => {
                out.clear();
                out.extend_from_slice(&r.data[r.at..]);
            }
            second @ 0x60..=0x7f => {
                if iphc(r, second, Size::Datagram(usize::from(size)), ids, known, out)? == Decompressed::Other {
                    return Ok(Decompressed::Other);
                }
            }
            _ => return Ok(Decompressed::Other),
        }
    } else {
        out.clear();
        out.extend_from_slice(&r.data[r.at..]);
    }
    // What the capture cut (the wire carried `wire_len` bytes) is missing from the piece too.
    let missing = wire_len.saturating_sub(r.data.len());
    let len = u32::try_from(out.len() + missing).unwrap_or(u32::MAX);
    Ok(Decompressed::Fragment(Fragment { size, tag, offset, len, whole: missing == 0, ids }))
}

/// A mesh header: hops left (0xf: a byte follows), then the originator and final addresses,
/// short or extended as its V and F bits say; they are the addresses IPHC derives from.
fn mesh(r: &mut Reader, dispatch: u8) -> Result<LinkIds, DecodeError> {
    if dispatch & 0x0f == 0x0f {
        r.take(1)?;
    }
    let mut address = |short: bool| -> Result<[u8; 8], DecodeError> {
        Ok(if short {
            iid_short(be16(r.take(2)?, 0).unwrap_or(0))
        } else {
            iid_eui64(r.take(8)?.try_into().unwrap_or_default())
        })
    };
    let src = address(dispatch & 0x20 != 0)?;
    let dst = address(dispatch & 0x10 != 0)?;
    Ok(LinkIds { src, dst })
}

/// An IPHC header (RFC 6282 section 3) and the NHC headers after it.
fn iphc(r: &mut Reader, first: u8, size: Size, ids: LinkIds, known: Known, out: &mut Vec<u8>) -> Result<Decompressed, DecodeError> {
    let second = r.byte()?;
    // Context identifiers (source, destination): 0 unless a byte gives them.
    let cids = if second & 0x80 != 0 { r.byte()? } else { 0 };
    let context = |cid: u8| known.contexts.get(known.pan, cid);
    out.clear();
    out.resize(IPV6_HEADER_LEN, 0);
    // IPHC sends ECN before DSCP, IPv6 DSCP before ECN.
    let (traffic_class, flow) = match (first >> 3) & 3 {
        0 => {
            let b = r.take(4)?;
            (b[0].rotate_left(2), u32::from(b[1] & 0x0f) << 16 | u32::from(b[2]) << 8 | u32::from(b[3]))
        }
        1 => {
            let b = r.take(3)?;
            (b[0] >> 6, u32::from(b[0] & 0x0f) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]))
        }
        2 => {
            let b = r.byte()?;
            (b.rotate_left(2), 0)
        }
        _ => (0, 0),
    };
    out[..4].copy_from_slice(&(6 << 28 | u32::from(traffic_class) << 20 | flow).to_be_bytes());
    let compressed_next = first & 0x04 != 0;
    out[6] = if compressed_next { 0 } else { r.byte()? };
    out[7] = match first & 3 {
        0 => r.byte()?,
        1 => 1,
        2 => 64,
        _ => 255,
    };
    let (src_context, src_mode) = (second & 0x40 != 0, (second >> 4) & 3);
    if !unicast(r, src_context, src_mode, ids.src, &mut out[8..24])? {
        return Ok(Decompressed::Other);
    }
    if let Some(c) = context(cids >> 4).filter(|_| src_context && src_mode != 0) {
        apply(c, &mut out[8..24]);
    }
    let (dst_context, dst_mode) = (second & 0x04 != 0, second & 3);
    let dst = context(cids & 0x0f).filter(|_| dst_context);
    let decoded = if second & 0x08 != 0 {
        multicast(r, dst_context, dst_mode, dst, &mut out[24..40])?
    } else {
        // A destination's "unspecified address" mode is reserved.
        let decoded = !(dst_context && dst_mode == 0) && unicast(r, dst_context, dst_mode, ids.dst, &mut out[24..40])?;
        if let Some(c) = dst.filter(|_| decoded) {
            apply(c, &mut out[24..40]);
        }
        decoded
    };
    if !decoded {
        return Ok(Decompressed::Other);
    }
    if compressed_next && !next_headers(r, size, out)? {
        return Ok(Decompressed::Other);
    }
    // The payload length is what the frame carries after the rebuilt headers (RFC 6282 3.2.1),
    // or what the first fragment's datagram size leaves after the IPv6 header.
    let rest = r.data.get(r.at..).unwrap_or_default();
    let packet_len = size.packet_len(r.at, out.len()).max(IPV6_HEADER_LEN);
    let payload_len = u16::try_from(packet_len - IPV6_HEADER_LEN).unwrap_or(u16::MAX);
    out[4..6].copy_from_slice(&payload_len.to_be_bytes());
    out.extend_from_slice(rest);
    Ok(Decompressed::Ipv6 { wire_len: packet_len })
}

/// A unicast source or destination address: with `context`, a (zero) context prefix instead of
/// the link-local one, and mode 0 the unspecified address. False for a reserved mode.
fn unicast(r: &mut Reader, context: bool, mode: u8, link_iid: [u8; 8], address: &mut [u8]) -> Result<bool, DecodeError> {
    if mode == 0 {
        if !context {
            address.copy_from_slice(r.take(16)?);
        }
        return Ok(true);
    }
    if !context {
        address[..8].copy_from_slice(&LINK_LOCAL);
    }
    match mode {
        1 => address[8..].copy_from_slice(r.take(8)?),
        2 => {
            address[11..14].copy_from_slice(&[0xff, 0xfe, 0]);
            address[14..].copy_from_slice(r.take(2)?);
        }
        _ => address[8..].copy_from_slice(&link_iid),
    }
    Ok(true)
}

/// A multicast destination: ffXX::00XX:XXXX:XXXX, ffXX::00XX:XXXX, ff02::00XX or the whole
/// address; with `context`, mode 0 is an RFC 3306 unicast-prefix-based address (its prefix
/// length and prefix from the context: zero). False for a reserved mode.
fn multicast(r: &mut Reader, context: bool, mode: u8, known: Option<Context>, address: &mut [u8]) -> Result<bool, DecodeError> {
    address[0] = 0xff;
    match (context, mode) {
        (false, 0) => address.copy_from_slice(r.take(16)?),
        (false, 1) => {
            address[1] = r.byte()?;
            address[11..].copy_from_slice(r.take(5)?);
        }
        (false, 2) => {
            address[1] = r.byte()?;
            address[13..].copy_from_slice(r.take(3)?);
        }
        (false, _) => {
            address[1] = 0x02;
            address[15] = r.byte()?;
        }
        (true, 0) => {
            address[1..3].copy_from_slice(r.take(2)?);
            address[12..].copy_from_slice(r.take(4)?);
            // RFC 3306: the prefix length, then up to 64 bits of prefix.
            if let Some(c) = known {
                address[3] = c.len.min(64);
                address[4..12].copy_from_slice(&c.prefix[..8]);
            }
        }
        (true, _) => return Ok(false),
    }
    Ok(true)
}

/// The NHC-compressed headers (RFC 6282 section 4): IPv6 extension headers, then maybe UDP.
/// Each is appended to `out`, its type written in the next-header field before it. False for
/// one we do not rebuild (fragment headers, IPv6 in IPv6, unknown encodings).
fn next_headers(r: &mut Reader, size: Size, out: &mut Vec<u8>) -> Result<bool, DecodeError> {
    // Where the next-header field of the header last rebuilt is.
    let mut next_field = 6;
    loop {
        let nhc = r.byte()?;
        if nhc & 0xf8 == 0xf0 {
            out[next_field] = PROTO_UDP;
            udp(r, nhc, size, out)?;
            return Ok(true);
        }
        if nhc & 0xf0 != 0xe0 {
            return Ok(false);
        }
        out[next_field] = match (nhc >> 1) & 7 {
            0 => PROTO_HOP_BY_HOP,
            1 => PROTO_ROUTING,
            3 => PROTO_DEST_OPTS,
            4 => PROTO_MOBILITY,
            _ => return Ok(false),
        };
        let inline_next = nhc & 1 == 0;
        next_field = out.len();
        let next = if inline_next { r.byte()? } else { 0 };
        let len = usize::from(r.byte()?);
        let body = r.take(len)?;
        // The length counts the header after its length byte; trailing padding may have been
        // elided, so Pad1 or PadN fills the header to a multiple of 8 bytes again.
        let padded = (2 + len).next_multiple_of(8);
        let ext_len = u8::try_from(padded / 8 - 1).unwrap_or(u8::MAX);
        out.extend_from_slice(&[next, ext_len]);
        out.extend_from_slice(body);
        match padded - 2 - len {
            0 => {}
            1 => out.push(0),
            pad => {
                out.extend_from_slice(&[1, (pad - 2) as u8]);
                out.resize(out.len() + pad - 2, 0);
            }
        }
        if inline_next {
            return Ok(true);
        }
    }
}

/// A UDP header: ports inline or from the 0xF0xx / 0xF0Bx ranges, the checksum inline or elided
/// (written as 0), the length always elided (the datagram runs to the frame's end, or to the
/// datagram size of a first fragment).
fn udp(r: &mut Reader, nhc: u8, size: Size, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let (src, dst) = match nhc & 3 {
        0 => {
            let b = r.take(4)?;
            (be16(b, 0).unwrap_or(0), be16(b, 2).unwrap_or(0))
        }
        1 => {
            let b = r.take(3)?;
            (be16(b, 0).unwrap_or(0), 0xf000 | u16::from(b[2]))
        }
        2 => {
            let b = r.take(3)?;
            (0xf000 | u16::from(b[0]), be16(b, 1).unwrap_or(0))
        }
        _ => {
            let b = r.byte()?;
            (0xf0b0 | u16::from(b >> 4), 0xf0b0 | u16::from(b & 0x0f))
        }
    };
    let checksum = if nhc & 0x04 == 0 { r.take(2)? } else { &[0, 0] };
    let len = size.packet_len(r.at, out.len() + 8).saturating_sub(out.len());
    out.extend_from_slice(&src.to_be_bytes());
    out.extend_from_slice(&dst.to_be_bytes());
    out.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(checksum);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDS: LinkIds = LinkIds { src: [0, 0, 0, 0, 0, 0, 0, 1], dst: [0, 0, 0, 0, 0, 0, 0, 2] };
    const NONE: Known = Known { contexts: &Contexts::EMPTY, pan: None };

    fn run(data: &[u8]) -> (Decompressed, Vec<u8>) {
        let mut out = Vec::new();
        let d = decompress(data, data.len(), IDS, NONE, &mut out).unwrap();
        (d, out)
    }

    fn addresses(out: &[u8]) -> (std::net::Ipv6Addr, std::net::Ipv6Addr) {
        let a = |at: usize| std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&out[at..at + 16]).unwrap());
        (a(8), a(24))
    }

    #[test]
    fn stateless_link_local_from_the_link() {
        // TF elided, next header inline (58), hop limit 64, both addresses from the link.
        let (d, out) = run(&[0x7a, 0x33, 58, 0x80, 0, 0, 0]);
        assert_eq!(d, Decompressed::Ipv6 { wire_len: 44 });
        assert_eq!(&out[..8], &[0x60, 0, 0, 0, 0, 4, 58, 64]);
        assert_eq!(addresses(&out), ("fe80::1".parse().unwrap(), "fe80::2".parse().unwrap()));
        assert_eq!(&out[40..], &[0x80, 0, 0, 0]);
    }

    #[test]
    fn inline_fields_and_partial_addresses() {
        // TF 00 (ECN 2, DSCP 0x2e, flow 0x12345), hop limit inline, source 16 bits, destination 64.
        let mut f = vec![0x60, 0x21, 0xae, 0x01, 0x23, 0x45, 58, 7, 0xab, 0xcd];
        f.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let (_, out) = run(&f);
        assert_eq!(&out[..8], &[0x6b, 0xa1, 0x23, 0x45, 0, 0, 58, 7]);
        assert_eq!(addresses(&out), ("fe80::ff:fe00:abcd".parse().unwrap(), "fe80::102:304:506:708".parse().unwrap()));
        // TF 01: ECN and flow label; TF 10: ECN and DSCP.
        let (_, out) = run(&[0x6b, 0x33, 0x81, 0x23, 0x45, 58]);
        assert_eq!(&out[..4], &[0x60, 0x21, 0x23, 0x45]);
        let (_, out) = run(&[0x73, 0x33, 0xae, 58]);
        assert_eq!(&out[..4], &[0x6b, 0xa0, 0, 0]);
    }

    /// An IPv6 router advertisement carrying `options`.
    fn advertisement(options: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0, 0, 0, 58, 255];
        p.extend_from_slice(&[0; 32]);
        p.extend_from_slice(&[134, 0, 0, 0, 64, 0, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(options);
        p
    }

    #[test]
    fn contexts_are_learned_per_pan_bounded_and_fall_back_to_the_broadcast_pan() {
        let mut c = Contexts::default();
        // CID 0x13 (C flag and CID 3), a /60 whose bits past 60 are cleared; a truncated option ends the walk.
        let option = [34, 2, 60, 0x13, 0, 0, 0, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0xff, 0xff];
        c.learn_from(7, &advertisement(&[&option[..], &[34, 3, 64]].concat()));
        let want = Context { len: 60, prefix: [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0xff, 0xf0, 0, 0, 0, 0, 0, 0, 0, 0] };
        assert_eq!(c.get(Some(7), 3), Some(want));
        assert_eq!((c.get(Some(8), 3), c.get(None, 3), c.get(Some(7), 2)), (None, None, None));
        c.learn_from(0xffff, &advertisement(&option));
        assert_eq!(c.get(Some(8), 3), Some(want));
        // Longer than 24 bytes, or a prefix length past 128: not learned; nor anything but ND.
        let mut other = Contexts::default();
        other.learn_from(1, &advertisement(&[34, 4, 64, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
        other.learn_from(1, &advertisement(&[34, 1, 129, 1, 0, 0, 0, 0]));
        let mut echo = advertisement(&option);
        echo[40] = 128;
        other.learn_from(1, &echo);
        assert!(other.is_empty());
        for pan in 0..100 {
            other.learn_from(pan, &advertisement(&option));
        }
        assert_eq!((other.pans.len(), other.get(Some(63), 3).is_some(), other.get(Some(64), 3)), (MAX_CONTEXT_PANS, true, None));
        // A context's bits override the address's first ones, whatever the identifier says.
        let mut address = [0xaa; 16];
        apply(Context { len: 68, prefix: [0x11; 16] }, &mut address);
        assert_eq!(address, [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1a, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa]);
    }

    #[test]
    fn context_and_multicast_addresses() {
        // Source from a context (zero prefix) and the link, multicast ff02::1 in 8 bits.
        let (_, out) = run(&[0x7a, 0xfb, 0x00, 58, 0x01]);
        assert_eq!(addresses(&out), ("::1".parse().unwrap(), "ff02::1".parse().unwrap()));
        // Unspecified source, ffXX::00XX:XXXX:XXXX and ffXX::00XX:XXXX destinations.
        let (_, out) = run(&[0x7a, 0x49, 58, 0x05, 0x12, 0x34, 0x56, 0x78, 0x9a]);
        assert_eq!(addresses(&out), ("::".parse().unwrap(), "ff05::12:3456:789a".parse().unwrap()));
        let (_, out) = run(&[0x7a, 0x3a, 58, 0x05, 0x01, 0x00, 0x03]);
        assert_eq!(addresses(&out).1, "ff05::1:3".parse::<std::net::Ipv6Addr>().unwrap());
        // Unicast-prefix-based multicast: its prefix length and prefix from the (zero) context.
        let (_, out) = run(&[0x7a, 0x3c, 58, 0x3e, 0x00, 0, 0, 0x12, 0x34]);
        assert_eq!(addresses(&out).1, "ff3e::1234".parse::<std::net::Ipv6Addr>().unwrap());
        // Reserved: a context-based unspecified destination, context multicast modes 1-3.
        assert_eq!(run(&[0x7a, 0x34, 58]).0, Decompressed::Other);
        assert_eq!(run(&[0x7a, 0x3d, 58]).0, Decompressed::Other);
    }

    #[test]
    fn udp_and_extension_header_nhc() {
        // UDP, ports 0xF0B1 -> 0xF0B2 in 4 bits each, checksum inline, 2 bytes of payload.
        let (d, out) = run(&[0x7e, 0x33, 0xf3, 0x12, 0xbe, 0xef, 0xaa, 0xbb]);
        assert_eq!(d, Decompressed::Ipv6 { wire_len: 50 });
        assert_eq!(out[6], PROTO_UDP);
        assert_eq!(&out[40..], &[0xf0, 0xb1, 0xf0, 0xb2, 0, 10, 0xbe, 0xef, 0xaa, 0xbb]);
        // Hop-by-hop (its padding elided), next header inline ICMPv6.
        let (d, out) = run(&[0x7e, 0x33, 0xe0, 58, 4, 0x63, 2, 0, 0, 0x80]);
        assert_eq!(d, Decompressed::Ipv6 { wire_len: 49 });
        assert_eq!((out[6], &out[40..]), (PROTO_HOP_BY_HOP, &[58, 0, 0x63, 2, 0, 0, 1, 0, 0x80][..]));
        // Hop-by-hop then UDP, source port 8 bits, checksum elided.
        let (_, out) = run(&[0x7e, 0x33, 0xe1, 6, 1, 4, 0, 0, 0, 0, 0xf6, 0x35, 0x00, 0x07]);
        assert_eq!(&out[40..48], &[PROTO_UDP, 0, 1, 4, 0, 0, 0, 0]);
        assert_eq!(&out[48..], &[0xf0, 0x35, 0x00, 0x07, 0, 8, 0, 0]);
        assert_eq!(run(&[0x7e, 0x33, 0xe4, 58, 0]).0, Decompressed::Other);
    }

    #[test]
    fn dispatches_mesh_broadcast_fragments() {
        let (d, out) = run(&[0x41, 0x60, 0, 0, 0]);
        assert_eq!((d, &out[..]), (Decompressed::Ipv6 { wire_len: 4 }, &[0x60, 0, 0, 0][..]));
        // Mesh (short originator 5, short final 6), broadcast, then IPHC from their addresses.
        let (_, out) = run(&[0xb3, 0, 5, 0, 6, 0x50, 9, 0x7a, 0x33, 58]);
        assert_eq!(addresses(&out), ("fe80::ff:fe00:5".parse().unwrap(), "fe80::ff:fe00:6".parse().unwrap()));
        assert_eq!(run(&[0x42, 0]).0, Decompressed::Other);
        assert_eq!(run(&[0x01]).0, Decompressed::Other);
    }

    #[test]
    fn fragments_are_pieces_of_the_uncompressed_datagram() {
        let piece = |size, offset, len, whole| Decompressed::Fragment(Fragment { size, tag: 0x0102, offset, len, whole, ids: IDS });
        // FRAG1 (size 80) with IPHC: the IPv6 payload length is the datagram's, not the piece's.
        let (d, out) = run(&[0xc0, 0x50, 1, 2, 0x7a, 0x33, 58, 0x80, 0, 0, 0]);
        assert_eq!(d, piece(80, 0, 44, true));
        assert_eq!((&out[4..6], &out[40..]), (&[0u8, 40][..], &[0x80u8, 0, 0, 0][..]));
        let Decompressed::Fragment(f) = d else { unreachable!() };
        assert!(f.more());
        // With UDP NHC, the UDP length too (80 - 40); uncompressed IPv6 as it is.
        let (_, out) = run(&[0xc0, 0x50, 1, 2, 0x7e, 0x33, 0xf3, 0x12, 0xbe, 0xef, 0xaa]);
        assert_eq!(&out[44..46], &[0, 40]);
        let (d, out) = run(&[0xc0, 0x50, 1, 2, 0x41, 0x60, 0, 0, 0]);
        assert_eq!((d, &out[..]), (piece(80, 0, 4, true), &[0x60u8, 0, 0, 0][..]));
        // FRAGN: the offset in 8-byte units; the last piece reaches the size.
        let (d, out) = run(&[0xe0, 0x50, 1, 2, 9, 7, 7, 7, 7, 7, 7, 7, 7]);
        assert_eq!((d, &out[..]), (piece(80, 72, 8, true), &[7u8; 8][..]));
        let Decompressed::Fragment(f) = d else { unreachable!() };
        assert!(!f.more());
        // Cut by the capture: the wire's length, not whole.
        let mut out = Vec::new();
        assert_eq!(decompress(&[0xe0, 0x50, 1, 2, 1, 7], 9, IDS, NONE, &mut out).unwrap(), piece(80, 8, 4, false));
        // A mesh header's addresses are the key; HC1 in a first fragment is not rebuilt.
        let (d, _) = run(&[0xb3, 0, 5, 0, 6, 0xe0, 0x50, 1, 2, 1, 7]);
        let Decompressed::Fragment(f) = d else { unreachable!() };
        assert_eq!(f.ids, LinkIds { src: iid_short(5), dst: iid_short(6) });
        assert_eq!(run(&[0xc0, 0x50, 1, 2, 0x42, 0]).0, Decompressed::Other);
    }

    #[test]
    fn every_cut_of_a_fragment_header_is_an_error() {
        for f in [&[0xc0u8, 0x50, 1, 2, 0x7a, 0x33, 58][..], &[0xe0, 0x50, 1, 2, 3][..]] {
            for keep in 0..f.len() {
                let mut out = Vec::new();
                assert!(matches!(decompress(&f[..keep], f.len() + 8, IDS, NONE, &mut out), Err(DecodeError::Truncated { .. })), "{keep}");
            }
        }
    }

    #[test]
    fn every_cut_is_an_error_never_a_panic() {
        let f = [0xb3, 0, 5, 0, 6, 0x60, 0x21, 0xae, 0x01, 0x23, 0x45, 58, 7, 0xab, 0xcd, 0xe1, 6, 1, 4, 0, 0, 0, 0, 0xf0, 1, 2, 3, 4, 5, 6];
        // The headers end at byte 23.
        for keep in 0..23 {
            let mut out = Vec::new();
            assert!(matches!(decompress(&f[..keep], f.len(), IDS, NONE, &mut out), Err(DecodeError::Truncated { .. })), "{keep}");
        }
    }
}
