//! The `flows` table: one row per direction of each transport conversation that is not ICMP,
//! kept while reading so that an ICMP error can be held against the traffic it quotes.
//!
//! Bounded: at most `max_flows` directions are held per file. Once the table is full, packets
//! of a direction not in it are left out of `flows` (counted in `stats.max_flows_hits`, the
//! first one named in `errors`); the directions already held keep counting. Nothing is evicted,
//! so a row always covers its whole direction.
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;

use arrow_array::builder::StringViewBuilder;
use arrow_array::types::{TimestampNanosecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type};
use arrow_array::{ArrayRef, ArrowPrimitiveType, PrimitiveArray, RecordBatch};
use arrow_buffer::{ArrowNativeType, BooleanBufferBuilder, NullBuffer};
use arrow_schema::{DataType, Schema, SchemaRef};

use crate::ip::{IpPacket, Quoted, PROTO_SCTP, PROTO_TCP, PROTO_UDP, PROTO_UDPLITE};
use crate::table::columns::{dict_type, field, ts_type, Interner, KeyColumn};
use crate::table::file_column;
use crate::tunnel::{Path, Scope};
use crate::wire::{be16, be32};

/// Directions held per file by default.
pub const DEFAULT_MAX_FLOWS: usize = 1_000_000;

const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_ACK: u8 = 0x10;

/// One direction of a conversation: addresses, protocol, ports (when the protocol has them
/// and they were captured), and the VLAN tags and tunnel it travelled in (the scope's hash,
/// which folds in its path). Packed into integers: hashing and comparing `IpAddr`s and the
/// scope's path cost 2 µs a new direction on the mixed benchmark capture (700k of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    src: u128,
    dst: u128,
    scope: u64,
    vlan_key: u32,
    /// Source port high, destination port low.
    ports: u32,
    proto: u8,
    /// Bit 0: IPv6; bit 1: has ports.
    shape: u8,
}

fn bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(a.to_bits()),
        IpAddr::V6(a) => a.to_bits(),
    }
}

impl FlowKey {
    pub fn new(src: IpAddr, dst: IpAddr, ports: Option<(u16, u16)>, proto: u8, vlan_key: u32, scope: Scope) -> FlowKey {
        let (s, d) = ports.unwrap_or_default();
        FlowKey {
            src: bits(src),
            dst: bits(dst),
            scope: scope.hash,
            vlan_key,
            ports: u32::from(s) << 16 | u32::from(d),
            proto,
            shape: u8::from(src.is_ipv6()) | u8::from(ports.is_some()) << 1,
        }
    }

    fn addr(&self, bits: u128) -> IpAddr {
        if self.shape & 1 == 1 {
            IpAddr::V6(std::net::Ipv6Addr::from_bits(bits))
        } else {
            // An IPv4 key holds 32 bits.
            IpAddr::V4(std::net::Ipv4Addr::from_bits(bits as u32))
        }
    }

    pub fn src(&self) -> IpAddr {
        self.addr(self.src)
    }

    pub fn dst(&self) -> IpAddr {
        self.addr(self.dst)
    }

    pub fn ports(&self) -> Option<(u16, u16)> {
        (self.shape & 2 != 0).then_some(((self.ports >> 16) as u16, self.ports as u16))
    }

    pub fn proto(&self) -> u8 {
        self.proto
    }
}

/// Whether `proto` carries ports in the first 4 bytes of its header.
fn has_ports(proto: u8) -> bool {
    matches!(proto, PROTO_TCP | PROTO_UDP | PROTO_SCTP | PROTO_UDPLITE)
}

impl FlowKey {
    /// The direction of the datagram an ICMP error quotes, in the scope the error travelled in;
    /// None when the quote is too short to name it.
    pub fn of_quote(q: &Quoted, vlan_key: u32, scope: Scope) -> Option<FlowKey> {
        let (src, dst, proto) = (q.src?, q.dst?, q.proto?);
        let ports = match (q.sport, q.dport) {
            (Some(s), Some(d)) => Some((s, d)),
            _ if has_ports(proto) => return None,
            _ => None,
        };
        Some(FlowKey::new(src, dst, ports, proto, vlan_key, scope))
    }
}

