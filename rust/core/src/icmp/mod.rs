//! ICMPv4 (RFC 792 and friends) and ICMPv6 (RFC 4443, 4861): the fields the `icmp` table keeps.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::DecodeError;
use crate::ip::{checksum_valid, ones_sum, quoted, Quoted, PROTO_ICMPV6};

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct IcmpMessage {
    pub icmp_type: u8,
    pub code: u8,
    pub checksum_ok: bool,
    /// The checksum field as sent: tshark pairs echo requests and replies by it.
    pub checksum: Option<u16>,
    pub id: Option<u16>,
    pub seq: Option<u16>,
    /// Bytes after the 8-byte header, as the IP header declares them.
    pub payload_len: u32,
    /// Shannon entropy (bits per byte) of the captured echo data: tunnels carry random-looking data.
    pub payload_entropy: Option<f32>,
    /// [`digest`] of the echo data after its first 16 bytes: ping changes only those (a timestamp).
    pub payload_digest: Option<u64>,
    pub gateway: Option<IpAddr>,
    pub mtu: Option<u32>,
    pub router_lifetime: Option<u16>,
    pub mask: Option<Ipv4Addr>,
    pub inner: Option<Quoted>,
}

/// An ICMPv6 router advertisement's prefix (`2001:db8:1::/64`, RFC 4861 4.6.2), or an ICMPv4
/// router advertisement's router address (no length, RFC 1256).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advertised {
    pub addr: IpAddr,
    pub len: Option<u8>,
}

