//! Tunnels: encapsulations that carry IP (or Ethernet) inside other traffic, opened one layer at a
//! time up to a depth limit.
//!
//! Each family parses its header into a [`Decap`] (what it is, its id, what follows); [`Tunnel`]
//! applies it: it records the path taken, the first IP header's addresses, the innermost id, and
//! folds every tunnel's endpoints and ids into the [`Scope`] that keeps reassembly per tunnel.
//!
//! What is opened mirrors Wireshark's default dissection, so that our ICMP counts are tshark's:
//! GRE (any version; checksum, key, sequence, routing and PPTP acknowledgment fields) carrying IP,
//! transparent Ethernet bridging, ERSPAN I/II/III, Cisco MetaData, PPP or MPLS; IP-in-IP (IPv4 or
//! IPv6 in either); Ethernet in IP (protocol 143, `ipeth`); MPLS in IP; VXLAN (UDP 4789), Geneve (6081), GTP v0/v1 T-PDUs carrying IP
//! (2152 and 2123 as `gtpu`, 3386 as `gtpprime`), Teredo (3544) and AYIYA (5072) carrying IPv6,
//! MPLS over UDP (6635), L2TPv2 data (1701) carrying PPP; L2TPv3 data over IP or UDP 1701 (as an
//! Ethernet pseudo-wire); VXLAN-GPE (4790) carrying IP, Ethernet or NSH; the LISP data plane (4341),
//! CAPWAP data carrying 802.3 or native 802.11 frames (5247), TZSP carrying Ethernet or 802.11
//! (bare, Prism, AVS; 37008), ZEP carrying IEEE 802.15.4 frames (17754) whose 6LoWPAN packets are
//! decoded as the link types' are; PIM Registers (IP protocol 103); NHRP traffic indications in GRE,
//! whose quoted packet is opened (a copy: no conversation of its own, see [`Tunnel::copy`]);
//! MPLS label stacks, PPPoE sessions, NSH (in GRE too) and Cisco MetaData by ethertype. sFlow
//! (6343) is no tunnel: its many samples are walked by [`sflow`]. UDP ports are tried lower first,
//! as Wireshark does. A UDP payload on a tunnel's port that does not parse as that tunnel is left
//! alone ("other"); a tunnel header cut short by the capture is an error.
//!
//! [`Inner`] names what follows a header by its ethertype: [`ETHERNET`] (TEB) for an Ethernet
//! frame and, for the radio frames that have none, the pseudo-ethertypes below 0x0600
//! (`wire::FRAME_*`); [`Tunnel::enter`] opens both kinds of frame with the link decoders.
pub mod capwap;
mod cmd;
mod gre;
mod gtp;
mod l2tp;
mod lisp;
mod mpls;
mod nhrp;
mod nsh;
mod pim;
mod pppoe;
pub mod sflow;
mod teredo;
mod tzsp;
mod vxlan;
mod vxlan_gpe;
mod zep;

use std::fmt;
use std::net::IpAddr;

use crate::error::DecodeError;
use crate::ip::IpPacket;
use crate::link::{self, LinkFrame};
use crate::wire::{u16_at, ETHERTYPE_CISCO_METADATA, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_MPLS, ETHERTYPE_MPLS_MULTICAST, ETHERTYPE_NSH, ETHERTYPE_PPPOE_SESSION, PROTO_ETHERNET, PROTO_GRE, PROTO_IPIP, PROTO_IPV6, PROTO_L2TP, PROTO_MPLS_IN_IP, PROTO_PIM, PROTO_UDP};

/// How many tunnels deep a message is followed by default.
pub const DEFAULT_MAX_DEPTH: usize = 8;

/// The ethertype of "a whole Ethernet frame follows" (GRE's transparent Ethernet bridging), as
/// [`Inner`] names a frame.
pub use crate::wire::ETHERTYPE_TEB as ETHERNET;

/// One kind of encapsulation, as named in the `tunnel` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    Gre = 1,
    Erspan1,
    Erspan2,
    Erspan3,
    IpIp,
    Vxlan,
    Geneve,
    GtpU,
    GtpPrime,
    Teredo,
    Ayiya,
    Mpls,
    Pppoe,
    L2tp,
    L2tpv3,
    Nsh,
    VxlanGpe,
    Lisp,
    Tzsp,
    Cmd,
    Capwap,
    Pim,
    Sflow,
    IpEth,
    Nhrp,
    Zep,
}