/// What a TCP direction sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSpace {
    pub flags: u8,
    /// Lowest sequence number sent (RFC 1982 serial order).
    pub seq_first: u32,
    /// One past the highest sequence number sent (SYN and FIN count one).
    pub seq_next: u32,
    /// Acknowledgment number of the last segment with ACK set.
    pub ack_last: Option<u32>,
}

/// `a` before `b` in sequence space (RFC 1982 serial arithmetic, 32 bits).
pub fn seq_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl TcpSpace {
    fn absorb(&mut self, later: &TcpSpace) {
        self.flags |= later.flags;
        if seq_before(later.seq_first, self.seq_first) {
            self.seq_first = later.seq_first;
        }
        if seq_before(self.seq_next, later.seq_next) {
            self.seq_next = later.seq_next;
        }
        self.ack_last = later.ack_last.or(self.ack_last);
    }
}

/// A TCP segment's header fields: None when fewer than 14 bytes (through the flags) were
/// captured or the data offset is below 5 words.
fn tcp_segment(ip: &IpPacket) -> Option<TcpSpace> {
    let h = ip.payload;
    let (seq, ack) = (be32(h, 4)?, be32(h, 8)?);
    let (offset, flags) = (usize::from(*h.get(12)? >> 4) * 4, *h.get(13)?);
    if offset < 20 {
        return None;
    }
    let data = ip.payload_len.saturating_sub(offset);
    let len = u32::try_from(data).unwrap_or(u32::MAX).wrapping_add(u32::from(flags & TCP_SYN != 0) + u32::from(flags & TCP_FIN != 0));
    Some(TcpSpace { flags, seq_first: seq, seq_next: seq.wrapping_add(len), ack_last: (flags & TCP_ACK != 0).then_some(ack) })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub key: FlowKey,
    pub path: Path,
    pub vlan: Option<u16>,
    pub first_ts: i64,
    pub last_ts: i64,
    pub packets: u64,
    pub bytes: u64,
    pub tcp: Option<TcpSpace>,
}

impl Flow {
    fn absorb(&mut self, later: &Flow) {
        self.last_ts = later.last_ts;
        self.packets += later.packets;
        self.bytes += later.bytes;
        self.tcp = match (self.tcp, later.tcp) {
            (Some(mut a), Some(b)) => {
                a.absorb(&b);
                Some(a)
            }
            (a, b) => a.or(b),
        };
    }
}

/// Packets counted ahead of their slot: a new direction's slot in an index of up to 1M rows
/// is a cache miss (~200 ns, 700k of them on the mixed benchmark capture, where nearly every
/// packet starts a direction), and its prefetch needs a few packets' work to arrive.
const AHEAD: usize = 8;

/// The directions of one capture (or one piece of it), in order of first packet.
pub struct FlowTable {
    max: usize,
    index: Index,
    hasher: ahash::RandomState,
    flows: Vec<Flow>,
    /// Packets whose slot is being prefetched, in packet order; counted before anything reads
    /// the table (see [`FlowTable::settle`]).
    ahead: VecDeque<(u64, Flow)>,
    /// Packets left out because the table was full.
    pub hits: u64,
}

impl FlowTable {
    pub fn new(max: usize) -> FlowTable {
        FlowTable { max, index: Index::default(), hasher: ahash::RandomState::new(), flows: Vec::new(), ahead: VecDeque::with_capacity(AHEAD + 1), hits: 0 }
    }

    /// A table with room for `rows` directions (at most `max`), so that it never rehashes or
    /// moves its rows while growing; untouched pages of the reserve cost no memory.
    pub fn with_capacity(max: usize, rows: usize) -> FlowTable {
        let rows = rows.min(max);
        FlowTable { index: Index::with_capacity(rows), flows: Vec::with_capacity(rows), ..FlowTable::new(max) }
    }

