//! The `flows` table: one row per direction of each transport conversation that is not ICMP,
//! kept while reading so that an ICMP error can be held against the traffic it quotes.
//!
//! Bounded: at most `max_flows` directions are held per file. Once the table is full, packets
//! of a direction not in it are left out of `flows` (counted in `stats.max_flows_hits`, the
//! first one named in `errors`); the directions already held keep counting. Nothing is evicted,
//! so a row always covers its whole direction.
use std::net::IpAddr;
use std::sync::Arc;

use arrow_array::builder::StringViewBuilder;
use arrow_array::types::{TimestampNanosecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type};
use arrow_array::{ArrayRef, ArrowPrimitiveType, PrimitiveArray, RecordBatch};
use arrow_buffer::{BooleanBuffer, NullBuffer};
use arrow_schema::{DataType, Schema, SchemaRef};

use hashbrown::hash_table::Entry;
use hashbrown::HashTable;

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

/// The directions of one capture (or one piece of it), in order of first packet.
pub struct FlowTable {
    max: usize,
    /// Row indices into `flows`, hashed by their key: the key is stored once, in its row, and a
    /// slot is 4 bytes (a map holding the key took 80 a slot: 150 MB of fresh pages and rehash
    /// copies on the mixed benchmark capture, where nearly every packet starts a direction).
    index: HashTable<u32>,
    hasher: ahash::RandomState,
    flows: Vec<Flow>,
    /// Packets left out because the table was full.
    pub hits: u64,
}

impl FlowTable {
    pub fn new(max: usize) -> FlowTable {
        FlowTable { max, index: HashTable::new(), hasher: ahash::RandomState::new(), flows: Vec::new(), hits: 0 }
    }

