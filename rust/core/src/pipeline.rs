//! The data path for one capture: records → link → IP → (reassembly) → ICMP → table rows, with
//! every record counted in exactly one of icmp / fragment / other / undecodable.
use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, StringBuilder, TimestampNanosecondBuilder, UInt64Builder};
use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Schema, SchemaRef};
use rayon::prelude::*;

use crate::error::{CaptureError, DecodeError};
use crate::flows::{self, FlowKey, FlowTable};
use crate::icmp;
use crate::ip::{self, IpPacket, PROTO_AH, PROTO_ICMP, PROTO_ICMPV6, PROTO_SCTP, PROTO_TCP, PROTO_UDP, PROTO_UDPLITE};
use crate::link::{self, LinkFrame};
use crate::reassembly::{self, Key, Layer, Limit, Piece, Reassembler};
use crate::source::{CaptureReader, Compression, CutIn, Limits, LocalFile, Location, Next, Packet, ReaderState};
use crate::table::columns::{field, ts_type};
use crate::table::{file_column, DatagramsTable, ErrorsTable, FragmentRow, FragmentsTable, IcmpTable, Origin};
use crate::tunnel::{self, Bytes, Inner, Tunnel};
use crate::ip::lowpan::Decompressed;
use crate::wire::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_LOWPAN, FRAME_CAPWAP_FRAGMENT};

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub reassembly: reassembly::Config,
    pub max_ext_headers: usize,
    /// Tunnels opened around one message at most (up to `tunnel::Path::CAPACITY`); a deeper one
    /// makes the record undecodable.
    pub max_tunnel_depth: usize,
    pub limits: Limits,
    /// Build the `flows` table (and `inner_flow_seen`).
    pub flows: bool,
    /// Flow directions held per file at most (see [`crate::flows`]).
    pub max_flows: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            reassembly: reassembly::Config::default(),
            max_ext_headers: ip::v6::DEFAULT_MAX_EXT_HEADERS,
            max_tunnel_depth: tunnel::DEFAULT_MAX_DEPTH,
            limits: Limits::default(),
            flows: true,
            max_flows: flows::DEFAULT_MAX_FLOWS,
        }
    }
}

/// Per-file accounting: `icmp + fragment + other + undecodable == packets`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub format: &'static str,
    pub compression: &'static str,
    pub packets: u64,
    pub icmp: u64,
    pub fragment: u64,
    pub other: u64,
    pub undecodable: u64,
    pub bytes: u64,
    pub skipped_blocks: u64,
    pub cut_short: bool,
    pub corrupt: bool,
    pub reassembled: u64,
    pub reassembly_evictions: u64,
    pub reassembly_timeouts: u64,
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
    /// Rows in `errors`.
    pub errors: u64,
    /// Hits of each resource limit, named as its `Options` field / `read_pcap` keyword.
    pub max_record_len_hits: u64,
    pub max_block_len_hits: u64,
    pub max_ext_headers_hits: u64,
    pub max_tunnel_depth_hits: u64,
    pub max_reassembly_bytes_hits: u64,
    pub max_datagrams_hits: u64,
    pub max_decompression_ratio_hits: u64,
    /// Packets left out of `flows` because it held `max_flows` directions.
    pub max_flows_hits: u64,
}

/// What one record turned into.
enum Class {
    Icmp,
    Fragment,
    Other,
    Undecodable(DecodeError),
}

pub struct FileDecoder {
    pub name: String,
    options: Options,
    pub stats: Stats,
    pub icmp: IcmpTable,
    pub fragments: FragmentsTable,
    pub datagrams: DatagramsTable,
    pub errors: ErrorsTable,
    pub flows: FlowTable,
    reassembler: Reassembler,
    /// Wire length of the record being decoded (a flow's bytes).
    frame_len: u64,
    /// Where the record being decoded starts (for errors of its sFlow samples).
    offset: u64,
    /// A piece of a capture after its first: errors quoting a direction it has not seen wait in
    /// `unseen` (index of their `inner_flow_seen` value, direction) for the pieces before it.
    later_piece: bool,
    unseen: Vec<(usize, FlowKey)>,
    /// The `errors` row of a full flow table was written.
    flows_full_noted: bool,
    /// A problem that ended reading early (cut short or corrupt), for the warning.
    pub ended_early: Option<DecodeError>,
    /// The IPv6 packet a 6LoWPAN frame compresses, rebuilt (the one decoded bytes not borrowed
    /// from the record).
    lowpan_scratch: Vec<u8>,
    /// The 6LoWPAN contexts the file taught so far (in capture order).
    lowpan_contexts: ip::lowpan::Contexts,
}

impl FileDecoder {
    /// A decoder for the capture `reader` reads.
    pub fn new(name: &str, options: Options, reader: &CaptureReader) -> Self {
        FileDecoder {
            name: name.to_owned(),
            options,
            stats: Stats {
                format: reader.format().name(),
                compression: reader.compression().name(),
                ..Stats::default()
            },
            icmp: IcmpTable::default(),
            fragments: FragmentsTable::default(),
            datagrams: DatagramsTable::default(),
            errors: ErrorsTable::default(),
            flows: FlowTable::new(options.max_flows),
            reassembler: Reassembler::new(options.reassembly),
            frame_len: 0,
            offset: 0,
            later_piece: false,
            unseen: Vec::new(),
            flows_full_noted: false,
            ended_early: None,
            lowpan_scratch: Vec::new(),
            lowpan_contexts: ip::lowpan::Contexts::EMPTY,
        }
    }

    /// Reads one capture to the end (or to where it breaks).
    pub fn run(&mut self, reader: &mut CaptureReader) {
        while self.step(reader) {}
        self.finish();
    }

    /// Reads and decodes one record; false once the capture has ended.
    pub fn step(&mut self, reader: &mut CaptureReader) -> bool {
        match reader.next() {
            Next::Packet(p) => self.packet(&p),
            Next::Skipped(e, offset) => {
                self.stats.skipped_blocks += 1;
                self.error(None, offset, &e);
            }
            Next::CutShort(e, offset, within) => {
                self.stats.cut_short = true;
                // The record cut would have been the next frame.
                let frame = (within == CutIn::Frame).then_some(self.stats.packets + 1);
                self.error(frame, offset, &e);
                self.ended_early = Some(e);
                return false;
            }
            Next::Corrupt(e, offset) => {
                self.stats.corrupt = true;
                self.error(None, offset, &e);
                self.ended_early = Some(e);
                return false;
            }
            Next::End => return false,
        }
        true
    }

    /// Records an `errors` row, counting a limit hit in `stats`.
    fn error(&mut self, frame: Option<u64>, offset: u64, e: &DecodeError) {
        let s = &mut self.stats;
        s.errors += 1;
        match e {
            DecodeError::RecordTooLong { .. } => s.max_record_len_hits += 1,
            DecodeError::BlockTooLong { .. } => s.max_block_len_hits += 1,
            DecodeError::ExtChainTooLong(_) => s.max_ext_headers_hits += 1,
            DecodeError::TunnelTooDeep(_) => s.max_tunnel_depth_hits += 1,
            DecodeError::ReassemblyMemory { .. } => s.max_reassembly_bytes_hits += 1,
            DecodeError::ReassemblyDatagrams { .. } => s.max_datagrams_hits += 1,
            DecodeError::DecompressionRatio { .. } => s.max_decompression_ratio_hits += 1,
            _ => {}
        }
        self.errors.push(frame, offset, e);
    }

    /// An `errors` row for each datagram the reassembler evicted to stay within its bounds.
    fn note_evictions(&mut self, frame: u64, offset: u64) {
        let config = self.options.reassembly;
        for (limit, first_frame) in std::mem::take(&mut self.reassembler.limit_hits) {
            let e = match limit {
                Limit::Bytes => DecodeError::ReassemblyMemory { limit: config.max_bytes, first_frame },
                Limit::Datagrams => DecodeError::ReassemblyDatagrams { limit: config.max_datagrams, first_frame },
            };
            self.error(Some(frame), offset, &e);
        }
    }