impl std::fmt::Display for Advertised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.len {
            Some(len) => write!(f, "{}/{len}", self.addr),
            None => write!(f, "{}", self.addr),
        }
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The fewest captured bytes of an ICMPv4 message that tshark 4.0 gives a type and code (it reads
/// the first six bytes before it shows any): a shorter one is undecodable here too. ICMPv6 needs
/// its type and code only.
const V4_MIN_LEN: usize = 6;
const V6_MIN_LEN: usize = 2;

fn header(data: &[u8], declared_len: usize, min_len: usize) -> Result<IcmpMessage, DecodeError> {
    if data.len() < min_len {
        return Err(DecodeError::Truncated { layer: "ICMP", need: min_len, have: data.len() });
    }
    Ok(IcmpMessage {
        icmp_type: data[0],
        code: data[1],
        checksum: be16(data, 2),
        payload_len: declared_len.saturating_sub(8) as u32,
        ..Default::default()
    })
}

/// Shannon entropy of `bytes` in bits per byte (0 to 8); `None` when there are none.
pub fn entropy(bytes: &[u8]) -> Option<f32> {
    if bytes.is_empty() {
        return None;
    }
    let mut counts = [0; 256];
    Some(bits_per_byte(count(&mut counts, bytes), bytes.len()))
}

/// H = log2(n) - S / n, with S = the sum over byte values of c log2 c, in fixed point from tables
/// (a log2 per distinct value was 38% of a read of the mixed benchmark capture).
fn bits_per_byte(s: u64, n: usize) -> f32 {
    // log2 n from the table too: libm's log2 was 2% of a read of the mixed capture.
    let log2_n = tables().log2.get(n).copied().unwrap_or_else(|| (n as f64).log2());
    (log2_n - s as f64 / FIXED_ONE / n as f64).max(0.0) as f32
}

/// Counts `bytes` into `counts` (all zero before) and returns their S.
// Out of line: inlined beside the digest, LLVM stopped unrolling the byte loop (callgrind, a
// read of 200k mixed records: 711 M instructions inlined, 666 M out of line).
#[inline(never)]
fn count(counts: &mut [u32; 256], bytes: &[u8]) -> u64 {
    let tables = tables();
    if bytes.len() <= ONE_PASS {
        // S grows by (c+1) log2 (c+1) - c log2 c at each byte: one pass, no loop over the 256
        // values after it (which cost more than the bytes themselves for a 56-byte ping).
        let mut s = 0;
        for &b in bytes {
            let c = &mut counts[usize::from(b)];
            // c < bytes.len() <= ONE_PASS <= STEPS, a power of two: the mask changes nothing and
            // spares a bounds check per byte.
            s += tables.step[*c as usize & (STEPS - 1)];
            *c += 1;
        }
        s
    } else {
        for &b in bytes {
            counts[usize::from(b)] += 1;
        }
        counts.iter().map(|&c| tables.c_log2_c.get(c as usize).copied().unwrap_or_else(|| fixed(c))).sum()
    }
}

/// Bytes at the start of echo data that ping fills with its timestamp (a `struct timeval`): left
/// out of the digest, and of what [`EchoTail`] compares.
const ECHO_HEAD: usize = 16;

/// An echo data's bytes after [`ECHO_HEAD`], with their counts, S and digest. Ping and flood
/// tools send the same bytes there in every message, so bytes equal to those of a recent message
/// (compared, not hashed) are counted once (callgrind, 200k records of the mixed benchmark
/// capture: 391 M -> 293 M instructions; when every tail is new, 56 random bytes each, 342 M ->
/// 392 M).
struct EchoTail {
    bytes: Vec<u8>,
    counts: [u32; 256],
    s: u64,
    digest: u64,
}

impl Default for EchoTail {
    fn default() -> Self {
        EchoTail { bytes: Vec::new(), counts: [0; 256], s: 0, digest: 0 }
    }
}

/// Tails remembered: a capture interleaves a few message sizes (ping's default and larger ones),
/// and a miss costs little more than comparing their lengths.
const RECENT_TAILS: usize = 4;

/// The last [`RECENT_TAILS`] different tails, one set per thread (decoding stays a function of
/// its input).
#[derive(Default)]
struct RecentTails {
    tails: [EchoTail; RECENT_TAILS],
    oldest: usize,
}

thread_local! {
    static RECENT_TAILS_SEEN: std::cell::RefCell<RecentTails> = std::cell::RefCell::default();
}

impl RecentTails {
    /// `tail`, counted now (in place of the oldest) unless it is a recent one.
    fn get(&mut self, tail: &[u8]) -> &mut EchoTail {
        let at = match self.tails.iter().position(|t| t.is(tail)) {
            Some(at) => at,
            None => {
                let at = self.oldest;
                self.oldest = (at + 1) % RECENT_TAILS;
                self.tails[at].set(tail);
                at
            }
        };
        &mut self.tails[at]
    }
}

impl EchoTail {
    #[inline]
    fn is(&self, tail: &[u8]) -> bool {
        // The first bytes before the call to memcmp: most tails that differ differ there.
        self.bytes.first() == tail.first() && self.bytes == tail
    }

    fn set(&mut self, tail: &[u8]) {
        self.counts = [0; 256];
        self.s = count(&mut self.counts, tail);
        self.digest = digest(tail);
        self.bytes.clear();
        self.bytes.extend_from_slice(tail);
    }

    /// S of `head` followed by the tail; the tail's counts are left as they were.
    fn s_with(&mut self, head: &[u8]) -> u64 {
        let tables = tables();
        let mut s = self.s;
        if self.bytes.len() + head.len() <= STEPS {
            for &b in head {
                let c = &mut self.counts[usize::from(b)];
                // c < STEPS, a power of two: the mask spares a bounds check per byte.
                s += tables.step[*c as usize & (STEPS - 1)];
                *c += 1;
            }
        } else {
            for &b in head {
                let c = &mut self.counts[usize::from(b)];
                s += tables.step.get(*c as usize).copied().unwrap_or_else(|| fixed(*c + 1) - fixed(*c));
                *c += 1;
            }
        }
        head.iter().for_each(|&b| self.counts[usize::from(b)] -= 1);
        s
    }
}

/// c log2 c in fixed point: integer sums are exact, so a byte repeated 2^k times gives 0 bits.
const FIXED_ONE: f64 = (1u64 << 32) as f64;

fn fixed(c: u32) -> u64 {
    if c == 0 {
        0
    } else {
        (f64::from(c) * f64::from(c).log2() * FIXED_ONE).round() as u64
    }
}

struct EntropyTables {
    /// `fixed(c)` for the counts a packet's bytes usually reach.
    c_log2_c: Vec<u64>,
    /// `fixed(c + 1) - fixed(c)`: what one more byte of a value seen c times adds.
    step: Box<[u64; STEPS]>,
    /// log2 n for n in 0..=STEPS.
    log2: Box<[f64; STEPS + 1]>,
}

/// Size of the entropy tables (a power of two).
const STEPS: usize = 2048;
/// Echo data up to this many bytes is measured in one pass (`EntropyTables::step`); longer data
/// costs fewer instructions as a histogram summed over its 256 values afterwards (callgrind,
/// mixed capture with 1000-byte pings: -2%).
const ONE_PASS: usize = 512;

fn tables() -> &'static EntropyTables {
    static TABLES: std::sync::OnceLock<EntropyTables> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        let c_log2_c: Vec<u64> = (0..=STEPS as u32).map(fixed).collect();
        let mut step = Box::new([0; STEPS]);
        for (c, w) in c_log2_c.windows(2).enumerate() {
            step[c] = w[1] - w[0];
        }
        let mut log2 = Box::new([0.0; STEPS + 1]);
        for (n, l) in log2.iter_mut().enumerate() {
            *l = (n as f64).log2();
        }
        EntropyTables { c_log2_c, step, log2 }
    })
}