// Every kind fits a path's five bits (0 ends the path).
const _: () = assert!(Kind::ALL.len() < 1 << Path::BITS);

impl Kind {
    const ALL: [Kind; 26] = [
        Kind::Gre,
        Kind::Erspan1,
        Kind::Erspan2,
        Kind::Erspan3,
        Kind::IpIp,
        Kind::Vxlan,
        Kind::Geneve,
        Kind::GtpU,
        Kind::GtpPrime,
        Kind::Teredo,
        Kind::Ayiya,
        Kind::Mpls,
        Kind::Pppoe,
        Kind::L2tp,
        Kind::L2tpv3,
        Kind::Nsh,
        Kind::VxlanGpe,
        Kind::Lisp,
        Kind::Tzsp,
        Kind::Cmd,
        Kind::Capwap,
        Kind::Pim,
        Kind::Sflow,
        Kind::IpEth,
        Kind::Nhrp,
        Kind::Zep,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Gre => "gre",
            Kind::Erspan1 => "erspan1",
            Kind::Erspan2 => "erspan2",
            Kind::Erspan3 => "erspan3",
            Kind::IpIp => "ipip",
            Kind::Vxlan => "vxlan",
            Kind::Geneve => "geneve",
            Kind::GtpU => "gtpu",
            Kind::GtpPrime => "gtpprime",
            Kind::Teredo => "teredo",
            Kind::Ayiya => "ayiya",
            Kind::Mpls => "mpls",
            Kind::Pppoe => "pppoe",
            Kind::L2tp => "l2tp",
            Kind::L2tpv3 => "l2tpv3",
            Kind::Nsh => "nsh",
            Kind::VxlanGpe => "vxlangpe",
            Kind::Lisp => "lisp",
            Kind::Tzsp => "tzsp",
            Kind::Cmd => "cmd",
            Kind::Capwap => "capwap",
            Kind::Pim => "pim",
            Kind::Sflow => "sflow",
            Kind::IpEth => "ipeth",
            Kind::Nhrp => "nhrp",
            Kind::Zep => "zep",
        }
    }
}

/// The encapsulations around a message, outermost first: up to [`Path::CAPACITY`] kinds packed
/// five bits each, so that it is `Copy` and hashes as one integer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Path(u128);

impl Path {
    pub const CAPACITY: usize = 16;
    /// Bits a kind takes: room for 31 kinds.
    const BITS: usize = 5;

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn len(self) -> usize {
        (128 - self.0.leading_zeros() as usize).div_ceil(Self::BITS)
    }

    pub fn iter(self) -> impl Iterator<Item = Kind> {
        (0..self.len()).filter_map(move |i| {
            let code = (self.0 >> (Self::BITS * i)) & 0x1f;
            Kind::ALL.get((code as usize).checked_sub(1)?).copied()
        })
    }

    /// Appends `kind` (the caller keeps the length under [`Path::CAPACITY`]).
    fn push(&mut self, kind: Kind) {
        self.0 |= u128::from(kind as u8) << (Self::BITS * self.len());
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, kind) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(">")?;
            }
            f.write_str(kind.name())?;
        }
        Ok(())
    }
}

/// Which tunnel a packet travelled in: its path, and every tunnel's endpoints and ids folded
/// into one hash. Reassembly keys on it, so that two tunnels' fragment ids never mix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Scope {
    pub path: Path,
    pub hash: u64,
}

impl Scope {
    /// FNV-1a over `bytes`, continuing from the hash so far.
    fn fold(&mut self, bytes: &[u8]) {
        let mut h = if self.hash == 0 { 0xcbf2_9ce4_8422_2325 } else { self.hash };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
        self.hash = h;
    }

    fn fold_addr(&mut self, addr: IpAddr) {
        match addr {
            IpAddr::V4(a) => self.fold(&a.octets()),
            IpAddr::V6(a) => self.fold(&a.octets()),
        }
    }
}