    pub fn finish(&mut self) {
        self.reassembler.finish(self.stats.last_ts);
        self.flush_datagrams();
        self.stats.reassembly_evictions = self.reassembler.evictions;
        self.stats.reassembly_timeouts = self.reassembler.timeouts;
        self.flows.settle();
        self.stats.max_flows_hits = self.flows.hits;
    }

    /// `datagrams` rows of the IP datagrams that ended; 6LoWPAN and CAPWAP pieces are not IP
    /// fragments and get none.
    fn flush_datagrams(&mut self) {
        for row in self.reassembler.finished.drain(..) {
            if row.key.layer == Layer::Ip {
                self.datagrams.push(&row);
            }
        }
    }

    pub fn packet(&mut self, p: &Packet) {
        self.stats.packets += 1;
        self.stats.bytes += p.data.len() as u64;
        self.frame_len = u64::from(p.orig_len);
        self.offset = p.offset;
        self.stats.first_ts.get_or_insert(p.ts_ns);
        self.stats.last_ts = Some(p.ts_ns);
        let at = Origin { frame: self.stats.packets, ts_ns: p.ts_ns };
        match self.classify(at, p) {
            Class::Icmp => self.stats.icmp += 1,
            Class::Fragment => self.stats.fragment += 1,
            Class::Other => self.stats.other += 1,
            Class::Undecodable(e) => {
                self.stats.undecodable += 1;
                self.error(Some(at.frame), p.offset, &e);
            }
        }
        if self.flows.hits > 0 && !self.flows_full_noted {
            self.flows_full_noted = true;
            self.error(Some(at.frame), p.offset, &DecodeError::FlowsFull { limit: self.options.max_flows });
        }
        if !self.reassembler.limit_hits.is_empty() {
            self.note_evictions(at.frame, p.offset);
        }
        if !self.reassembler.finished.is_empty() {
            self.flush_datagrams();
        }
    }

    fn classify(&mut self, at: Origin, p: &Packet) -> Class {
        // The decoders' results are borrowed where they were left: moving them out of their
        // `Result`s (40 bytes for a frame, 112 for an IP packet, 128 for a message) cost ~50
        // instructions a packet and stalled on the copies (min_5m 0.89x, mixed_2m 0.91x time).
        let decoded = link::decode(p.linktype, p.data);
        let link = match &decoded {
            Ok(l) => l,
            Err(e) => return Class::Undecodable(e.clone()),
        };
        let link_header = p.data.len() - link.payload.len();
        let wire_len = (p.orig_len as usize).saturating_sub(link_header);
        let next = Inner { ethertype: link.ethertype, bytes: Bytes::new(link.payload, wire_len) };
        // Tested behind `network`'s own test for IP, which it then shares: IP pays nothing.
        if !is_ip(next.ethertype) && next.ethertype == ETHERTYPE_LOWPAN {
            return self.lowpan(at, p, link);
        }
        self.network(at, link, next, &Tunnel::NONE, false)
    }

    /// A 6LoWPAN frame of the capture's link type. Out of line: other link types never get here.
    #[inline(never)]
    fn lowpan(&mut self, at: Origin, p: &Packet, link: &LinkFrame) -> Class {
        self.lowpan_packet(at, link, link::lowpan(p.linktype, p.data, p.orig_len as usize, link), &Tunnel::NONE)
    }

    /// A 6LoWPAN packet a tunnel carries (`next`: an IEEE 802.15.4 frame, or RFC 7973's in an
    /// Ethernet frame), decoded as the link types' are.
    #[inline(never)]
    fn tunnelled_lowpan(&mut self, at: Origin, link: &LinkFrame, next: Inner, tunnel: &Tunnel) -> Class {
        self.lowpan_packet(at, link, link::tunnelled_lowpan(next.ethertype, next.bytes.data, next.bytes.wire_len(), link), tunnel)
    }

    /// A 6LoWPAN packet: the IPv6 packet it compresses, rebuilt in `lowpan_scratch`, is decoded
    /// as any other.
    fn lowpan_packet(&mut self, at: Origin, link: &LinkFrame, carried: Result<Option<link::Lowpan>, DecodeError>, tunnel: &Tunnel) -> Class {
        let carried = match carried {
            Ok(Some(carried)) => carried,
            Ok(None) => return Class::Other,
            Err(e) => return Class::Undecodable(e),
        };
        let mut scratch = std::mem::take(&mut self.lowpan_scratch);
        // Without an 802.15.4 frame (RFC 7973), Wireshark looks contexts up in the broadcast PAN.
        let pan = carried.pan.unwrap_or(ip::lowpan::BROADCAST_PAN);
        let known = ip::lowpan::Known { contexts: &self.lowpan_contexts, pan: Some(pan) };
        let class = match ip::lowpan::decompress(carried.data, carried.wire_len, carried.ids, known, &mut scratch) {
            Ok(Decompressed::Ipv6 { wire_len }) => {
                let next = Inner { ethertype: ETHERTYPE_IPV6, bytes: Bytes::new(&scratch, wire_len) };
                let class = self.network(at, link, next, tunnel, false);
                // Its contexts apply from the next frame on, as tshark learns them.
                if let (Class::Icmp, Some(pan)) = (&class, carried.pan) {
                    self.lowpan_contexts.learn_from(pan, &scratch);
                }
                class
            }
            Ok(Decompressed::Fragment(f)) => self.lowpan_fragment(at, link, &f, &scratch, tunnel, carried.pan),
            Ok(Decompressed::Other) => Class::Other,
            Err(e) => Class::Undecodable(e),
        };
        self.lowpan_scratch = scratch;
        class
    }

    /// A 6LoWPAN fragment (its bytes, FRAG1's decompressed, in `bytes`) into the reassembler; the
    /// piece that completes the IPv6 datagram decodes it.
    #[inline(never)]
    fn lowpan_fragment(&mut self, at: Origin, link: &LinkFrame, f: &ip::lowpan::Fragment, bytes: &[u8], tunnel: &Tunnel, pan: Option<u16>) -> Class {
        // A sampled piece is one copy among many unsampled: nothing to reassemble it with.
        if tunnel.sample.is_some() {
            return Class::Fragment;
        }
        let address = |iid: [u8; 8]| IpAddr::V6(Ipv6Addr::from(u128::from(u64::from_be_bytes(iid))));
        let key = Key {
            layer: Layer::Lowpan,
            version: 6,
            src: address(f.ids.src),
            dst: address(f.ids.dst),
            proto: 0,
            id: u32::from(f.tag),
            vlan_key: link.vlan_key,
            tunnel: tunnel.scope,
        };
        let piece = Piece { frame: at.frame, ts_ns: at.ts_ns, offset: f.offset, len: f.len, more: f.more(), data: f.whole.then_some(bytes), proto: 0, header_len: 0 };
        let Some(done) = self.reassembler.add(key, piece) else { return Class::Fragment };
        self.stats.reassembled += 1;
        let next = Inner { ethertype: ETHERTYPE_IPV6, bytes: Bytes::new(&done.payload, done.payload.len()) };
        match self.network(at, link, next, tunnel, true) {
            Class::Icmp => {
                if let Some(pan) = pan {
                    self.lowpan_contexts.learn_from(pan, &done.payload);
                }
                Class::Icmp
            }
            _ => Class::Fragment,
        }
    }