/// A cheap 64-bit digest of `bytes` (FxHash over 8-byte little-endian words, seeded with the
/// length): it tells echo data that changes from data that repeats. Written out rather than taken
/// from rustc-hash so that a stored value stays the same across its versions and platforms.
pub fn digest(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let step = |h: u64, word: [u8; 8]| (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    let (words, tail) = bytes.as_chunks::<8>();
    let h = words.iter().fold(step(0, (bytes.len() as u64).to_le_bytes()), |h, &w| step(h, w));
    if tail.is_empty() {
        return h;
    }
    let mut last = [0u8; 8];
    last[..tail.len()].copy_from_slice(tail);
    step(h, last)
}

/// The echo data actually captured (at most what the IP header declares).
fn echo_data(data: &[u8], declared_len: usize) -> &[u8] {
    data.get(8..declared_len.min(data.len())).unwrap_or_default()
}

/// Entropy and digest of echo data; the first [`ECHO_HEAD`] bytes are left out of the digest.
fn echo_fields(m: &mut IcmpMessage, data: &[u8], declared_len: usize) {
    let echo = echo_data(data, declared_len);
    if echo.len() <= ECHO_HEAD {
        m.payload_entropy = entropy(echo);
        return;
    }
    let (head, tail) = echo.split_at(ECHO_HEAD);
    RECENT_TAILS_SEEN.with_borrow_mut(|recent| {
        let tail = recent.get(tail);
        m.payload_entropy = Some(bits_per_byte(tail.s_with(head), echo.len()));
        m.payload_digest = Some(tail.digest);
    });
}

/// What a router advertisement advertises, in the order sent: an ICMPv6 one's prefixes (type
/// 134), an ICMPv4 one's router addresses (type 9); None for any other message. `data` and
/// `declared_len` as for [`decode_v4`]. Not part of [`IcmpMessage`]: adverts are rare, and a
/// list there made every message larger to move (callgrind: +1.2 % instructions on echo-only
/// records).
#[inline]
pub fn advertised(version: u8, data: &[u8], declared_len: usize) -> Option<Vec<Advertised>> {
    // Bytes after what IP declares (Ethernet padding) are no options.
    let message = || data.get(..declared_len).unwrap_or(data);
    match (version, data.first()) {
        (4, Some(9)) => Some(router_addresses(message())),
        // Options follow the reachable time and retransmission timer.
        (6, Some(134)) => Some(prefixes(message().get(16..).unwrap_or_default())),
        _ => None,
    }
}

/// The router addresses of an ICMPv4 router advertisement: `count` entries of `words` 32-bit
/// words from byte 8, the address first; fewer than 2 words is invalid (RFC 1256 5.2).
#[inline(never)]
fn router_addresses(data: &[u8]) -> Vec<Advertised> {
    let (Some(&count), Some(&words)) = (data.get(4), data.get(5)) else { return Vec::new() };
    if words < 2 {
        return Vec::new();
    }
    let stride = usize::from(words) * 4;
    (0..usize::from(count))
        .map_while(|i| be32(data, 8 + i * stride))
        .map(|a| Advertised { addr: IpAddr::V4(Ipv4Addr::from(a)), len: None })
        .collect()
}

/// The Prefix Information options (type 3) of an ICMPv6 router advertisement's `options`. A
/// zero-length option ends the walk (RFC 4861 says to drop such a packet; what came before is
/// kept), as does one cut short; a prefix option shorter than its 32 bytes is skipped, as Linux
/// does.
#[inline(never)]
fn prefixes(mut options: &[u8]) -> Vec<Advertised> {
    let mut found = Vec::new();
    while let [kind, units, ..] = *options {
        let Some(option) = options.get(..usize::from(units) * 8).filter(|o| !o.is_empty()) else { break };
        let prefix = option.get(16..32).and_then(|p| <[u8; 16]>::try_from(p).ok());
        if let (3, Some(&len), Some(prefix)) = (kind, option.get(2), prefix) {
            found.push(Advertised { addr: IpAddr::V6(Ipv6Addr::from(prefix)), len: Some(len) });
        }
        options = options.get(option.len()..).unwrap_or_default();
    }
    found
}

/// Decodes an ICMPv4 message. `data` is what was captured, `declared_len` what IP says.
pub fn decode_v4(data: &[u8], declared_len: usize) -> Result<IcmpMessage, DecodeError> {
    let mut m = header(data, declared_len, V4_MIN_LEN)?;
    // Verifiable only when the whole message was captured.
    m.checksum_ok = declared_len >= 4 && data.get(..declared_len).is_some_and(|msg| checksum_valid(ones_sum(msg, 0)));
    match m.icmp_type {
        0 | 8 | 13 | 14 | 15 | 16 | 17 | 18 | 37 | 38 => {
            m.id = be16(data, 4);
            m.seq = be16(data, 6);
            if matches!(m.icmp_type, 0 | 8) {
                echo_fields(&mut m, data, declared_len);
            }
            if matches!(m.icmp_type, 17 | 18) {
                m.mask = be32(data, 8).map(Ipv4Addr::from);
            }
        }
        3 | 4 | 5 | 11 | 12 => {
            if m.icmp_type == 3 && m.code == 4 {
                m.mtu = be16(data, 6).map(u32::from);
            }
            if m.icmp_type == 5 {
                m.gateway = be32(data, 4).map(|g| IpAddr::V4(Ipv4Addr::from(g)));
            }
            m.inner = data.get(8..).and_then(quoted);
        }
        9 => m.router_lifetime = be16(data, 6),
        _ => {}
    }
    Ok(m)
}

/// Decodes an ICMPv6 message; the checksum covers the pseudo-header of `src` and `dst`.
pub fn decode_v6(data: &[u8], declared_len: usize, src: &Ipv6Addr, dst: &Ipv6Addr) -> Result<IcmpMessage, DecodeError> {
    let mut m = header(data, declared_len, V6_MIN_LEN)?;
    if let Some(msg) = data.get(..declared_len).filter(|_| declared_len >= 4) {
        let mut pseudo = ones_sum(&src.octets(), 0);
        pseudo = ones_sum(&dst.octets(), pseudo);
        pseudo += (declared_len as u64 >> 16) + (declared_len as u64 & 0xffff) + u64::from(PROTO_ICMPV6);
        m.checksum_ok = checksum_valid(ones_sum(msg, pseudo));
    }
    match m.icmp_type {
        1..=4 => {
            if m.icmp_type == 2 {
                m.mtu = be32(data, 4);
            }
            m.inner = data.get(8..).and_then(quoted);
        }
        128 | 129 => {
            m.id = be16(data, 4);
            m.seq = be16(data, 6);
            echo_fields(&mut m, data, declared_len);
        }
        134 => m.router_lifetime = be16(data, 6),
        137 => {
            m.gateway = data.get(8..24).and_then(|t| <[u8; 16]>::try_from(t).ok()).map(|t| IpAddr::V6(Ipv6Addr::from(t)));
            m.inner = redirected_header(data.get(40..).unwrap_or_default(), declared_len.saturating_sub(40)).and_then(|(quote, _)| quoted(quote));
        }
        _ => {}
    }
    Ok(m)
}

/// What an error message's quote is beyond [`Quoted`]: kept apart from [`IcmpMessage`], as
/// [`advertised`] is (errors are rare, and the message grew past 128 bytes with these: a
/// `memcpy` call per message, +8 % instructions on echo-only records, callgrind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote {
    /// TTL (hop limit) of the quoted datagram, when the quote reaches it.
    pub ttl: Option<u8>,
    /// Bytes of the original datagram quoted, as carried (see [`quote_len`]).
    pub len: u32,
}