/// What the tunnels opened so far say about the message inside them.
#[derive(Debug, Clone, Copy)]
pub struct Tunnel {
    pub scope: Scope,
    /// The first IP header's source and destination, once a tunnel was opened from an IP packet.
    pub outer: Option<(IpAddr, IpAddr)>,
    /// The id of the innermost tunnel that has one: GRE key (PPTP call id; NHRP's GRE's), ERSPAN
    /// session, VXLAN or Geneve VNI, GTP TEID, bottom MPLS label, PPPoE session, L2TP session, NSH
    /// service path, VXLAN-GPE VNI, LISP instance id, ZEP channel.
    pub id: Option<u32>,
    /// Set inside an sFlow sample: the packet is a sampled copy, not traffic of its own.
    pub sample: Option<sflow::Sample>,
    /// Set inside an sFlow sample or an NHRP traffic indication (the quote of a packet forwarded
    /// elsewhere): the packet is a copy, no conversation of its own (tshark lists none either).
    pub copy: bool,
}

/// A layer's bytes as captured, and how many more the wire carried (the snapshot length cut them).
#[derive(Debug, Clone, Copy, Default)]
pub struct Bytes<'a> {
    pub data: &'a [u8],
    pub missing: usize,
}

impl<'a> Bytes<'a> {
    /// `data` of a layer that was `wire_len` bytes long on the wire.
    pub fn new(data: &'a [u8], wire_len: usize) -> Self {
        Bytes { data, missing: wire_len.saturating_sub(data.len()) }
    }

    pub fn wire_len(self) -> usize {
        self.data.len() + self.missing
    }

    /// The first `n` bytes, the header of `layer`: `Ok(None)` when the wire itself carried fewer
    /// (it is not that protocol after all), an error when the capture cut them.
    fn header(self, layer: &'static str, n: usize) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.data.get(..n) {
            Some(h) => Ok(Some(h)),
            None if self.wire_len() >= n => Err(DecodeError::Truncated { layer, need: n, have: self.data.len() }),
            None => Ok(None),
        }
    }

    /// What follows the first `n` bytes.
    fn skip(self, n: usize) -> Bytes<'a> {
        Bytes { data: self.data.get(n..).unwrap_or_default(), missing: self.missing.saturating_sub(n.saturating_sub(self.data.len())) }
    }

    /// The first `len` bytes on the wire (as a length field says), never more than there were.
    fn limit(self, len: usize) -> Bytes<'a> {
        let wire = len.min(self.wire_len());
        let data = &self.data[..wire.min(self.data.len())];
        Bytes { data, missing: wire - data.len() }
    }
}

/// The next layer to decode: an ethertype ([`ETHERNET`] for a whole Ethernet frame, a
/// `wire::FRAME_*` for a radio frame) and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Inner<'a> {
    pub ethertype: u16,
    pub bytes: Bytes<'a>,
}

/// One tunnel header, parsed.
#[derive(Debug, Clone, Copy)]
pub struct Decap<'a> {
    pub kind: Kind,
    pub id: Option<u32>,
    pub inner: Inner<'a>,
    /// The VLAN the header gives for the frame it carries (ERSPAN II/III), used when the frame
    /// itself has no tag.
    pub vlan: Option<u16>,
}

/// A parser's answer: the tunnel, `None` when the bytes are not that tunnel, or an error when the
/// capture cut its header.
type Step<'a> = Result<Option<Decap<'a>>, DecodeError>;

/// The ethertype of an IP packet by its version nibble (tunnels that carry "IP" without saying
/// which), else `None`.
fn ip_by_version(b: Bytes) -> Option<u16> {
    crate::wire::ip_version_ethertype(*b.data.first()?)
}

/// The tunnel an IP packet's payload opens, if any.
#[inline(always)]
pub fn decap_ip<'a>(ip: &IpPacket<'a>) -> Step<'a> {
    let bytes = Bytes { data: ip.payload, missing: ip.payload_len.saturating_sub(ip.payload.len()) };
    let ipip = |ethertype| Ok(Some(Decap { kind: Kind::IpIp, id: None, inner: Inner { ethertype, bytes }, vlan: None }));
    match ip.proto {
        PROTO_UDP => {
            // Ports first, inline: most UDP is not tunnelled. (A cut header reads as port 0.)
            let (sport, dport) = (u16_at(ip.payload, 0), u16_at(ip.payload, 2));
            if is_tunnel_port(sport) || is_tunnel_port(dport) { udp(bytes, sport, dport) } else { Ok(None) }
        }
        PROTO_GRE => gre::decode(bytes),
        PROTO_IPIP => ipip(ETHERTYPE_IPV4),
        PROTO_IPV6 => ipip(ETHERTYPE_IPV6),
        // Ethernet as an IP payload (RFC 8986's SRv6 L2 services, past any routing header).
        PROTO_ETHERNET => Ok(Some(Decap { kind: Kind::IpEth, id: None, inner: Inner { ethertype: ETHERNET, bytes }, vlan: None })),
        PROTO_MPLS_IN_IP => mpls::decode(bytes),
        PROTO_L2TP => l2tp::v3(bytes),
        PROTO_PIM => pim::register(bytes),
        _ => Ok(None),
    }
}