    /// A CAPWAP data fragment (`piece`, its header included) into the reassembler, keyed by its
    /// carrier's addresses; the piece that completes the packet opens the frame its header names.
    #[inline(never)]
    fn capwap_fragment(&mut self, at: Origin, link: &LinkFrame, tunnel: &Tunnel, carrier: Option<&IpPacket>, piece: Inner) -> Class {
        let f = match tunnel::capwap::fragment(piece.bytes) {
            Ok(f) => f,
            Err(e) => return Class::Undecodable(e),
        };
        // A sampled piece is one copy among many unsampled: nothing to reassemble it with.
        let Some(ip) = carrier.filter(|_| tunnel.sample.is_none()) else { return Class::Fragment };
        let key = Key { layer: Layer::Capwap, version: ip.version, src: ip.src, dst: ip.dst, proto: 0, id: u32::from(f.id), vlan_key: link.vlan_key, tunnel: tunnel.scope };
        let payload = f.payload;
        let piece = Piece {
            frame: at.frame,
            ts_ns: at.ts_ns,
            offset: f.offset,
            len: u32::try_from(payload.wire_len()).unwrap_or(u32::MAX),
            more: f.more,
            data: (payload.missing == 0).then_some(payload.data),
            proto: 0,
            header_len: 0,
        };
        let Some(done) = self.reassembler.add(key, piece) else { return Class::Fragment };
        self.stats.reassembled += 1;
        let Some(ethertype) = f.frame else { return Class::Fragment };
        let (mut link, mut tunnel) = (*link, *tunnel);
        let class = match tunnel.open_frame(Inner { ethertype, bytes: Bytes::new(&done.payload, done.payload.len()) }, None, &mut link) {
            Ok(Some(next)) => self.network(at, &link, next, &tunnel, true),
            Ok(None) => Class::Other,
            Err(e) => Class::Undecodable(e),
        };
        match class {
            Class::Icmp => Class::Icmp,
            _ => Class::Fragment,
        }
    }

    /// Decodes the network layer `next` and what it carries.
    // Inlined so that plain traffic runs through one function, as before tunnels (measured:
    // the calls alone cost 3% on a capture of pings); tunnels recurse through `open`.
    #[inline(always)]
    fn network<'a>(&mut self, at: Origin, link: &LinkFrame<'a>, next: Inner<'a>, tunnel: &Tunnel, reassembled: bool) -> Class {
        if !is_ip(next.ethertype) {
            if link::is_lowpan(next.ethertype) {
                return self.tunnelled_lowpan(at, link, next, tunnel);
            }
            return match tunnel::decap_link(next) {
                Ok(Some(decap)) => self.open(at, link, tunnel, None, decap, reassembled),
                Ok(None) => Class::Other,
                Err(e) => Class::Undecodable(e),
            };
        }
        let decoded = ip::decode(next.ethertype, next.bytes.data, next.bytes.wire_len(), self.options.max_ext_headers);
        let ip = match &decoded {
            Ok(ip) => ip,
            Err(e) => return Class::Undecodable(e.clone()),
        };
        if let Some(atomic) = ip.atomic_fragment {
            self.atomic_fragment(at, link, ip, &atomic, tunnel);
        }
        if let Some(frag) = ip.fragment {
            return self.fragment(at, link, ip, &frag, tunnel);
        }
        self.transport(at, link, ip, tunnel, reassembled)
    }

    /// What a whole (unfragmented or reassembled) IP packet carries: an ICMP message becomes a
    /// row, a tunnel is opened, anything else is other.
    #[inline(always)]
    fn transport<'a>(&mut self, at: Origin, link: &LinkFrame<'a>, ip: &IpPacket<'a>, tunnel: &Tunnel, reassembled: bool) -> Class {
        if is_icmp(ip) {
            return match &decode_icmp(ip, ip.payload, ip.payload_len) {
                Ok(m) => {
                    self.icmp.push(at, link, ip, m, reassembled, tunnel);
                    if let Some(q) = &m.inner {
                        self.quoted_flow(q, link, tunnel);
                    }
                    Class::Icmp
                }
                Err(e) => Class::Undecodable(e.clone()),
            };
        }
        if ip.version == 4 && ip.proto == PROTO_AH {
            return self.authenticated(at, link, ip, tunnel, reassembled);
        }
        match tunnel::decap_ip(ip) {
            Ok(Some(decap)) => self.open(at, link, tunnel, Some(ip), decap, reassembled),
            Ok(None) if tunnel::is_sflow(ip) => self.sflow(at, link, ip, tunnel),
            Ok(None) => {
                self.flow(at, link, ip, tunnel);
                Class::Other
            }
            Err(e) => Class::Undecodable(e),
        }
    }

    /// An sFlow datagram: each sampled packet is decoded as a packet of this frame. The record
    /// is `icmp` when any sample gives a row, else undecodable when a sample was cut (its first
    /// error), else what the samples were; every other error is a row of its own.
    #[inline(never)]
    fn sflow<'a>(&mut self, at: Origin, link: &LinkFrame<'a>, ip: &IpPacket<'a>, tunnel: &Tunnel) -> Class {
        // The carrier is a conversation of its own, its samples are not (they are copies).
        self.flow(at, link, ip, tunnel);
        let samples = match tunnel::sflow_samples(ip) {
            Ok(Some(samples)) => samples,
            Ok(None) => return Class::Other,
            Err(e) => return Class::Undecodable(e),
        };
        let (mut class, mut first_error) = (Class::Other, None);
        for sampled in samples {
            let outcome = match sampled {
                Ok(s) => {
                    let decap = tunnel::Decap { kind: tunnel::Kind::Sflow, id: None, inner: s.inner, vlan: None };
                    let sampled = Tunnel { sample: Some(s.sample), copy: true, ..*tunnel };
                    self.open(at, link, &sampled, Some(ip), decap, false)
                }
                Err(e) => Class::Undecodable(e),
            };
            match outcome {
                Class::Undecodable(e) if first_error.is_none() => first_error = Some(e),
                Class::Undecodable(e) => self.error(Some(at.frame), self.offset, &e),
                Class::Icmp => class = Class::Icmp,
                Class::Fragment if !matches!(class, Class::Icmp) => class = Class::Fragment,
                _ => {}
            }
        }
        match first_error {
            Some(e) if !matches!(class, Class::Icmp) => Class::Undecodable(e),
            Some(e) => {
                self.error(Some(at.frame), self.offset, &e);
                class
            }
            None => class,
        }
    }

    /// A packet of a transport conversation (or a tunnel's carrier) into `flows`.
    #[inline(always)]
    fn flow(&mut self, at: Origin, link: &LinkFrame, ip: &IpPacket, tunnel: &Tunnel) {
        if self.options.flows && !tunnel.copy {
            self.flows.add(at.ts_ns, self.frame_len, ip, link.vlan, link.vlan_key, tunnel.scope);
        }
    }

    /// `inner_flow_seen` of the error just pushed, quoting `q`. Out of line: errors are rare.
    #[inline(never)]
    fn quoted_flow(&mut self, q: &ip::Quoted, link: &LinkFrame, tunnel: &Tunnel) {
        if !self.options.flows {
            return;
        }
        let Some(key) = FlowKey::of_quote(q, link.vlan_key, tunnel.scope) else { return };
        let seen = self.flows.contains(&key);
        if let Some(index) = self.icmp.push_flow_seen(seen) {
            if !seen && self.later_piece {
                self.unseen.push((index, key));
            }
        }
    }

    /// Errors of this piece that quoted a direction it had not seen, against `before` (the
    /// directions of the pieces before it).
    fn resolve_unseen(&mut self, before: &mut FlowTable) {
        for (index, key) in std::mem::take(&mut self.unseen) {
            if before.contains(&key) {
                self.icmp.mark_flow_seen(index);
            }
        }
    }

    /// An IPv4 packet whose payload the IPsec authentication header protects: what it protects.
    #[inline(never)]
    fn authenticated<'a>(&mut self, at: Origin, link: &LinkFrame<'a>, ip: &IpPacket<'a>, tunnel: &Tunnel, reassembled: bool) -> Class {
        match ip::skip_ah(ip) {
            Ok(inner) => self.transport(at, link, &inner, tunnel, reassembled),
            Err(e) => Class::Undecodable(e),
        }
    }

    /// Steps inside the tunnel `decap` found (in the IP packet `carrier`, or at the link level)
    /// and decodes what it carries. Out of line: plain traffic never gets here.
    #[inline(never)]
    fn open<'a>(&mut self, at: Origin, link: &LinkFrame<'a>, tunnel: &Tunnel, carrier: Option<&IpPacket>, decap: tunnel::Decap<'a>, reassembled: bool) -> Class {
        // The carrier is a conversation of its own (tshark counts it too; `flow` leaves out an
        // sFlow datagram's, counted once by `sflow`).
        if let Some(ip) = carrier {
            self.flow(at, link, ip, tunnel);
        }
        let (mut link, mut tunnel) = (*link, *tunnel);
        match tunnel.enter(carrier, decap, &mut link, self.options.max_tunnel_depth) {
            Ok(Some(inner)) if inner.ethertype == FRAME_CAPWAP_FRAGMENT => self.capwap_fragment(at, &link, &tunnel, carrier, inner),
            Ok(Some(inner)) => self.network(at, &link, inner, &tunnel, reassembled),
            Ok(None) => Class::Other,
            Err(e) => Class::Undecodable(e),
        }
    }

    fn fragment(&mut self, at: Origin, link: &LinkFrame, ip: &IpPacket, frag: &ip::Fragment, tunnel: &Tunnel) -> Class {
        let row = FragmentRow {
            proto: ip.proto,
            id: frag.id,
            offset: frag.offset,
            length: ip.payload_len,
            more: frag.more,
            tiny_first: tiny_first(ip, frag, self.options.max_ext_headers),
            atomic: false,
        };
        self.fragments.push(at, link, ip, &row, tunnel);
        // A sampled fragment is one copy among many unsampled: nothing to reassemble it with.
        if tunnel.sample.is_some() {
            return Class::Fragment;
        }
        let Some(done) = self.reassembler.add(reassembly_key(link, ip, frag, tunnel), piece(at, ip, frag)) else {
            return Class::Fragment;
        };
        self.stats.reassembled += 1;
        self.datagrams.push(&done.row);
        // IPv6: the payload starts with the first fragment's next header, maybe an extension header.
        let (proto, body) = if ip.version == 6 {
            match ip::v6::walk(done.row.proto, &done.payload, self.options.max_ext_headers) {
                Ok(chain) if chain.fragment.is_none() => (chain.proto, done.payload.get(chain.len..).unwrap_or_default()),
                _ => return Class::Fragment,
            }
        } else {
            (done.row.proto, &done.payload[..])
        };
        // Lengths of the whole datagram: its header is what the reassembled payload is not.
        let header_len = usize::try_from(done.row.total_len).unwrap_or(usize::MAX).saturating_sub(body.len());
        let whole = IpPacket { proto, header_len, payload: body, payload_len: body.len(), fragment: None, atomic_fragment: None, ..*ip };
        match self.transport(at, link, &whole, tunnel, true) {
            Class::Icmp => Class::Icmp,
            _ => Class::Fragment,
        }
    }

    /// The `fragments` row of an IPv6 atomic fragment; the packet itself is decoded whole.
    fn atomic_fragment(&mut self, at: Origin, link: &LinkFrame, ip: &IpPacket, atomic: &ip::AtomicFragment, tunnel: &Tunnel) {
        let row = FragmentRow {
            proto: atomic.next,
            id: atomic.id,
            offset: 0,
            length: ip.datagram_len().saturating_sub(atomic.end),
            more: false,
            tiny_first: false,
            atomic: true,
        };
        self.fragments.push(at, link, ip, &row, tunnel);
    }

    /// The per-file `stats` row.
    pub fn stats_batch(&self, file: &str) -> RecordBatch {
        stats_batch(file, &self.stats)
    }
}