    /// A table with room for `rows` directions (at most `max`), so that it never rehashes or
    /// moves its rows while growing; untouched pages of the reserve cost no memory.
    pub fn with_capacity(max: usize, rows: usize) -> FlowTable {
        let rows = rows.min(max);
        FlowTable { index: HashTable::with_capacity(rows), flows: Vec::with_capacity(rows), ..FlowTable::new(max) }
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    pub fn contains(&self, key: &FlowKey) -> bool {
        let flows = &self.flows;
        // Indices come from this table's own pushes.
        self.index.find(self.hasher.hash_one(key), |&i| flows[i as usize].key == *key).is_some()
    }

    /// Counts one packet of `ip` (a whole datagram whose transport is not ICMP), `frame_len`
    /// bytes on the wire, at `ts_ns`. Returns false when the table was full and it was left out.
    pub fn add(&mut self, ts_ns: i64, frame_len: u64, ip: &IpPacket, vlan: Option<u16>, vlan_key: u32, scope: Scope) -> bool {
        let ports = match (has_ports(ip.proto), be16(ip.payload, 0), be16(ip.payload, 2)) {
            (true, Some(s), Some(d)) => Some((s, d)),
            _ => None,
        };
        let key = FlowKey::new(ip.src, ip.dst, ports, ip.proto, vlan_key, scope);
        let tcp = if ip.proto == PROTO_TCP { tcp_segment(ip) } else { None };
        let packet = Flow { key, path: scope.path, vlan, first_ts: ts_ns, last_ts: ts_ns, packets: 1, bytes: frame_len, tcp };
        self.absorb_one(packet)
    }

    fn absorb_one(&mut self, flow: Flow) -> bool {
        // One lookup for a new direction as for a known one (a lookup and then an insert hashed
        // and probed twice: most packets of the mixed benchmark capture start a direction).
        // Indices come from this table's own pushes.
        let (flows, hasher) = (&mut self.flows, &self.hasher);
        let at = self.index.entry(hasher.hash_one(flow.key), |&i| flows[i as usize].key == flow.key, |&i| hasher.hash_one(flows[i as usize].key));
        match at {
            Entry::Occupied(at) => {
                flows[*at.get() as usize].absorb(&flow);
                true
            }
            Entry::Vacant(_) if flows.len() >= self.max => {
                self.hits += flow.packets;
                false
            }
            Entry::Vacant(slot) => {
                slot.insert(flows.len() as u32);
                flows.push(flow);
                true
            }
        }
    }

    /// Directions of `later` (the next piece of the capture) not held here.
    pub fn new_in(&self, later: &FlowTable) -> usize {
        later.flows.iter().filter(|f| !self.contains(&f.key)).count()
    }

    /// Adds the directions of the next piece of the capture, as a sequential read would have.
    /// The caller has checked that they fit (see [`FlowTable::new_in`]).
    pub fn absorb(&mut self, later: FlowTable) {
        if self.flows.is_empty() {
            let (max, hits) = (self.max, self.hits + later.hits);
            *self = later;
            (self.max, self.hits) = (max, hits);
            return;
        }
        for flow in later.flows {
            self.absorb_one(flow);
        }
        self.hits += later.hits;
    }

    pub fn take(&mut self) -> FlowTable {
        std::mem::replace(self, FlowTable::new(self.max))
    }

    pub fn rows(&self) -> &[Flow] {
        &self.flows
    }

    /// The rows as a batch (`flows_schema`). Column by column, each a tight pass over the rows
    /// into a plain vector that becomes the array's buffer: appending a row at a time to 17
    /// builders cost 700 instructions a row (callgrind, mixed_2m: finish was 15 % of the read).
    pub fn finish(&self, file: &str) -> RecordBatch {
        let (rows, n) = (&self.flows[..], self.flows.len());
        let mut addrs: Interner<IpAddr> = Interner::default();
        let (mut src, mut dst) = (KeyColumn::<IpAddr>::with_capacity(n), KeyColumn::<IpAddr>::with_capacity(n));
        for f in rows {
            src.push(&mut addrs, Some(f.key.src()));
            dst.push(&mut addrs, Some(f.key.dst()));
        }
        let mut tunnel = StringViewBuilder::with_capacity(n);
        let mut text = String::new();
        for f in rows {
            if f.path.is_empty() {
                tunnel.append_null();
            } else {
                use std::fmt::Write;
                text.clear();
                let _ = write!(text, "{}", f.path);
                tunnel.append_value(&text);
            }
        }
        let values = addrs.take_values();
        let columns: Vec<ArrayRef> = vec![
            file_column(file, n),
            Arc::new(column::<UInt8Type, _>(rows, |f| if f.key.shape & 1 == 0 { 4 } else { 6 })),
            src.finish(&values),
            dst.finish(&values),
            Arc::new(column::<UInt8Type, _>(rows, |f| f.key.proto)),
            Arc::new(optional::<UInt16Type, _>(rows, |f| f.key.ports().map(|p| p.0))),
            Arc::new(optional::<UInt16Type, _>(rows, |f| f.key.ports().map(|p| p.1))),
            Arc::new(optional::<UInt16Type, _>(rows, |f| f.vlan)),
            Arc::new(tunnel.finish()),
            Arc::new(column::<TimestampNanosecondType, _>(rows, |f| f.first_ts).with_timezone("UTC")),
            Arc::new(column::<TimestampNanosecondType, _>(rows, |f| f.last_ts).with_timezone("UTC")),
            Arc::new(column::<UInt64Type, _>(rows, |f| f.packets)),
            Arc::new(column::<UInt64Type, _>(rows, |f| f.bytes)),
            Arc::new(optional::<UInt8Type, _>(rows, |f| f.tcp.map(|t| t.flags))),
            Arc::new(optional::<UInt32Type, _>(rows, |f| f.tcp.map(|t| t.seq_first))),
            Arc::new(optional::<UInt32Type, _>(rows, |f| f.tcp.map(|t| t.seq_next))),
            Arc::new(optional::<UInt32Type, _>(rows, |f| f.tcp.and_then(|t| t.ack_last))),
        ];
        // Every column is built to the schema's type with one value per row.
        RecordBatch::try_new(flows_schema(), columns).expect("flows columns match their schema")
    }
}

/// A column with a value in every row.
fn column<T: ArrowPrimitiveType, R>(rows: &[R], value: impl Fn(&R) -> T::Native) -> PrimitiveArray<T> {
    PrimitiveArray::new(rows.iter().map(value).collect::<Vec<_>>().into(), None)
}

/// A column some rows leave null (no validity bitmap when none does).
fn optional<T: ArrowPrimitiveType, R>(rows: &[R], value: impl Fn(&R) -> Option<T::Native>) -> PrimitiveArray<T> {
    let values: Vec<T::Native> = rows.iter().map(|r| value(r).unwrap_or_default()).collect();
    let valid = BooleanBuffer::collect_bool(rows.len(), |i| value(&rows[i]).is_some());
    let nulls = (valid.count_set_bits() < rows.len()).then(|| NullBuffer::new(valid));
    PrimitiveArray::new(values.into(), nulls)
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
}