/// The tunnel a link-level ethertype opens (MPLS, PPPoE), if any.
#[inline]
pub fn decap_link(next: Inner) -> Step {
    match next.ethertype {
        ETHERTYPE_MPLS | ETHERTYPE_MPLS_MULTICAST => mpls::decode(next.bytes),
        ETHERTYPE_PPPOE_SESSION => pppoe::decode(next.bytes),
        ETHERTYPE_NSH => nsh::decode(next.bytes),
        ETHERTYPE_CISCO_METADATA => cmd::decode(next.bytes),
        _ => Ok(None),
    }
}

impl Tunnel {
    /// Outside any tunnel.
    pub const NONE: Tunnel = Tunnel { scope: Scope { path: Path(0), hash: 0 }, outer: None, id: None, sample: None, copy: false };

    pub fn is_tunnelled(&self) -> bool {
        !self.scope.path.is_empty()
    }

    /// Records `decap`, found in the IP packet `carrier` (or at the link level), on the path and
    /// steps inside it; a frame it carries (Ethernet or radio) becomes the link. Past `max_depth`
    /// it is an error.
    pub fn enter<'a>(&mut self, carrier: Option<&IpPacket>, decap: Decap<'a>, link: &mut LinkFrame<'a>, max_depth: usize) -> Result<Option<Inner<'a>>, DecodeError> {
        let limit = max_depth.min(Path::CAPACITY);
        if self.scope.path.len() >= limit {
            return Err(DecodeError::TunnelTooDeep(limit));
        }
        if let Some(ip) = carrier {
            self.outer.get_or_insert((ip.src, ip.dst));
            self.scope.fold_addr(ip.src);
            self.scope.fold_addr(ip.dst);
        }
        self.scope.path.push(decap.kind);
        self.scope.fold(&[decap.kind as u8]);
        if let Some(id) = decap.id {
            self.id = Some(id);
            self.scope.fold(&id.to_be_bytes());
        }
        self.copy |= decap.kind == Kind::Nhrp;
        self.open_frame(decap.inner, decap.vlan, link)
    }

    /// Steps into `inner` when it is a frame (Ethernet or radio), which becomes the link (its VLAN,
    /// or else `vlan`); anything else is handed back as it is.
    pub fn open_frame<'a>(&mut self, inner: Inner<'a>, vlan: Option<u16>, link: &mut LinkFrame<'a>) -> Result<Option<Inner<'a>>, DecodeError> {
        let frame = if inner.ethertype == ETHERNET {
            if inner.bytes.header("Ethernet", 14)?.is_none() {
                return Ok(None);
            }
            link::ethernet(inner.bytes.data)?
        } else if link::is_ieee802154(inner.ethertype) {
            // An IEEE 802.15.4 frame: read with its wire length by the 6LoWPAN step. It is the
            // link now, without MAC-48 addresses or VLAN, as the link types' frames are.
            (link.src_mac, link.dst_mac, link.vlan) = (None, None, None);
            return Ok(Some(inner));
        } else {
            match link::radio_frame(inner.ethertype, inner.bytes.data) {
                None => return Ok(Some(inner)),
                Some(Ok(frame)) => frame,
                // Shorter on the wire than its headers: not opened, as an Ethernet frame would not be.
                Some(Err(_)) if inner.bytes.missing == 0 => return Ok(None),
                Some(Err(e)) => return Err(e),
            }
        };
        self.scope.fold(&frame.vlan_key.to_be_bytes());
        link.src_mac = frame.src_mac;
        link.dst_mac = frame.dst_mac;
        link.vlan = frame.vlan.or(vlan);
        Ok(Some(Inner { ethertype: frame.ethertype, bytes: Bytes { data: frame.payload, missing: inner.bytes.missing } }))
    }
}