#[inline(always)]
fn is_ip(ethertype: u16) -> bool {
    ethertype == ETHERTYPE_IPV4 || ethertype == ETHERTYPE_IPV6
}

fn is_icmp(ip: &IpPacket) -> bool {
    (ip.version == 4 && ip.proto == PROTO_ICMP) || (ip.version == 6 && ip.proto == PROTO_ICMPV6)
}

fn decode_icmp(ip: &IpPacket, data: &[u8], declared: usize) -> Result<icmp::IcmpMessage, DecodeError> {
    match (ip.src, ip.dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) => icmp::decode_v6(data, declared, &s, &d),
        _ => icmp::decode_v4(data, declared),
    }
}

/// IPv4 keys on (src, dst, protocol, id), IPv6 on (src, dst, id); both on the VLAN tags and the
/// tunnel they came through.
fn reassembly_key(link: &LinkFrame, ip: &IpPacket, frag: &ip::Fragment, tunnel: &Tunnel) -> Key {
    Key {
        layer: Layer::Ip,
        version: ip.version,
        src: ip.src,
        dst: ip.dst,
        proto: if ip.version == 4 { ip.proto } else { 0 },
        id: frag.id,
        vlan_key: link.vlan_key,
        tunnel: tunnel.scope,
    }
}

/// The reassembler's view of a fragment. As in Wireshark, only a fragment captured whole and not
/// empty carries bytes. An IPv6 datagram's header is its unfragmentable part: reassembly drops the
/// fragment header.
fn piece<'a>(at: Origin, ip: &IpPacket<'a>, frag: &ip::Fragment) -> Piece<'a> {
    const FRAGMENT_HEADER_LEN: usize = 8;
    let whole = ip.payload_len > 0 && ip.payload.len() == ip.payload_len;
    let header_len = if ip.version == 6 { ip.header_len.saturating_sub(FRAGMENT_HEADER_LEN) } else { ip.header_len };
    // Both lengths are bounded by the record size (256 KiB).
    Piece {
        frame: at.frame,
        ts_ns: at.ts_ns,
        offset: frag.offset,
        len: u32::try_from(ip.payload_len).unwrap_or(u32::MAX),
        more: frag.more,
        data: whole.then_some(ip.payload),
        proto: ip.proto,
        header_len: u32::try_from(header_len).unwrap_or(u32::MAX),
    }
}

/// Smallest header of an upper-layer protocol that a first fragment should carry whole (RFC 1858
/// tiny fragments); 0 for protocols we do not know.
fn min_transport_header(proto: u8) -> usize {
    match proto {
        PROTO_TCP => 20,
        PROTO_SCTP => 12,
        PROTO_ICMP | PROTO_ICMPV6 | PROTO_UDP | PROTO_UDPLITE => 8,
        _ => 0,
    }
}

/// A first fragment (offset 0, more to come) shorter than the headers it should carry: for IPv6,
/// the rest of the extension-header chain and the upper-layer header (RFC 7112).
fn tiny_first(ip: &IpPacket, frag: &ip::Fragment, max_ext_headers: usize) -> bool {
    if frag.offset != 0 || !frag.more {
        return false;
    }
    let need = if ip.version == 6 {
        match ip::v6::walk(ip.proto, ip.payload, max_ext_headers) {
            Ok(chain) if chain.fragment.is_none() => chain.len + min_transport_header(chain.proto),
            // The chain runs past the fragment's end (known only when it was captured whole).
            Err(DecodeError::BadExtHeader(_)) => return ip.payload.len() == ip.payload_len,
            _ => return false,
        }
    } else {
        min_transport_header(ip.proto)
    };
    ip.payload_len < need
}