    pub fn len(&mut self) -> usize {
        self.settle();
        self.flows.len()
    }

    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    /// Whether the direction `key` was seen, counting every packet added before.
    pub fn contains(&mut self, key: &FlowKey) -> bool {
        self.settle();
        self.holds(key)
    }

    fn holds(&self, key: &FlowKey) -> bool {
        self.index.find(self.hasher.hash_one(key), |row| self.flows[row].key == *key).is_ok()
    }

    /// Counts one packet of `ip` (a whole datagram whose transport is not ICMP), `frame_len`
    /// bytes on the wire, at `ts_ns`. Returns false when the table was full and it was left out
    /// (counted in `hits` at once: packets are counted ahead of their slot only while every one
    /// of them would fit).
    pub fn add(&mut self, ts_ns: i64, frame_len: u64, ip: &IpPacket, vlan: Option<u16>, vlan_key: u32, scope: Scope) -> bool {
        let ports = match (has_ports(ip.proto), be16(ip.payload, 0), be16(ip.payload, 2)) {
            (true, Some(s), Some(d)) => Some((s, d)),
            _ => None,
        };
        let key = FlowKey::new(ip.src, ip.dst, ports, ip.proto, vlan_key, scope);
        let tcp = if ip.proto == PROTO_TCP { tcp_segment(ip) } else { None };
        let packet = Flow { key, path: scope.path, vlan, first_ts: ts_ns, last_ts: ts_ns, packets: 1, bytes: frame_len, tcp };
        let hash = self.hasher.hash_one(key);
        if self.flows.len() + self.ahead.len() + 1 >= self.max {
            self.settle();
            return self.absorb_one(hash, packet);
        }
        self.index.prefetch(hash);
        self.ahead.push_back((hash, packet));
        if self.ahead.len() > AHEAD {
            if let Some((hash, packet)) = self.ahead.pop_front() {
                self.absorb_one(hash, packet);
            }
        }
        true
    }

    /// Counts the packets added ahead of their slot: the table is then as a packet-by-packet
    /// count leaves it.
    pub fn settle(&mut self) {
        while let Some((hash, packet)) = self.ahead.pop_front() {
            self.absorb_one(hash, packet);
        }
    }

    fn absorb_one(&mut self, hash: u64, flow: Flow) -> bool {
        let flows = &mut self.flows;
        match self.index.find(hash, |row| flows[row].key == flow.key) {
            Ok(row) => {
                flows[row].absorb(&flow);
                true
            }
            Err(_) if flows.len() >= self.max => {
                self.hits += flow.packets;
                false
            }
            Err(slot) => {
                let row = flows.len();
                flows.push(flow);
                self.index.insert(slot, hash, row, |row| self.hasher.hash_one(flows[row].key));
                true
            }
        }
    }

    /// Directions of `later` (the next piece of the capture) not held here.
    pub fn new_in(&self, later: &FlowTable) -> usize {
        debug_assert!(self.ahead.is_empty() && later.ahead.is_empty(), "read before settle()");
        later.flows.iter().filter(|f| !self.holds(&f.key)).count()
    }

    /// Adds the directions of the next piece of the capture, as a sequential read would have.
    /// The caller has checked that they fit (see [`FlowTable::new_in`]).
    pub fn absorb(&mut self, mut later: FlowTable) {
        self.settle();
        later.settle();
        if self.flows.is_empty() {
            let (max, hits) = (self.max, self.hits + later.hits);
            *self = later;
            (self.max, self.hits) = (max, hits);
            return;
        }
        for flow in later.flows {
            self.absorb_one(self.hasher.hash_one(flow.key), flow);
        }
        self.hits += later.hits;
    }

    pub fn take(&mut self) -> FlowTable {
        self.settle();
        std::mem::replace(self, FlowTable::new(self.max))
    }

    pub fn rows(&mut self) -> &[Flow] {
        self.settle();
        &self.flows
    }