/// The quote of an error message (v4 types 3, 4, 5, 11, 12; v6 types 1 to 4 and 137); None for
/// other messages. `data` and `declared_len` as for [`decode_v4`].
#[inline(never)]
pub fn quote(version: u8, data: &[u8], declared_len: usize) -> Option<Quote> {
    let ttl_at = |quote: &[u8]| match quote.first().map(|b| b >> 4) {
        Some(4) => quote.get(8).copied(),
        Some(6) => quote.get(7).copied(),
        _ => None,
    };
    let kind = *data.first()?;
    // The RFC 4884 length field: 32-bit words at byte 5 in v4, 64-bit words at byte 4 in v6.
    let (words, unit) = match (version, kind) {
        (4, 3 | 11 | 12) => (data.get(5).copied(), 4),
        (4, 4 | 5) => (None, 4),
        (6, 1 | 3) => (data.get(4).copied(), 8),
        (6, 2 | 4) => (None, 8),
        (6, 137) => {
            let (quote, len) = redirected_header(data.get(40..).unwrap_or_default(), declared_len.saturating_sub(40))?;
            return Some(Quote { ttl: ttl_at(quote), len });
        }
        _ => return None,
    };
    Some(Quote { ttl: ttl_at(data.get(8..).unwrap_or_default()), len: quote_len(data, declared_len, words, unit) })
}

/// Bytes an RFC 4884 error quotes when its length field is 0 and an extension structure follows
/// ("compatibility" mode, 5.5: the quote padded to 128 bytes).
const COMPAT_QUOTE: usize = 128;

/// Quoted bytes of the error `data` (declared `declared_len` bytes long, header included), as
/// tshark reads them: all after the header, unless an RFC 4884 extension structure follows the
/// quote. Then the quote is the length field's (`words` of `unit` bytes) when it is set and the
/// quoted datagram claims more; when it is 0, 128 bytes if more follow and the quoted datagram
/// claims at most 128 ("compatibility" mode, 5.5: routers that send MPLS label stacks so).
fn quote_len(data: &[u8], declared_len: usize, words: Option<u8>, unit: usize) -> u32 {
    let carried = declared_len.saturating_sub(8);
    // The quoted datagram's own total length.
    let claimed = match data.get(8).map(|b| b >> 4) {
        Some(4) => be16(data, 10).map(usize::from),
        Some(6) => be16(data, 12).map(|p| usize::from(p) + 40),
        _ => None,
    };
    let quoted = match (words, claimed) {
        (Some(w), Some(claimed)) if w > 0 && carried > usize::from(w) * unit && claimed > usize::from(w) * unit => usize::from(w) * unit,
        (Some(0), Some(claimed)) if carried > COMPAT_QUOTE && claimed <= COMPAT_QUOTE => COMPAT_QUOTE,
        _ => carried,
    };
    u32::try_from(quoted).unwrap_or(u32::MAX)
}

/// The Redirected Header option (type 4) of an ICMPv6 redirect quotes the packet redirected:
/// its captured bytes, and how many it carries (its length less its 8-byte header, within the
/// `declared` bytes of options).
fn redirected_header(mut options: &[u8], mut declared: usize) -> Option<(&[u8], u32)> {
    while options.len() >= 8 {
        let len = usize::from(options[1]) * 8;
        if len == 0 {
            return None;
        }
        if options[0] == 4 {
            let carried = len.min(declared).saturating_sub(8);
            return Some((options.get(8..len.min(options.len()))?, u32::try_from(carried).unwrap_or(u32::MAX)));
        }
        options = options.get(len..)?;
        declared = declared.saturating_sub(len);
    }
    None
}