/// A UDP datagram from `sport` to `dport`, one of them a tunnel's. As Wireshark, the lower port
/// is tried first, then the higher: a lower service port wins (DNS from 53 to 4789 is DNS).
fn udp(b: Bytes, sport: u16, dport: u16) -> Step {
    let (low, high) = (sport.min(dport), sport.max(dport));
    let tries = match (udp_port(low), udp_port(high)) {
        (Some(first), Some(second)) if low != high => [Some(first), Some(second)],
        (Some(first), _) => [Some(first), None],
        (None, _) if is_service_port(low) => return Ok(None),
        (None, second) => [second, None],
    };
    let Some((_, name)) = tries[0] else { return Ok(None) };
    let Some(payload) = udp_payload(b, name)? else { return Ok(None) };
    for (parse, _) in tries.into_iter().flatten() {
        if let Some(decap) = parse(payload)? {
            return Ok(Some(decap));
        }
    }
    Ok(None)
}

/// What a UDP datagram `b` carries for `name`: `Ok(None)` when it is too short to be UDP.
fn udp_payload<'a>(b: Bytes<'a>, name: &'static str) -> Result<Option<Bytes<'a>>, DecodeError> {
    let Some(header) = b.header(name, 8)? else { return Ok(None) };
    // A length field that disagrees with IP is ignored, as Wireshark flags it and goes on.
    let length = usize::from(u16_at(header, 4));
    Ok(Some(if (8..=b.wire_len()).contains(&length) { b.limit(length).skip(8) } else { b.skip(8) }))
}

/// Whether `ip` is a UDP datagram to or from sFlow's port (not a tunnel: it holds many packets).
#[inline(always)]
pub fn is_sflow(ip: &IpPacket) -> bool {
    ip.proto == PROTO_UDP && (u16_at(ip.payload, 0) == sflow::PORT || u16_at(ip.payload, 2) == sflow::PORT)
}

/// The samples of the sFlow datagram `ip` (see [`sflow::samples`]).
pub fn sflow_samples<'a>(ip: &IpPacket<'a>) -> Result<Option<sflow::Samples<'a>>, DecodeError> {
    let bytes = Bytes { data: ip.payload, missing: ip.payload_len.saturating_sub(ip.payload.len()) };
    match udp_payload(bytes, "UDP")? {
        Some(payload) => sflow::samples(payload),
        None => Ok(None),
    }
}

#[inline(always)]
fn is_tunnel_port(port: u16) -> bool {
    udp_port(port).is_some()
}

/// Common UDP services Wireshark dissects on their own port, below some tunnel's port.
fn is_service_port(port: u16) -> bool {
    matches!(port, 53 | 67 | 68 | 69 | 123 | 137 | 138 | 161 | 162 | 500 | 514 | 520 | 1812 | 1813 | 1900 | 4500 | 5353)
}

type Parser = for<'a> fn(Bytes<'a>) -> Step<'a>;