    /// The rows as a batch (`flows_schema`), in one pass over the rows into plain vectors that
    /// become the arrays' buffers: a pass a column read the 144-byte rows 17 times (11 % of a
    /// read of the mixed benchmark capture, whose 700k rows do not fit any cache), and appending
    /// a row at a time to arrow's builders cost 700 instructions a row.
    pub fn finish(&mut self, file: &str) -> RecordBatch {
        self.settle();
        let (rows, n) = (&self.flows[..], self.flows.len());
        let mut addrs: Interner<IpAddr> = Interner::default();
        let (mut src, mut dst) = (KeyColumn::<IpAddr>::with_capacity(n), KeyColumn::<IpAddr>::with_capacity(n));
        let (mut version, mut proto) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut first_ts, mut last_ts, mut packets, mut bytes) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut sport, mut dport, mut vlan) = (Nullable::new(n), Nullable::new(n), Nullable::new(n));
        let (mut flags, mut seq_first, mut seq_next, mut ack_last) = (Nullable::new(n), Nullable::new(n), Nullable::new(n), Nullable::new(n));
        let mut tunnel = StringViewBuilder::with_capacity(n);
        let mut text = String::new();
        for f in rows {
            src.push(&mut addrs, Some(f.key.src()));
            dst.push(&mut addrs, Some(f.key.dst()));
            version.push(if f.key.shape & 1 == 0 { 4u8 } else { 6 });
            proto.push(f.key.proto);
            let ports = f.key.ports();
            sport.push(ports.map(|p| p.0));
            dport.push(ports.map(|p| p.1));
            vlan.push(f.vlan);
            if f.path.is_empty() {
                tunnel.append_null();
            } else {
                use std::fmt::Write;
                text.clear();
                let _ = write!(text, "{}", f.path);
                tunnel.append_value(&text);
            }
            first_ts.push(f.first_ts);
            last_ts.push(f.last_ts);
            packets.push(f.packets);
            bytes.push(f.bytes);
            flags.push(f.tcp.map(|t| t.flags));
            seq_first.push(f.tcp.map(|t| t.seq_first));
            seq_next.push(f.tcp.map(|t| t.seq_next));
            ack_last.push(f.tcp.and_then(|t| t.ack_last));
        }
        let values = addrs.take_values();
        let columns: Vec<ArrayRef> = vec![
            file_column(file, n),
            Arc::new(PrimitiveArray::<UInt8Type>::new(version.into(), None)),
            src.finish(&values),
            dst.finish(&values),
            Arc::new(PrimitiveArray::<UInt8Type>::new(proto.into(), None)),
            Arc::new(sport.finish::<UInt16Type>()),
            Arc::new(dport.finish::<UInt16Type>()),
            Arc::new(vlan.finish::<UInt16Type>()),
            Arc::new(tunnel.finish()),
            Arc::new(PrimitiveArray::<TimestampNanosecondType>::new(first_ts.into(), None).with_timezone("UTC")),
            Arc::new(PrimitiveArray::<TimestampNanosecondType>::new(last_ts.into(), None).with_timezone("UTC")),
            Arc::new(PrimitiveArray::<UInt64Type>::new(packets.into(), None)),
            Arc::new(PrimitiveArray::<UInt64Type>::new(bytes.into(), None)),
            Arc::new(flags.finish::<UInt8Type>()),
            Arc::new(seq_first.finish::<UInt32Type>()),
            Arc::new(seq_next.finish::<UInt32Type>()),
            Arc::new(ack_last.finish::<UInt32Type>()),
        ];
        // Every column is built to the schema's type with one value per row.
        RecordBatch::try_new(flows_schema(), columns).expect("flows columns match their schema")
    }
}

/// Row indices by hash: open addressing, linear probing, at most half full. Each slot is one
/// `u64`, the hash's high half beside the row (plus one; zero is empty), so that a probe
/// compares a row's key only when the tags agree. Own code, not hashbrown, because `add` must
/// know where a key's slot is to prefetch it before probing (hashbrown does not say).
#[derive(Default)]
struct Index {
    slots: Slots,
    used: usize,
}