pub fn stats_schema() -> SchemaRef {
    let u = || DataType::UInt64;
    Arc::new(Schema::new(vec![
        field("file", DataType::Utf8View, false),
        field("format", DataType::Utf8, false),
        field("compression", DataType::Utf8, false),
        field("packets", u(), false),
        field("icmp", u(), false),
        field("fragment", u(), false),
        field("other", u(), false),
        field("undecodable", u(), false),
        field("bytes", u(), false),
        field("skipped_blocks", u(), false),
        field("errors", u(), false),
        field("cut_short", DataType::Boolean, false),
        field("corrupt", DataType::Boolean, false),
        field("reassembled", u(), false),
        field("reassembly_evictions", u(), false),
        field("reassembly_timeouts", u(), false),
        field("first_ts", ts_type(), true),
        field("last_ts", ts_type(), true),
        field("max_record_len_hits", u(), false),
        field("max_block_len_hits", u(), false),
        field("max_ext_headers_hits", u(), false),
        field("max_tunnel_depth_hits", u(), false),
        field("max_reassembly_bytes_hits", u(), false),
        field("max_datagrams_hits", u(), false),
        field("max_decompression_ratio_hits", u(), false),
        field("max_flows_hits", u(), false),
    ]))
}

fn stats_batch(file: &str, s: &Stats) -> RecordBatch {
    let text = |v: &str| -> ArrayRef {
        let mut b = StringBuilder::new();
        b.append_value(v);
        Arc::new(b.finish())
    };
    let num = |v: u64| -> ArrayRef {
        let mut b = UInt64Builder::new();
        b.append_value(v);
        Arc::new(b.finish())
    };
    let flag = |v: bool| -> ArrayRef {
        let mut b = BooleanBuilder::new();
        b.append_value(v);
        Arc::new(b.finish())
    };
    let time = |v: Option<i64>| -> ArrayRef {
        let mut b = TimestampNanosecondBuilder::new();
        b.append_option(v);
        Arc::new(b.finish().with_timezone("UTC"))
    };
    RecordBatch::try_new(
        stats_schema(),
        vec![
            file_column(file, 1),
            text(s.format),
            text(s.compression),
            num(s.packets),
            num(s.icmp),
            num(s.fragment),
            num(s.other),
            num(s.undecodable),
            num(s.bytes),
            num(s.skipped_blocks),
            num(s.errors),
            flag(s.cut_short),
            flag(s.corrupt),
            num(s.reassembled),
            num(s.reassembly_evictions),
            num(s.reassembly_timeouts),
            time(s.first_ts),
            time(s.last_ts),
            num(s.max_record_len_hits),
            num(s.max_block_len_hits),
            num(s.max_ext_headers_hits),
            num(s.max_tunnel_depth_hits),
            num(s.max_reassembly_bytes_hits),
            num(s.max_datagrams_hits),
            num(s.max_decompression_ratio_hits),
            num(s.max_flows_hits),
        ],
    )
    .expect("stats columns match their schema")
}

/// Every table of one capture; a capture read in pieces has a record batch per piece.
pub struct FileTables {
    pub name: String,
    pub icmp: Vec<RecordBatch>,
    pub fragments: Vec<RecordBatch>,
    pub datagrams: Vec<RecordBatch>,
    pub stats: RecordBatch,
    pub errors: Vec<RecordBatch>,
    pub flows: RecordBatch,
    pub stats_values: Stats,
    pub ended_early: Option<DecodeError>,
}

/// Reads a whole capture into its tables.
pub fn read_file(path: &Path, options: Options) -> Result<FileTables, CaptureError> {
    read_file_in_parts(path, options, 1)
}

/// Reads a whole capture into its tables, an uncompressed pcap or pcapng file in up to `parts` pieces
/// decoded side by side (on rayon's threads). The result is the same as one sequential read:
///
/// - pieces start where records seem to start (`CaptureReader::split_points`), and a piece is
///   kept only if the piece before it ended exactly at its start, with no datagram left to
///   reassemble and nothing that stopped the read;
/// - otherwise that piece's decoder reads on to the end of the file and the later pieces are
///   dropped (a capture with fragments in flight everywhere gains nothing, loses nothing but the
///   work thrown away);
/// - frame numbers of a piece are shifted by the records before it.
pub fn read_file_in_parts(path: &Path, options: Options, parts: usize) -> Result<FileTables, CaptureError> {
    read_location_in_parts(&LocalFile::new(path), options, parts)
}

/// [`read_file_in_parts`] wherever the capture is: a location that opens at any offset and
/// knows its size (an object in a store) is split as a local file is; a stream is read whole,
/// in one piece.
pub fn read_location_in_parts(location: &dyn Location, options: Options, parts: usize) -> Result<FileTables, CaptureError> {
    let reader = CaptureReader::open_location(location, options.limits)?;
    let points = reader.split_points(location, parts, MIN_PIECE);
    read_pieces(location, options, reader, &points)
}

/// The most `icmp` rows `bytes` of pcap records can hold (a 16-byte record header, Ethernet,
/// IPv4 and an ICMP header: 58 bytes; raw IP frames are smaller, their table then grows), at
/// most 16M: a guess for reserving, never a limit.
fn rows_at_most(bytes: u64) -> usize {
    usize::try_from(bytes / 58).unwrap_or(usize::MAX).min(1 << 24)
}

/// Pieces smaller than this are not worth a thread.
const MIN_PIECE: u64 = 16 << 20;

/// Reads the capture `reader` has opened in pieces starting at `points` (guesses, checked).
fn read_pieces(location: &dyn Location, options: Options, reader: CaptureReader, points: &[u64]) -> Result<FileTables, CaptureError> {
    let name = location.name().to_owned();
    let rest = reader.resume_at(location, points)?;
    let readers: Vec<CaptureReader> = std::iter::once(reader).chain(rest).collect();
    // The state each piece starts in: the piece before must end in it.
    let starts: Vec<ReaderState> = readers.iter().skip(1).map(CaptureReader::state).collect();
    let ends: Vec<Option<u64>> = points.iter().map(|&p| Some(p)).chain([None]).collect();
    // An uncompressed file's size bounds the rows of each piece.
    let size = (readers[0].compression() == Compression::None).then(|| location.size().ok()).flatten();
    let pieces: Vec<(FileDecoder, CaptureReader, Reached)> = readers
        .into_par_iter()
        .zip(ends)
        .enumerate()
        .map(|(i, (mut reader, end))| {
            let mut decoder = FileDecoder::new(&name, options, &reader);
            decoder.later_piece = i > 0;
            if let Some(bytes) = end.or(size).map(|end| end.saturating_sub(reader.offset())) {
                decoder.icmp = IcmpTable::with_capacity(rows_at_most(bytes));
                if options.flows {
                    decoder.flows = FlowTable::with_capacity(options.max_flows, rows_at_most(bytes));
                }
            }
            let reached = match end {
                Some(end) => decoder.run_until(&mut reader, end),
                None => {
                    decoder.run(&mut reader);
                    Reached::End
                }
            };
            (decoder, reader, reached)
        })
        .collect();
    let mut kept = Vec::with_capacity(pieces.len());
    let mut pieces = pieces.into_iter().peekable();
    let mut next_starts = starts.iter();
    // The directions of the pieces kept so far, then of this one: they end in the last decoder.
    let mut flows = FlowTable::new(options.max_flows);
    while let Some((mut decoder, mut reader, reached)) = pieces.next() {
        decoder.resolve_unseen(&mut flows);
        flows.absorb(decoder.flows.take());
        let next_fits = next_starts.next().is_some_and(|start| reader.state().same_as(start));
        // The next piece's flows join as a sequential read would have them only if the table
        // holds them all: a piece that left packets out might have left out some of a direction
        // the pieces before it hold.
        let flows_fit = pieces.peek().is_some_and(|(next, ..)| next.flows.hits == 0 && flows.len() + flows.new_in(&next.flows) <= options.max_flows);
        // Contexts learned hold for the frames after: the next piece, read without them, is of no use.
        let contexts_fit = decoder.lowpan_contexts.is_empty();
        if reached == Reached::Exactly && decoder.reassembler.in_flight() == 0 && next_fits && flows_fit && contexts_fit {
            decoder.finish();
            kept.push(decoder);
            continue;
        }
        // The later pieces are of no use: their tables go before this decoder reads on, with
        // the directions of the pieces before it.
        pieces = Vec::new().into_iter().peekable();
        decoder.flows_full_noted = flows.hits > 0;
        decoder.flows = flows.take();
        if reached != Reached::End {
            decoder.run(&mut reader);
        } else {
            decoder.stats.max_flows_hits = decoder.flows.hits;
        }
        kept.push(decoder);
    }
    Ok(FileTables::join(name, kept))
}