/// What a neighbour discovery message (RFC 4861: types 133 to 137) says beyond [`IcmpMessage`]:
/// kept apart from it, as [`advertised`] is, since most messages are not ND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NeighborDiscovery {
    /// Target address of a neighbour solicitation, advertisement or redirect.
    pub target: Option<Ipv6Addr>,
    /// The flag byte: a neighbour advertisement's R (0x80), S (0x40), O (0x20); a router
    /// advertisement's M (0x80), O (0x40), H (0x20), preference (0x18), proxy (0x04).
    pub flags: Option<u8>,
    /// The first source (type 1) or target (type 2) link-layer address option holding a MAC
    /// (8 bytes long), whichever the message carries (tshark's first `icmpv6.opt.linkaddr`).
    pub lladdr: Option<[u8; 6]>,
    /// A router advertisement's MTU option (type 5).
    pub mtu: Option<u32>,
    /// A router advertisement's Route Information options (type 24, RFC 4191), in order sent.
    pub routes: Vec<Advertised>,
}

/// The neighbour discovery fields of an ICMPv6 message; None for any other message. `data` and
/// `declared_len` as for [`decode_v6`].
#[inline]
pub fn neighbor_discovery(data: &[u8], declared_len: usize) -> Option<NeighborDiscovery> {
    if !matches!(data.first(), Some(133..=137)) {
        return None;
    }
    Some(nd_fields(data.get(..declared_len).unwrap_or(data)))
}