impl Index {
    fn with_capacity(rows: usize) -> Index {
        Index { slots: Slots::zeroed(Self::slots_for(rows)), used: 0 }
    }

    fn slots_for(rows: usize) -> usize {
        (rows.max(8) * 2).next_power_of_two()
    }

    fn home(slots: &[u64], hash: u64) -> usize {
        hash as usize & (slots.len().wrapping_sub(1))
    }

    fn prefetch(&self, hash: u64) {
        let slots = self.slots.get();
        if let Some(slot) = slots.get(Self::home(slots, hash)) {
            mem_prefetch::prefetch_write_data::<_, 3>(slot);
        }
    }

    /// The row of the key whose hash is `hash` (`same` tells it), or the empty slot for it.
    fn find(&self, hash: u64, same: impl Fn(usize) -> bool) -> Result<usize, usize> {
        Self::probe(self.slots.get(), hash, same)
    }

    fn probe(slots: &[u64], hash: u64, same: impl Fn(usize) -> bool) -> Result<usize, usize> {
        if slots.is_empty() {
            return Err(usize::MAX);
        }
        let (tag, mask) = (hash & TAG, slots.len() - 1);
        let mut at = Self::home(slots, hash);
        loop {
            let slot = slots[at];
            if slot == 0 {
                return Err(at);
            }
            if slot & TAG == tag && same(row_of(slot)) {
                return Ok(row_of(slot));
            }
            at = (at + 1) & mask;
        }
    }

    /// Fills `slot` (from [`Index::find`]) with `row`, growing first when half full (`hash_of`
    /// gives each row's hash).
    fn insert(&mut self, slot: usize, hash: u64, row: usize, hash_of: impl Fn(usize) -> u64) {
        let slot = if (self.used + 1) * 2 > self.slots.get().len() {
            self.grow(&hash_of);
            Self::vacant(self.slots.get(), hash)
        } else {
            slot
        };
        self.slots.get_mut()[slot] = hash & TAG | (row as u64 + 1);
        self.used += 1;
    }

    fn vacant(slots: &[u64], hash: u64) -> usize {
        Self::probe(slots, hash, |_| false).unwrap_err()
    }

    fn grow(&mut self, hash_of: impl Fn(usize) -> u64) {
        let old = std::mem::replace(&mut self.slots, Slots::zeroed(Self::slots_for(self.used + 1)));
        let slots = self.slots.get_mut();
        for &slot in old.get().iter().filter(|&&s| s != 0) {
            let at = Self::vacant(slots, hash_of(row_of(slot)));
            slots[at] = slot;
        }
    }
}

/// The index's slots. A large index lives in its own anonymous mapping marked for transparent
/// huge pages: its accesses are random, and with 4 KiB pages each was a TLB miss as well as
/// a cache miss (a 2D page walk in a VM), which the prefetch cannot hide.
enum Slots {
    Small(Vec<u64>),
    Mapped(memmap2::MmapMut),
}

impl Default for Slots {
    fn default() -> Self {
        Slots::Small(Vec::new())
    }
}

impl Slots {
    /// Where huge pages pay: a few of them at least.
    const MAPPED_FROM: usize = 4 << 20;

    fn zeroed(n: usize) -> Slots {
        let bytes = n * std::mem::size_of::<u64>();
        if bytes >= Self::MAPPED_FROM {
            if let Ok(map) = memmap2::MmapMut::map_anon(bytes) {
                // Advice only: without huge pages the index works the same, slower.
                let _ = map.advise(memmap2::Advice::HugePage);
                return Slots::Mapped(map);
            }
        }
        Slots::Small(vec![0; n])
    }

    fn get(&self) -> &[u64] {
        match self {
            Slots::Small(v) => v,
            // A mapping is page-aligned and a whole number of u64s long.
            Slots::Mapped(m) => bytemuck::cast_slice(m),
        }
    }

    fn get_mut(&mut self) -> &mut [u64] {
        match self {
            Slots::Small(v) => v,
            Slots::Mapped(m) => bytemuck::cast_slice_mut(m),
        }
    }
}