/// How a piece of a capture ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reached {
    /// Its last record ended exactly where the next piece starts.
    Exactly,
    /// A record ran across the next piece's start: that start was not a record's.
    Past,
    /// The capture ended (cleanly or not) before the next piece: the decoder is finished.
    End,
}

impl FileDecoder {
    /// Reads records that start before `end`; `finish` is left to the caller unless the
    /// capture ended.
    fn run_until(&mut self, reader: &mut CaptureReader, end: u64) -> Reached {
        while reader.offset() < end {
            if !self.step(reader) {
                self.finish();
                return Reached::End;
            }
        }
        self.flows.settle();
        if reader.offset() == end { Reached::Exactly } else { Reached::Past }
    }
}

impl FileTables {
    /// The tables of consecutive pieces of one capture (each finished), as one capture's.
    fn join(name: String, pieces: Vec<FileDecoder>) -> FileTables {
        let mut stats = Stats::default();
        let (mut icmp, mut fragments, mut datagrams, mut errors) = (vec![], vec![], vec![], vec![]);
        let mut ended_early = None;
        let mut flows = None;
        for mut piece in pieces {
            let base = stats.packets;
            icmp.push(shift_frames(piece.icmp.finish(&name), &["frame"], base));
            fragments.push(shift_frames(piece.fragments.finish(&name), &["frame"], base));
            datagrams.push(shift_frames(piece.datagrams.finish(&name), &["first_frame", "last_frame"], base));
            errors.push(shift_frames(piece.errors.finish(&name), &["frame"], base));
            stats.absorb(&piece.stats);
            ended_early = piece.ended_early.take();
            flows = Some(piece.flows.finish(&name));
        }
        let flows = flows.unwrap_or_else(|| FlowTable::new(0).finish(&name));
        FileTables { stats: stats_batch(&name, &stats), icmp, fragments, datagrams, errors, flows, name, stats_values: stats, ended_early }
    }
}

/// `batch` with `base` added to its frame-number columns (UInt64, maybe null).
fn shift_frames(batch: RecordBatch, columns: &[&str], base: u64) -> RecordBatch {
    if base == 0 {
        return batch;
    }
    let mut arrays = batch.columns().to_vec();
    for name in columns {
        // The column names are our own tables'.
        let at = batch.schema().index_of(name).expect("frame column of our own table");
        let frames = arrays[at].as_primitive::<UInt64Type>().unary::<_, UInt64Type>(|f| f + base);
        arrays[at] = Arc::new(frames);
    }
    RecordBatch::try_new(batch.schema(), arrays).expect("same schema, same lengths")
}

impl Stats {
    /// Adds the counts of the piece of the capture after this one.
    fn absorb(&mut self, next: &Stats) {
        self.format = next.format;
        self.compression = next.compression;
        for (total, more) in [
            (&mut self.packets, next.packets),
            (&mut self.icmp, next.icmp),
            (&mut self.fragment, next.fragment),
            (&mut self.other, next.other),
            (&mut self.undecodable, next.undecodable),
            (&mut self.bytes, next.bytes),
            (&mut self.skipped_blocks, next.skipped_blocks),
            (&mut self.reassembled, next.reassembled),
            (&mut self.reassembly_evictions, next.reassembly_evictions),
            (&mut self.reassembly_timeouts, next.reassembly_timeouts),
            (&mut self.errors, next.errors),
            (&mut self.max_record_len_hits, next.max_record_len_hits),
            (&mut self.max_block_len_hits, next.max_block_len_hits),
            (&mut self.max_ext_headers_hits, next.max_ext_headers_hits),
            (&mut self.max_tunnel_depth_hits, next.max_tunnel_depth_hits),
            (&mut self.max_reassembly_bytes_hits, next.max_reassembly_bytes_hits),
            (&mut self.max_datagrams_hits, next.max_datagrams_hits),
            (&mut self.max_decompression_ratio_hits, next.max_decompression_ratio_hits),
            (&mut self.max_flows_hits, next.max_flows_hits),
        ] {
            *total += more;
        }
        self.cut_short |= next.cut_short;
        self.corrupt |= next.corrupt;
        self.first_ts = self.first_ts.or(next.first_ts);
        self.last_ts = next.last_ts.or(self.last_ts);
    }
}

impl FileDecoder {
    pub fn into_tables(self) -> FileTables {
        let name = self.name.clone();
        FileTables::join(name, vec![self])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, StringArray, UInt32Array};

    fn record(out: &mut Vec<u8>, sec: u32, frame: &[u8], caplen: usize) {
        for v in [sec, 0, caplen as u32, frame.len() as u32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&frame[..caplen]);
    }