#[inline(never)]
fn nd_fields(message: &[u8]) -> NeighborDiscovery {
    let target = || message.get(8..24).and_then(|t| <[u8; 16]>::try_from(t).ok()).map(Ipv6Addr::from);
    let mut nd = NeighborDiscovery::default();
    // Where the options start.
    let options_at = match message[0] {
        133 => 8,
        134 => {
            nd.flags = message.get(5).copied();
            16
        }
        135 => {
            nd.target = target();
            24
        }
        136 => {
            nd.flags = message.get(4).map(|f| f & 0xe0);
            nd.target = target();
            24
        }
        _ => {
            nd.target = target();
            40
        }
    };
    let mut options = message.get(options_at..).unwrap_or_default();
    // As for prefixes: a zero-length option or one cut short ends the walk.
    while let [kind, units, ..] = *options {
        let Some(option) = options.get(..usize::from(units) * 8).filter(|o| !o.is_empty()) else { break };
        match kind {
            1 | 2 if option.len() == 8 && nd.lladdr.is_none() => {
                nd.lladdr = option.get(2..8).and_then(|m| <[u8; 6]>::try_from(m).ok());
            }
            5 if message[0] == 134 && nd.mtu.is_none() => nd.mtu = be32(option, 4),
            // Route Information: the prefix is 0, 8 or 16 bytes after the first 8 (RFC 4191 2.3).
            24 if message[0] == 134 => {
                if let Some(&len) = option.get(2) {
                    let mut prefix = [0u8; 16];
                    let given = option.get(8..).unwrap_or_default();
                    prefix[..given.len().min(16)].copy_from_slice(&given[..given.len().min(16)]);
                    nd.routes.push(Advertised { addr: IpAddr::V6(Ipv6Addr::from(prefix)), len: Some(len) });
                }
            }
            _ => {}
        }
        options = options.get(option.len()..).unwrap_or_default();
    }
    nd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_request_fields_and_checksum() {
        // type 8, code 0, checksum, id 0x1234, seq 1, payload "ab"
        let mut msg = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1, b'a', b'b'];
        let sum = !{
            let mut s = ones_sum(&msg, 0);
            while s > 0xffff {
                s = (s & 0xffff) + (s >> 16);
            }
            s as u16
        };
        msg[2..4].copy_from_slice(&sum.to_be_bytes());
        let m = decode_v4(&msg, msg.len()).unwrap();
        assert_eq!((m.icmp_type, m.code, m.id, m.seq, m.payload_len), (8, 0, Some(0x1234), Some(1), 2));
        assert!(m.checksum_ok);
        assert_eq!((m.checksum, m.payload_entropy), (Some(sum), Some(1.0)));
        // Cut short by the snaplen: the checksum cannot be verified.
        assert!(!decode_v4(&msg[..9], msg.len()).unwrap().checksum_ok);
        msg[9] ^= 1;
        assert!(!decode_v4(&msg, msg.len()).unwrap().checksum_ok);
    }

    #[test]
    fn entropy_in_bits_per_byte() {
        assert_eq!(entropy(b""), None);
        assert_eq!(entropy(b"aaaa"), Some(0.0));
        assert_eq!(entropy(&(0..=255u8).collect::<Vec<_>>()), Some(8.0));
        // Echo data cut short by the snaplen: the entropy of what was captured.
        let msg = [8, 0, 0, 0, 0, 1, 0, 1, b'a', b'b'];
        assert_eq!(decode_v4(&msg, 40).unwrap().payload_entropy, Some(1.0));
        // Under six bytes tshark gives an ICMPv4 message no type: undecodable.
        assert_eq!(decode_v4(&msg[..5], 40).unwrap_err(), DecodeError::Truncated { layer: "ICMP", need: 6, have: 5 });
        assert_eq!(decode_v4(&msg[..6], 40).unwrap().id, Some(1));
    }

    #[test]
    fn entropy_equals_shannons_formula_on_both_paths() {
        let naive = |bytes: &[u8]| {
            let mut counts = [0f64; 256];
            bytes.iter().for_each(|&b| counts[usize::from(b)] += 1.0);
            let n = bytes.len() as f64;
            counts.iter().filter(|&&c| c > 0.0).map(|&c| -(c / n) * (c / n).log2()).sum::<f64>()
        };
        // Lengths around the one-pass limit and past the tables; skewed data with repeats.
        for n in [1, 56, 511, 512, 513, 1000, 2048, 2049, 5000] {
            let bytes: Vec<u8> = (0..n).map(|i: usize| (i * i % 251 % 37) as u8).collect();
            let got = f64::from(entropy(&bytes).unwrap());
            assert!((got - naive(&bytes)).abs() < 1e-5, "n={n}: {got} vs {}", naive(&bytes));
        }
    }

    #[test]
    fn echo_data_counted_once_gives_what_counting_it_again_gives() {
        // Tails repeated with other heads, more distinct tails than are remembered, tails that
        // differ only after their first byte or in length, runs past the tables' counts.
        let tail = |len: usize, seed: u8| -> Vec<u8> { (0..len).map(|i| seed.wrapping_add((i % 7) as u8)).collect() };
        let mut tails = vec![tail(40, 1), tail(40, 1), tail(984, 2), tail(41, 1), tail(3000, 0), tail(40, 1)];
        let mut differs_late = tail(40, 1);
        differs_late[39] ^= 0xff;
        tails.push(differs_late);
        tails.extend((0..2 * RECENT_TAILS as u8).map(|seed| tail(40, seed)));
        tails.push(tail(40, 1));
        for (i, t) in tails.iter().enumerate() {
            for head in [[0u8; 16], [i as u8; 16], std::array::from_fn(|k| (k * 31 + i) as u8)] {
                let echo: Vec<u8> = head.iter().chain(t).copied().collect();
                let mut msg = vec![8, 0, 0, 0, 0, 1, 0, 1];
                msg.extend_from_slice(&echo);
                let m = decode_v4(&msg, msg.len()).unwrap();
                assert_eq!(m.payload_entropy, entropy(&echo), "tail {i}");
                assert_eq!(m.payload_digest, Some(digest(t)), "tail {i}");
            }
        }
    }

    #[test]
    fn echo_digest_leaves_out_the_first_16_bytes() {
        let echo = |data: &[u8]| {
            let mut msg = vec![8, 0, 0, 0, 0, 1, 0, 1];
            msg.extend_from_slice(data);
            decode_v4(&msg, msg.len()).unwrap().payload_digest
        };
        let pattern: Vec<u8> = (16..64).collect();
        let with_time = |t: u8| [&[t; 16][..], &pattern].concat();
        assert_eq!(echo(&with_time(1)), Some(digest(&pattern)));
        assert_eq!(echo(&with_time(1)), echo(&with_time(2)));
        assert_ne!(echo(&with_time(1)), echo(&[&[1; 16][..], &pattern[..47], &[0]].concat()));
        assert_eq!((echo(&[7; 16]), echo(b"")), (None, None));
        assert_eq!(echo(&[7; 17]), Some(digest(&[7])));
    }

    #[test]
    fn digest_is_fxhash_over_words_after_the_length() {
        let k = 0x517c_c1b7_2722_0a95u64;
        let step = |h: u64, w: u64| (h.rotate_left(5) ^ w).wrapping_mul(k);
        assert_eq!(digest(b""), step(0, 0));
        assert_eq!(digest(b"abcdefghij"), step(step(step(0, 10), u64::from_le_bytes(*b"abcdefgh")), u64::from(u16::from_le_bytes(*b"ij"))));
        // The length tells a zero tail from no tail.
        assert_ne!(digest(&[1, 0]), digest(&[1]));
    }

    /// A router advertisement's header and timers, then `options`.
    fn router_advert6(options: &[u8]) -> Vec<u8> {
        let mut msg = vec![134, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
        msg.extend_from_slice(options);
        msg
    }

    fn prefix_option(prefix: &str, len: u8) -> Vec<u8> {
        let mut option = vec![3, 4, len, 0xc0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0];
        option.extend_from_slice(&prefix.parse::<Ipv6Addr>().unwrap().octets());
        option
    }

    fn advertised6(msg: &[u8], declared_len: usize) -> Vec<String> {
        advertised(6, msg, declared_len).unwrap().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn prefixes_of_a_router_advertisement() {
        let source_link_layer = [1, 1, 2, 0, 0, 0, 0, 1];
        let options = [prefix_option("2001:db8:1::", 64), source_link_layer.to_vec(), prefix_option("fd00::", 48)].concat();
        let msg = router_advert6(&options);
        assert_eq!(advertised6(&msg, msg.len()), ["2001:db8:1::/64", "fd00::/48"]);
        assert_eq!(decode_v6(&msg, msg.len(), &Ipv6Addr::LOCALHOST, &Ipv6Addr::LOCALHOST).unwrap().router_lifetime, Some(1800));
        // Ethernet padding after the declared length is no option.
        let padded = [msg.clone(), prefix_option("2001:db8:bad::", 64)].concat();
        assert_eq!(advertised6(&padded, msg.len()), ["2001:db8:1::/64", "fd00::/48"]);
        assert_eq!(advertised6(&router_advert6(&[]), 16), Vec::<String>::new());
        assert_eq!(advertised6(&msg[..12], msg.len()), Vec::<String>::new());
    }

    #[test]
    fn malformed_options_end_the_walk_or_are_skipped() {
        let first = prefix_option("2001:db8:1::", 64);
        let last = prefix_option("2001:db8:2::", 64);
        // A zero-length option ends the walk; what came before it stays.
        let zero = router_advert6(&[first.clone(), vec![3, 0, 0, 0, 0, 0, 0, 0], last.clone()].concat());
        assert_eq!(advertised6(&zero, zero.len()), ["2001:db8:1::/64"]);
        // An option longer than what is left (cut by the snaplen, or lying) ends it too.
        let cut = router_advert6(&[first.clone(), last[..20].to_vec()].concat());
        assert_eq!(advertised6(&cut, cut.len() + 12), ["2001:db8:1::/64"]);
        // A prefix option of 8 bytes holds no prefix: skipped, the next one read.
        let short = router_advert6(&[vec![3, 1, 64, 0, 0, 0, 0, 0], last.clone()].concat());
        assert_eq!(advertised6(&short, short.len()), ["2001:db8:2::/64"]);
        // A lone type byte.
        let odd = router_advert6(&[first, vec![3]].concat());
        assert_eq!(advertised6(&odd, odd.len()), ["2001:db8:1::/64"]);
    }

    #[test]
    fn router_addresses_of_an_ipv4_router_advertisement() {
        let advert = |count: u8, words: u8, entries: &[[u8; 4]]| {
            let mut msg = vec![9, 0, 0, 0, count, words, 0x07, 0x08];
            for e in entries {
                msg.extend_from_slice(e);
                msg.extend(std::iter::repeat_n(0, usize::from(words.max(1)) * 4 - 4));
            }
            advertised(4, &msg, msg.len()).unwrap().iter().map(ToString::to_string).collect::<Vec<_>>()
        };
        assert_eq!(advert(2, 2, &[[192, 0, 2, 1], [192, 0, 2, 2]]), ["192.0.2.1", "192.0.2.2"]);
        // Entries of 3 words (a later version of RFC 1256): the address still comes first.
        assert_eq!(advert(2, 3, &[[10, 0, 0, 1], [10, 0, 0, 2]]), ["10.0.0.1", "10.0.0.2"]);
        // More claimed than sent: those sent; entries under 2 words are invalid.
        assert_eq!(advert(9, 2, &[[10, 0, 0, 1]]), ["10.0.0.1"]);
        assert_eq!(advert(1, 1, &[[10, 0, 0, 1]]), Vec::<String>::new());
        assert_eq!(advertised(4, &[9, 0, 0, 0], 4), Some(vec![]));
        // Only router advertisements advertise: not an echo reply, nor type 9 in ICMPv6.
        assert_eq!(advertised(4, &[0, 0, 0, 0, 0, 1, 0, 1], 8), None);
        assert_eq!(advertised(6, &[9, 0, 0, 0, 2, 2, 0, 1], 8), None);
    }

    fn neighbor_advert(flags: u8, target: &str, options: &[u8]) -> Vec<u8> {
        let mut msg = vec![136, 0, 0, 0, flags, 0, 0, 0];
        msg.extend_from_slice(&target.parse::<Ipv6Addr>().unwrap().octets());
        msg.extend_from_slice(options);
        msg
    }

    #[test]
    fn neighbor_discovery_fields() {
        let mac = [2, 0, 0, 0, 0, 9];
        let target_ll = [&[2u8, 1][..], &mac].concat();
        let source_ll = [&[1u8, 1][..], &[2, 0, 0, 0, 0, 1]].concat();
        // The first link-layer address option, of either kind; one that holds no MAC is passed.
        let long_ll = [2u8, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
        let na = neighbor_advert(0xe5, "2001:db8::7", &[&long_ll[..], &target_ll, &source_ll].concat());
        let nd = neighbor_discovery(&na, na.len()).unwrap();
        assert_eq!((nd.target, nd.flags, nd.lladdr), (Some("2001:db8::7".parse().unwrap()), Some(0xe0), Some(mac)));
        // A router advertisement: flag byte, MTU and route information options of each size.
        let route = |len: u8, units: u8, prefix: &[u8]| [&[24, units, len, 0x08, 0, 0, 0, 9][..], prefix].concat();
        let options = [
            source_ll.clone(),
            vec![5, 1, 0, 0, 0, 0, 0x05, 0xdc],
            route(0, 1, &[]),
            route(48, 2, &[0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0]),
            route(64, 3, &"fd00:1:2:3::".parse::<Ipv6Addr>().unwrap().octets()),
        ]
        .concat();
        let mut ra = vec![134, 0, 0, 0, 64, 0xc8, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
        ra.extend_from_slice(&options);
        let nd = neighbor_discovery(&ra, ra.len()).unwrap();
        assert_eq!((nd.target, nd.flags, nd.lladdr, nd.mtu), (None, Some(0xc8), Some([2, 0, 0, 0, 0, 1]), Some(1500)));
        assert_eq!(nd.routes.iter().map(ToString::to_string).collect::<Vec<_>>(), ["::/0", "2001:db8:1::/48", "fd00:1:2:3::/64"]);
        assert_eq!(neighbor_discovery(&[128, 0, 0, 0, 0, 1, 0, 1], 8), None);
        // Ethernet padding after the declared length holds no option.
        let bare = neighbor_advert(0x40, "fe80::1", &[]);
        let padded = [bare.clone(), target_ll].concat();
        assert_eq!(neighbor_discovery(&padded, bare.len()).unwrap().lladdr, None);
    }

    #[test]
    fn neighbor_discovery_cut_at_every_byte_keeps_what_is_whole() {
        let options = [vec![2u8, 1, 2, 0, 0, 0, 0, 9], vec![0, 0, 0, 0, 0, 0, 0, 0], vec![2, 1, 9, 9, 9, 9, 9, 9]].concat();
        let msg = neighbor_advert(0x60, "2001:db8::7", &options);
        let whole = neighbor_discovery(&msg, msg.len()).unwrap();
        // A zero-length option ends the walk: the second MAC is never read.
        assert_eq!(whole.lladdr, Some([2, 0, 0, 0, 0, 9]));
        for cut in 0..msg.len() {
            // Cut by the snaplen (declared longer) and declared short alike.
            for declared in [msg.len(), cut] {
                let nd = neighbor_discovery(&msg[..cut], declared);
                if cut == 0 {
                    assert_eq!(nd, None);
                    continue;
                }
                let nd = nd.unwrap();
                assert_eq!(nd.target.is_some(), cut >= 24, "cut {cut}");
                assert_eq!(nd.flags, (cut > 4).then_some(0x60), "cut {cut}");
                assert_eq!(nd.lladdr.is_some(), cut >= 32, "cut {cut}");
            }
        }
        for kind in 133..=137u8 {
            let mut msg = vec![kind; 64];
            msg[1] = 0;
            for cut in 0..msg.len() {
                let _ = neighbor_discovery(&msg[..cut], 64);
                let _ = decode_v6(&msg[..cut], 64, &Ipv6Addr::LOCALHOST, &Ipv6Addr::LOCALHOST);
            }
        }
    }

    #[test]
    fn quoted_length_and_ttl() {
        let ip = [0x45, 0, 0, 60, 0, 0, 0x40, 0, 3, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0x30, 0x39, 0, 53, 0, 8, 0, 0];
        let mut msg = vec![11, 0, 0, 0, 0, 0, 0, 0];
        msg.extend_from_slice(&ip);
        let q = |msg: &[u8], declared: usize| quote(4, msg, declared);
        assert_eq!(q(&msg, msg.len()), Some(Quote { ttl: Some(3), len: 28 }));
        // Declared longer than captured: the quote as carried.
        assert_eq!(q(&msg, msg.len() + 100).unwrap().len, 128);
        // An RFC 4884 length (7 words) in front of an extension structure, the quoted datagram
        // claiming 60 bytes: 28 quoted; claiming no more than 28, the length field is not believed.
        msg[5] = 7;
        msg.extend_from_slice(&[0; 20]);
        assert_eq!(q(&msg, msg.len()).unwrap().len, 28);
        msg[8 + 3] = 28;
        assert_eq!(q(&msg, msg.len()).unwrap().len, 48);
        // Compatibility mode: length 0, more than 128 bytes, a datagram that claims 60: a
        // 128-byte quote and an extension structure.
        let mut compat = vec![11, 0, 0, 0, 0, 0, 0, 0];
        compat.extend_from_slice(&ip);
        compat.resize(8 + 128, 0);
        compat.extend_from_slice(&[0x20, 0, 0, 0, 0, 8, 1, 1, 0, 1, 0x61, 1]);
        assert_eq!(q(&compat, compat.len()).unwrap().len, 128);
        // A datagram claiming more than 128: all of it quoted (Linux quotes up to 576 bytes).
        compat[8 + 2] = 1;
        assert_eq!(q(&compat, compat.len()).unwrap().len, 140);
        // No quote past the header: nothing quoted, still an error.
        assert_eq!(q(&msg[..8], 8), Some(Quote { ttl: None, len: 0 }));
        assert_eq!(q(&[8, 0, 0, 0, 0, 1, 0, 1], 8), None);
        // Not an error in ICMPv6 (type 3 is time exceeded there, 4 parameter problem; 137 redirect).
        assert_eq!(quote(6, &[5, 0, 0, 0, 0, 0, 0, 0], 8), None);
        for cut in 0..msg.len() {
            let _ = (q(&msg[..cut], msg.len()), quote(6, &msg[..cut], msg.len()));
        }
    }

    #[test]
    fn unreachable_quotes_udp_ports() {
        let mut msg = vec![3, 3, 0, 0, 0, 0, 0, 0];
        let mut ip = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        ip.extend_from_slice(&[0x30, 0x39, 0, 53, 0, 8, 0, 0]);
        msg.extend_from_slice(&ip);
        let m = decode_v4(&msg, msg.len()).unwrap();
        let q = m.inner.unwrap();
        assert_eq!(q.dst, Some("10.0.0.2".parse().unwrap()));
        assert_eq!((q.proto, q.sport, q.dport), (Some(17), Some(12345), Some(53)));
    }
}