/// The hash bits a slot keeps; the rest holds the row.
const TAG: u64 = 0xffff_ffff_0000_0000;

/// The row a filled slot holds (stored plus one: zero is empty).
fn row_of(slot: u64) -> usize {
    (slot & !TAG) as usize - 1
}

/// Values of a column some rows leave null, and which rows have one.
struct Nullable<T> {
    values: Vec<T>,
    valid: BooleanBufferBuilder,
    nulls: usize,
}

impl<T: ArrowNativeType> Nullable<T> {
    fn new(rows: usize) -> Self {
        Nullable { values: Vec::with_capacity(rows), valid: BooleanBufferBuilder::new(rows), nulls: 0 }
    }

    #[inline]
    fn push(&mut self, value: Option<T>) {
        self.values.push(value.unwrap_or_default());
        self.valid.append(value.is_some());
        self.nulls += usize::from(value.is_none());
    }

    /// No validity bitmap when no row is null.
    fn finish<A: ArrowPrimitiveType<Native = T>>(mut self) -> PrimitiveArray<A> {
        let nulls = (self.nulls > 0).then(|| NullBuffer::new(self.valid.finish()));
        PrimitiveArray::new(self.values.into(), nulls)
    }
}

pub fn flows_schema() -> SchemaRef {
    let d = dict_type;
    Arc::new(Schema::new(vec![
        field("file", DataType::Utf8View, false),
        field("ip_version", DataType::UInt8, false),
        field("src", d(), false),
        field("dst", d(), false),
        field("proto", DataType::UInt8, false),
        field("sport", DataType::UInt16, true),
        field("dport", DataType::UInt16, true),
        field("vlan", DataType::UInt16, true),
        field("tunnel", DataType::Utf8View, true),
        field("first_ts", ts_type(), false),
        field("last_ts", ts_type(), false),
        field("packets", DataType::UInt64, false),
        field("bytes", DataType::UInt64, false),
        field("tcp_flags", DataType::UInt8, true),
        field("seq_first", DataType::UInt32, true),
        field("seq_next", DataType::UInt32, true),
        field("ack_last", DataType::UInt32, true),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn tcp(seq: u32, ack: u32, flags: u8, data: usize) -> (Vec<u8>, usize) {
        let mut h = vec![0x30, 0x39, 0, 80];
        h.extend_from_slice(&seq.to_be_bytes());
        h.extend_from_slice(&ack.to_be_bytes());
        h.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        (h, 20 + data)
    }

    fn packet<'a>(payload: &'a [u8], payload_len: usize, proto: u8) -> IpPacket<'a> {
        IpPacket {
            version: 4,
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            ttl: 64,
            tos: 0,
            ident: 0,
            df: false,
            proto,
            header_len: 20,
            payload,
            payload_len,
            fragment: None,
            atomic_fragment: None,
        }
    }

    #[test]
    fn tcp_sequence_space_counts_syn_fin_and_wraps() {
        let mut t = FlowTable::new(10);
        let scope = Scope::default();
        for (i, (seq, flags, data)) in [(u32::MAX - 1, TCP_SYN, 0), (u32::MAX, TCP_ACK, 100), (99, TCP_ACK | TCP_FIN, 0), (u32::MAX, TCP_ACK, 100)]
            .into_iter()
            .enumerate()
        {
            let (h, len) = tcp(seq, 7 + i as u32, flags, data);
            assert!(t.add(i as i64, 60, &packet(&h, len, PROTO_TCP), None, 0, scope));
        }
        let f = &t.rows()[0];
        assert_eq!((f.packets, f.bytes, f.first_ts, f.last_ts), (4, 240, 0, 3));
        // SYN at 2^32-2 takes one; 100 bytes from 2^32-1 end at 99; the FIN takes 99.
        let tcp = f.tcp.unwrap();
        assert_eq!((tcp.flags, tcp.seq_first, tcp.seq_next, tcp.ack_last), (TCP_SYN | TCP_ACK | TCP_FIN, u32::MAX - 1, 100, Some(10)));
        assert_eq!(f.key.ports(), Some((12345, 80)));
    }

    #[test]
    fn full_table_leaves_new_directions_out_and_counts_them() {
        let mut t = FlowTable::new(2);
        let udp = |sport: u16| [(sport >> 8) as u8, sport as u8, 0, 53, 0, 8, 0, 0];
        for (sport, kept) in [(1, true), (2, true), (3, false), (1, true), (3, false)] {
            let h = udp(sport);
            assert_eq!(t.add(0, 50, &packet(&h, 8, PROTO_UDP), None, 0, Scope::default()), kept);
        }
        assert_eq!((t.len(), t.hits), (2, 2));
        // Another protocol has no ports; a truncated UDP header neither.
        let mut t = FlowTable::new(5);
        t.add(0, 50, &packet(&[1, 2], 8, PROTO_UDP), None, 0, Scope::default());
        t.add(0, 50, &packet(&[1, 2, 3, 4], 8, 47), None, 0, Scope::default());
        assert_eq!(t.rows().iter().map(|f| f.key.ports()).collect::<Vec<_>>(), vec![None, None]);
    }

    #[test]
    fn pieces_absorb_as_one_table() {
        let packets: Vec<(u16, u32)> = (0..40).map(|i| (i % 7, i as u32 * 10)).collect();
        let add = |t: &mut FlowTable, (sport, seq): (u16, u32), ts: i64| {
            let (mut h, len) = tcp(seq, seq, TCP_ACK, 10);
            h[0..2].copy_from_slice(&sport.to_be_bytes());
            t.add(ts, 70, &packet(&h, len, PROTO_TCP), None, 0, Scope::default());
        };
        let mut whole = FlowTable::new(100);
        for (i, &p) in packets.iter().enumerate() {
            add(&mut whole, p, i as i64);
        }
        for cut in 0..packets.len() {
            let (mut a, mut b) = (FlowTable::new(100), FlowTable::new(100));
            for (i, &p) in packets.iter().enumerate() {
                add(if i < cut { &mut a } else { &mut b }, p, i as i64);
            }
            a.absorb(b);
            assert_eq!(a.rows(), whole.rows(), "cut at {cut}");
        }
    }

    /// Packets counted ahead of their slot, the index growing from empty, and a limit reached
    /// on the way: the same rows, hits and answers to `contains` as a count packet by packet.
    #[test]
    fn counted_ahead_as_packet_by_packet() {
        let udp = |sport: u16| [(sport >> 8) as u8, sport as u8, 0, 53, 0, 8, 0, 0];
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as u16
        };
        let packets: Vec<u16> = (0..3000).map(|_| next() % 700).collect();
        for max in [0, 1, 5, AHEAD, AHEAD + 1, 100, 600, 10_000] {
            for mut t in [FlowTable::new(max), FlowTable::with_capacity(max, 50)] {
                let (mut held, mut hits): (Vec<(u16, u64)>, u64) = (vec![], 0);
                for (i, &sport) in packets.iter().enumerate() {
                    let kept = t.add(i as i64, 50, &packet(&udp(sport), 8, PROTO_UDP), None, 0, Scope::default());
                    let room = held.len() < max;
                    let expected = match held.iter_mut().find(|(s, _)| *s == sport) {
                        Some((_, n)) => {
                            *n += 1;
                            true
                        }
                        None if room => {
                            held.push((sport, 1));
                            true
                        }
                        None => {
                            hits += 1;
                            false
                        }
                    };
                    assert_eq!((kept, t.hits), (expected, hits), "max {max}, packet {i}");
                    if i % 97 == 0 {
                        let probe = FlowKey::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), Some((sport, 53)), PROTO_UDP, 0, Scope::default());
                        assert_eq!(t.contains(&probe), expected, "max {max}, packet {i}");
                    }
                }
                t.settle();
                let rows: Vec<(u16, u64)> = t.rows().iter().map(|f| (f.key.ports().unwrap().0, f.packets)).collect();
                assert_eq!(rows, held, "max {max}");
            }
        }
    }
}