    /// Ethernet + IPv4 carrying `payload` (ICMP) at fragment `offset` (8-byte units) with `more`.
    fn ipv4(src: u8, id: u16, offset: u16, more: bool, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        let total = (20 + payload.len()) as u16;
        let flags = offset | if more { 0x2000 } else { 0 };
        f.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, (id >> 8) as u8, id as u8]);
        f.extend_from_slice(&[(flags >> 8) as u8, flags as u8, 64, 1, 0, 0, 10, 0, 0, src, 10, 0, 0, 99]);
        f.extend_from_slice(payload);
        f
    }

    /// Pings from several hosts, a datagram in three fragments, and a last record cut short;
    /// with `corrupt`, a fragment that never completes and a record too long to be one after
    /// the 30th ping (reading stops there, the datagram still in flight).
    fn capture(corrupt: bool) -> Vec<u8> {
        let mut out = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
        let ping = |seq: u8| vec![8, 0, 0, 0, 0, 1, 0, seq, 0xab, 0xcd, 0xef, seq];
        for i in 0..40u8 {
            record(&mut out, 1000 + u32::from(i), &ipv4(i % 5, u16::from(i), 0, false, &ping(i)), 46);
            if i == 30 && corrupt {
                let lone = ipv4(8, 555, 0, true, &[8, 0, 0, 0, 0, 3, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8]);
                record(&mut out, 1031, &lone, lone.len());
                out.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0]);
            }
            if i == 20 {
                let message: Vec<u8> = [8, 0, 0, 0, 0, 2, 0, 1].into_iter().chain(0..40).collect();
                for (k, part) in message.chunks(16).enumerate() {
                    let more = k < 2;
                    let frame = ipv4(7, 999, (k * 2) as u16, more, part);
                    record(&mut out, 1021, &frame, frame.len());
                }
            }
        }
        let last = ipv4(1, 1, 0, false, &ping(99));
        record(&mut out, 1100, &last, last.len());
        out.truncate(out.len() - 5);
        out
    }

    fn frames(batches: &[RecordBatch], column: &str) -> Vec<Option<u64>> {
        let mut all = Vec::new();
        for b in batches {
            let c = b.column_by_name(column).unwrap().as_primitive::<UInt64Type>();
            all.extend((0..c.len()).map(|i| c.is_valid(i).then(|| c.value(i))));
        }
        all
    }

    fn sources(batches: &[RecordBatch]) -> Vec<String> {
        let mut all = Vec::new();
        for b in batches {
            let dict = b.column_by_name("src").unwrap().as_dictionary::<arrow_array::types::UInt32Type>();
            let values = dict.values().as_any().downcast_ref::<StringArray>().unwrap();
            let keys: &UInt32Array = dict.keys();
            all.extend(keys.values().iter().map(|&k| values.value(k as usize).to_owned()));
        }
        all
    }

    fn error_places(batches: &[RecordBatch]) -> Vec<(Option<u64>, Option<u64>)> {
        frames(batches, "frame").into_iter().zip(frames(batches, "offset")).collect()
    }

    fn timestamps(batches: &[RecordBatch]) -> Vec<i64> {
        batches.iter().flat_map(|b| b.column_by_name("ts").unwrap().as_primitive::<arrow_array::types::TimestampNanosecondType>().values().to_vec()).collect()
    }

    /// Reads `path` in pieces starting at `points`, checks that every table equals `whole`'s
    /// (a sequential read) and returns how many pieces were kept.
    fn pieces_read_as_whole(path: &Path, whole: &FileTables, points: &[u64]) -> usize {
        pieces_read_as_whole_with(path, whole, points, Options::default())
    }

    fn pieces_read_as_whole_with(path: &Path, whole: &FileTables, points: &[u64], options: Options) -> usize {
        let reader = CaptureReader::open(path).unwrap();
        let t = read_pieces(&LocalFile::new(path), options, reader, points).unwrap();
        assert_eq!(t.flows, whole.flows, "split at {points:?}");
        let seen = |batches: &[RecordBatch]| -> Vec<Option<bool>> {
            batches.iter().flat_map(|b| b.column_by_name("inner_flow_seen").unwrap().as_boolean().iter().collect::<Vec<_>>()).collect()
        };
        assert_eq!(seen(&t.icmp), seen(&whole.icmp), "split at {points:?}");
        assert_eq!(t.stats_values, whole.stats_values, "split at {points:?}");
        assert_eq!(frames(&t.icmp, "frame"), frames(&whole.icmp, "frame"), "split at {points:?}");
        assert_eq!(sources(&t.icmp), sources(&whole.icmp), "split at {points:?}");
        assert_eq!(timestamps(&t.icmp), timestamps(&whole.icmp), "split at {points:?}");
        assert_eq!(frames(&t.fragments, "frame"), frames(&whole.fragments, "frame"), "split at {points:?}");
        assert_eq!(frames(&t.datagrams, "first_frame"), frames(&whole.datagrams, "first_frame"), "split at {points:?}");
        assert_eq!(frames(&t.datagrams, "last_frame"), frames(&whole.datagrams, "last_frame"), "split at {points:?}");
        assert_eq!(error_places(&t.errors), error_places(&whole.errors), "split at {points:?}");
        assert_eq!(t.ended_early.is_some(), whole.ended_early.is_some(), "split at {points:?}");
        t.icmp.len()
    }

    /// `bytes` written to a file of this process in the temporary folder.
    fn written(bytes: &[u8], name: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("icmpscope-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// `hex` as bytes.
    fn unhex(hex: &str) -> Vec<u8> {
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn a_learned_6lowpan_context_holds_in_the_pieces_after() {
        // Link type 195: pings, a router advertisement teaching context 1 (2001:db8:1::/64), then
        // an echo request whose addresses come from it, and pings again.
        let ra = unhex("41dc01cdab02000000004b120001000000004b1200416000000000283afffe800000000000000000000000000001ff0200000000000000000000000000018600a504400007080000000000000000220340110000003c20010db80001000000000000000000006583");
        let echo = unhex("41dc01cdab02000000004b120001000000004b12007af7113a8000aea700010001637478da7d");
        let mut out = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 195, 0, 0, 0];
        let mut starts = Vec::new();
        for (i, frame) in [&ra, &echo, &echo, &ra, &echo].into_iter().enumerate() {
            starts.push(out.len() as u64);
            record(&mut out, 1000 + i as u32, frame, frame.len());
        }
        let path = written(&out, "contexts.pcap");
        let whole = read_file(&path, Options::default()).unwrap();
        assert_eq!(sources(&whole.icmp), ["fe80::1", "2001:db8:1:0:212:4b00:0:1", "2001:db8:1:0:212:4b00:0:1", "fe80::1", "2001:db8:1:0:212:4b00:0:1"]);
        // The first piece learned a context: the tables are a sequential read's, by one decoder.
        for &start in &starts[1..] {
            assert_eq!(pieces_read_as_whole(&path, &whole, &[start]), 1);
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn pieces_read_as_one_sequential_read_wherever_they_start() {
        for corrupt in [false, true] {
            let bytes = capture(corrupt);
            let path = written(&bytes, &format!("pieces-{corrupt}.pcap"));
            let whole = read_file(&path, Options::default()).unwrap();
            let s = &whole.stats_values;
            if corrupt {
                assert_eq!((s.packets, s.reassembled, s.corrupt, whole.datagrams[0].num_rows()), (35, 1, true, 2));
            } else {
                assert_eq!((s.packets, s.reassembled, s.cut_short), (43, 1, true));
                // The cut record is frame 44, in every piece's numbering too (checked below).
                assert_eq!(error_places(&whole.errors).last().map(|&(frame, _)| frame), Some(Some(44)));
            }
            let mut kept_pieces = std::collections::BTreeSet::new();
            // Every byte as the start of a second piece, and pairs of starts: a start that is no
            // record's, or that falls inside the fragmented datagram or past the corruption,
            // must not change the tables.
            let starts = (24..bytes.len() as u64)
                .map(|a| vec![a])
                .chain((24..bytes.len() as u64).step_by(31).map(|a| vec![a, a + 6 * 62]));
            for points in starts {
                kept_pieces.insert(pieces_read_as_whole(&path, &whole, &points));
            }
            // Record starts were taken as pieces: the test exercised joins, not only fallbacks.
            assert_eq!(kept_pieces.into_iter().collect::<Vec<_>>(), vec![1, 2, 3]);
            std::fs::remove_file(&path).unwrap();
        }
    }

    /// Ethernet + IPv4 carrying `payload` of protocol `proto` from 10.0.0.`src` to 10.0.0.99.
    fn ipv4_proto(src: u8, proto: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = ipv4(src, 0, 0, false, payload);
        f[14 + 9] = proto;
        f
    }

    /// A TCP segment header (20 bytes) from port `sport` to 80 and `data` bytes.
    fn segment(sport: u16, seq: u32, flags: u8, data: usize) -> Vec<u8> {
        let mut h = sport.to_be_bytes().to_vec();
        h.extend_from_slice(&[0, 80]);
        h.extend_from_slice(&seq.to_be_bytes());
        h.extend_from_slice(&[0, 0, 0, 1, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        h.resize(20 + data, 0xaa);
        h
    }

    /// TCP connections and UDP probes from several hosts, interleaved, with port unreachables
    /// quoting some of them: some seen before the error, some only after, some never.
    fn flows_capture() -> Vec<u8> {
        let mut out = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
        for i in 0..60u32 {
            let host = (i % 7) as u8 + 1;
            let frame = if i % 3 == 0 {
                ipv4_proto(host, 17, &[0x10, host, 0, 53, 0, 12, 0, 0, 1, 2, 3, 4])
            } else {
                ipv4_proto(host, 6, &segment(1000 + u16::from(host), 5000 + i * 100, if i < 7 { 0x02 } else { 0x18 }, 100))
            };
            record(&mut out, 1000 + i, &frame, frame.len());
            if i % 5 == 4 {
                // An unreachable from 10.0.0.99 quoting host (i + 3) % 9's UDP probe.
                let quoted_host = ((i + 3) % 9) as u8 + 1;
                let quote = ipv4_proto(quoted_host, 17, &[0x10, quoted_host, 0, 53, 0, 12, 0, 0]);
                let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
                icmp.extend_from_slice(&quote[14..]);
                let mut error = ipv4(99, 7, 0, false, &icmp);
                error[14 + 12..14 + 20].copy_from_slice(&[10, 0, 0, 99, 10, 0, 0, quoted_host]);
                record(&mut out, 1000 + i, &error, error.len());
            }
        }
        out
    }

    #[test]
    fn flows_of_pieces_are_one_sequential_read() {
        let bytes = flows_capture();
        let path = written(&bytes, "flows-pieces.pcap");
        for max_flows in [1_000_000, 20, 9, 3] {
            let options = Options { max_flows, ..Options::default() };
            let whole = read_file_in_parts(&path, options, 1).unwrap();
            let rows = whole.flows.num_rows();
            assert_eq!(rows, 14.min(max_flows), "7 TCP and 7 UDP directions");
            assert_eq!(whole.stats_values.max_flows_hits > 0, max_flows < 14);
            let seen = whole.icmp[0].column_by_name("inner_flow_seen").unwrap().as_boolean().iter().collect::<Vec<_>>();
            assert_eq!(seen.len(), 12);
            if max_flows > 14 {
                // Hosts 8 and 9 never send; the others after their first probe (i = 0..6).
                let expected: Vec<Option<bool>> = (0..12u32).map(|k| {
                    let i = k * 5 + 4;
                    let host = (i + 3) % 9 + 1;
                    // Host h probes at i = h - 1 (mod 7 cycles of 3): its first UDP packet.
                    let first_udp = (0..60u32).find(|j| j % 3 == 0 && j % 7 + 1 == host);
                    Some(host <= 7 && first_udp.is_some_and(|j| j <= i))
                }).collect();
                assert_eq!(seen, expected);
            }
            let mut kept_pieces = std::collections::BTreeSet::new();
            for at in (24..bytes.len() as u64).step_by(7) {
                kept_pieces.insert(pieces_read_as_whole_with(&path, &whole, &[at], options));
                kept_pieces.insert(pieces_read_as_whole_with(&path, &whole, &[at, at + 700], options));
            }
            // A table that fills up early has every later piece read on by the one before it.
            assert!(kept_pieces.contains(&2) || max_flows < 14, "joins with max_flows {max_flows}");
        }
        std::fs::remove_file(&path).unwrap();
    }

    fn block(out: &mut Vec<u8>, block_type: u32, body: &[u8]) {
        let total = (12 + body.len().div_ceil(4) * 4) as u32;
        out.extend_from_slice(&block_type.to_le_bytes());
        out.extend_from_slice(&total.to_le_bytes());
        out.extend_from_slice(body);
        out.resize(out.len() + (4 - body.len() % 4) % 4, 0);
        out.extend_from_slice(&total.to_le_bytes());
    }

    fn epb(out: &mut Vec<u8>, interface: u32, ts: u64, frame: &[u8]) {
        let mut body = Vec::new();
        for v in [interface, (ts >> 32) as u32, ts as u32, frame.len() as u32, frame.len() as u32] {
            body.extend_from_slice(&v.to_le_bytes());
        }
        body.extend_from_slice(frame);
        block(out, 6, &body);
    }

    /// The pcapng counterpart of `capture`: pings, a datagram in three fragments, a name
    /// resolution block (skipped) and an unknown one (skipped and reported), a last block cut
    /// short; with `second_interface`, an interface
    /// (nanosecond timestamps) added halfway, used by the pings after it: a piece that starts
    /// there with the first packet's interfaces would misread them.
    fn capture_ng(second_interface: bool) -> Vec<u8> {
        let mut out = Vec::new();
        block(&mut out, 0x0A0D_0D0A, &[0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        block(&mut out, 1, &[1, 0, 0, 0, 0xff, 0xff, 0, 0]);
        let ping = |seq: u8| vec![8, 0, 0, 0, 0, 1, 0, seq, 0xab, 0xcd, 0xef, seq];
        for i in 0..40u8 {
            let interface = u32::from(second_interface && i > 25 && i % 2 == 0);
            epb(&mut out, interface, 1_000_000 * (1000 + u64::from(i)), &ipv4(i % 5, u16::from(i), 0, false, &ping(i)));
            if i == 10 {
                block(&mut out, 4, &[0, 0, 0, 0]);
            }
            if i == 15 {
                // An unknown block: skipped, with an error row.
                block(&mut out, 0x40, &[1, 2, 3, 4]);
            }
            if i == 20 {
                let message: Vec<u8> = [8, 0, 0, 0, 0, 2, 0, 1].into_iter().chain(0..40).collect();
                for (k, part) in message.chunks(16).enumerate() {
                    epb(&mut out, 0, 1_021_000_000, &ipv4(7, 999, (k * 2) as u16, k < 2, part));
                }
            }
            if i == 25 && second_interface {
                block(&mut out, 1, &[1, 0, 0, 0, 0xff, 0xff, 0, 0, 9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
            }
        }
        epb(&mut out, 0, 1_100_000_000, &ipv4(1, 1, 0, false, &ping(99)));
        out.truncate(out.len() - 5);
        out
    }

    #[test]
    fn pcapng_pieces_read_as_one_sequential_read_wherever_they_start() {
        for second_interface in [false, true] {
            let bytes = capture_ng(second_interface);
            let path = written(&bytes, &format!("ng-pieces-{second_interface}.pcapng"));
            let whole = read_file(&path, Options::default()).unwrap();
            let s = &whole.stats_values;
            assert_eq!((s.packets, s.icmp, s.reassembled, s.cut_short), (43, 41, 1, true));
            assert_eq!(error_places(&whole.errors).last().map(|&(frame, _)| frame), Some(Some(44)), "the cut block's frame");
            let first_packet = 28 + 20;
            let mut kept_pieces = std::collections::BTreeSet::new();
            for at in first_packet..bytes.len() as u64 {
                kept_pieces.insert(pieces_read_as_whole(&path, &whole, &[at]));
            }
            assert_eq!(kept_pieces.into_iter().collect::<Vec<_>>(), vec![1, 2], "joins were exercised");
            let points = CaptureReader::open(&path).unwrap().split_points(&LocalFile::new(&path), 3, 1);
            let mut r = CaptureReader::open(&path).unwrap();
            let mut starts = vec![];
            loop {
                match r.next() {
                    Next::Packet(p) => starts.push(p.offset),
                    Next::Skipped(..) => {}
                    _ => break,
                }
            }
            assert_eq!(points.len(), 2);
            assert!(points.iter().all(|p| starts.contains(p)), "{points:?}");
            std::fs::remove_file(&path).unwrap();
        }
    }

    #[test]
    fn split_points_land_on_record_starts() {
        let path = written(&capture(false), "split.pcap");
        let reader = CaptureReader::open(&path).unwrap();
        let mut starts = vec![];
        let mut r = CaptureReader::open(&path).unwrap();
        while let Next::Packet(p) = r.next() {
            starts.push(p.offset);
        }
        let points = reader.split_points(&LocalFile::new(&path), 4, 1);
        assert_eq!(points.len(), 3);
        assert!(points.iter().all(|p| starts.contains(p)), "{points:?}");
        assert!(points.windows(2).all(|w| w[0] < w[1]));
        assert!(reader.split_points(&LocalFile::new(&path), 4, 1 << 20).is_empty(), "too small to split");
        std::fs::remove_file(&path).unwrap();
    }
}