/// The tunnel registered on a UDP port, and its name for errors.
#[inline(always)]
fn udp_port(port: u16) -> Option<(Parser, &'static str)> {
    Some(match port {
        4789 => (vxlan::vxlan, "VXLAN"),
        4790 => (vxlan_gpe::decode, "VXLAN-GPE"),
        6081 => (vxlan::geneve, "Geneve"),
        2152 | 2123 => (gtp::gtp_u, "GTP"),
        3386 => (gtp::gtp_prime, "GTP'"),
        3544 => (teredo::teredo, "Teredo"),
        5072 => (teredo::ayiya, "AYIYA"),
        6635 => (mpls::decode, "MPLS"),
        1701 => (l2tp::over_udp, "L2TP"),
        4341 => (lisp::decode, "LISP"),
        5247 => (capwap::decode, "CAPWAP"),
        17754 => (zep::decode, "ZEP"),
        37008 => (tzsp::decode, "TZSP"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_packs_kinds_outermost_first() {
        let mut p = Path::default();
        assert!(p.is_empty());
        p.push(Kind::Gre);
        p.push(Kind::Pppoe);
        p.push(Kind::Gre);
        assert_eq!(p.len(), 3);
        assert_eq!(p.to_string(), "gre>pppoe>gre");
        for _ in 3..Path::CAPACITY {
            p.push(Kind::Pppoe);
        }
        assert_eq!(p.len(), Path::CAPACITY);
        assert_eq!(p.iter().last(), Some(Kind::Pppoe));
    }

    #[test]
    fn bytes_tell_cut_from_short() {
        let b = Bytes::new(&[1, 2, 3], 10);
        assert_eq!(b.header("X", 2).unwrap(), Some(&[1u8, 2][..]));
        assert!(matches!(b.header("X", 4), Err(DecodeError::Truncated { layer: "X", need: 4, have: 3 })));
        assert_eq!(b.header("X", 11).unwrap(), None);
        let s = b.skip(2);
        assert_eq!((s.data, s.missing), (&[3u8][..], 7));
        let s = b.skip(5);
        assert_eq!((s.data.len(), s.missing), (0, 5));
        let l = b.limit(2);
        assert_eq!((l.data, l.missing), (&[1u8, 2][..], 0));
        let l = b.limit(6);
        assert_eq!((l.data.len(), l.missing), (3, 3));
        assert_eq!(b.limit(99).wire_len(), 10);
    }

    #[test]
    fn depth_limit_is_an_error_not_a_loop() {
        let mut t = Tunnel::NONE;
        let mut link = LinkFrame::default();
        let data = [0x45u8];
        let decap = Decap { kind: Kind::IpIp, id: None, inner: Inner { ethertype: ETHERTYPE_IPV4, bytes: Bytes::new(&data, 1) }, vlan: None };
        assert!(t.enter(None, decap, &mut link, 2).unwrap().is_some());
        assert!(t.enter(None, decap, &mut link, 2).unwrap().is_some());
        assert_eq!(t.enter(None, decap, &mut link, 2).unwrap_err(), DecodeError::TunnelTooDeep(2));
        assert_eq!(t.scope.path.to_string(), "ipip>ipip");
    }

    #[test]
    fn radio_frames_become_the_link_and_quotes_are_copies() {
        // An 802.11 data frame to the AP, frame control swapped (as CAPWAP's), carrying IPv4.
        let mut f = vec![0x01, 0x08, 0, 0];
        f.extend((4..24).map(|i| i as u8));
        f.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00, 0x45]);
        let radio = |bytes| Decap { kind: Kind::Capwap, id: None, inner: Inner { ethertype: crate::wire::FRAME_IEEE80211_SWAPPED, bytes }, vlan: None };
        let (mut t, mut link) = (Tunnel::NONE, LinkFrame::default());
        let inner = t.enter(None, radio(Bytes::new(&f, f.len())), &mut link, 8).unwrap().unwrap();
        assert_eq!((inner.ethertype, inner.bytes.data), (ETHERTYPE_IPV4, &[0x45u8][..]));
        assert_eq!((link.src_mac, link.dst_mac, t.copy), (crate::wire::mac(&f, 10), crate::wire::mac(&f, 16), false));
        // Shorter on the wire than its header: not opened; cut by the capture: an error.
        assert!(t.enter(None, radio(Bytes::new(&f[..20], 20)), &mut link, 8).unwrap().is_none());
        assert!(matches!(t.enter(None, radio(Bytes::new(&f[..20], 40)), &mut link, 8), Err(DecodeError::Truncated { need: 24, .. })));
        let quote = Decap { kind: Kind::Nhrp, id: None, inner: Inner { ethertype: ETHERTYPE_IPV4, bytes: Bytes::new(&f[32..], 1) }, vlan: None };
        assert!(t.enter(None, quote, &mut link, 8).unwrap().is_some());
        assert!(t.copy);
    }

    #[test]
    fn udp_tries_the_lower_port_first() {
        // 2152 (GTP) beats 4789 (VXLAN): a GTP T-PDU from 4789 to 2152.
        let mut d = vec![0x12, 0xb5, 0x08, 0x68, 0, 0, 0, 0, 0x30, 0xff, 0, 1, 0, 0, 0, 9, 0x45];
        let len = d.len() as u16;
        d[4..6].copy_from_slice(&len.to_be_bytes());
        fn open(d: &[u8]) -> Option<Decap<'_>> {
            udp(Bytes::new(d, d.len()), u16_at(d, 0), u16_at(d, 2)).unwrap()
        }
        let decap = open(&d).unwrap();
        assert_eq!((decap.kind, decap.id, decap.inner.ethertype), (Kind::GtpU, Some(9), ETHERTYPE_IPV4));
        // Not GTP after all (version 2): the higher port's VXLAN gets its turn.
        d[8] = 0x48;
        assert_eq!(open(&d).unwrap().kind, Kind::Vxlan);
        // DNS's port is lower than GTP's: DNS it is.
        d[0..4].copy_from_slice(&[0, 53, 0x08, 0x68]);
        assert!(open(&d).is_none());
    }
}
