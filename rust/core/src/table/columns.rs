//! Column helpers shared by the table builders: interned (dictionary-encoded) text columns and
//! UTC nanosecond timestamps.
use std::fmt::Display;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use arrow_array::builder::{ArrayBuilder, BooleanBufferBuilder, StringBuilder, UInt32Builder};
use arrow_array::types::UInt32Type;
use arrow_array::{ArrayRef, ArrowPrimitiveType, DictionaryArray, ListArray, PrimitiveArray, StringArray};
use arrow_buffer::{ArrowNativeType, BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, FieldRef, TimeUnit};
// FxHash: addresses are short keys from one capture; SipHash's DoS resistance costs ~10% of a
// read here and buys nothing (a hostile capture can only slow its own file).
use rustc_hash::FxHashMap;

/// A value interned through an integer image: a `u32` for IPv4 hashes and compares faster than
/// an `IpAddr`, and its map is a third the size (cache-resident for the 80k addresses of the
/// mixed benchmark capture, where the `IpAddr` map's misses were 13% of a read).
pub trait Internable: Copy + Eq + Display {
    type Index: Default;
    fn find(index: &Self::Index, value: Self) -> Option<u32>;
    fn insert(index: &mut Self::Index, value: Self, key: u32);
    fn clear(index: &mut Self::Index);
    /// Appends the value's text to `out` (its `Display` unless a faster way is known).
    fn write_text(self, out: &mut String) {
        write_display(self, out);
    }
}

fn write_display(value: impl Display, out: &mut String) {
    use std::fmt::Write;
    let _ = write!(out, "{value}");
}

/// `n` in decimal, as `Display` writes it, without the formatting machinery.
fn push_decimal(out: &mut String, n: u8) {
    if n >= 100 {
        out.push(char::from(b'0' + n / 100));
    }
    if n >= 10 {
        out.push(char::from(b'0' + n / 10 % 10));
    }
    out.push(char::from(b'0' + n % 10));
}

#[derive(Default)]
pub struct AddrIndex {
    v4: FxHashMap<u32, u32>,
    v6: FxHashMap<u128, u32>,
}

impl Internable for IpAddr {
    type Index = AddrIndex;
    #[inline]
    fn find(index: &AddrIndex, value: Self) -> Option<u32> {
        match value {
            IpAddr::V4(a) => index.v4.get(&a.to_bits()).copied(),
            IpAddr::V6(a) => index.v6.get(&a.to_bits()).copied(),
        }
    }
    fn insert(index: &mut AddrIndex, value: Self, key: u32) {
        match value {
            IpAddr::V4(a) => index.v4.insert(a.to_bits(), key),
            IpAddr::V6(a) => index.v6.insert(a.to_bits(), key),
        };
    }
    fn clear(index: &mut AddrIndex) {
        index.v4.clear();
        index.v6.clear();
    }
    // By hand: `Display` through `fmt::write` was 3 % of reading the mixed benchmark capture
    // (dotted quads), and again 3 % once those were done (its IPv6 addresses); each distinct
    // address gets its text once per batch.
    fn write_text(self, out: &mut String) {
        match self {
            IpAddr::V4(a) => write_ipv4(a, out),
            IpAddr::V6(a) => write_ipv6(a, out),
        }
    }
}

fn write_ipv4(a: Ipv4Addr, out: &mut String) {
    for (i, octet) in a.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        push_decimal(out, octet);
    }
}

/// RFC 5952 text, as `Ipv6Addr`'s `Display` writes it: lowercase hex without leading zeros, the
/// first longest run of two or more zero groups as `::`, IPv4-mapped addresses as `::ffff:a.b.c.d`.
fn write_ipv6(a: Ipv6Addr, out: &mut String) {
    if let Some(v4) = a.to_ipv4_mapped() {
        out.push_str("::ffff:");
        return write_ipv4(v4, out);
    }
    let groups = a.segments();
    let (mut run, mut longest) = ((0, 0), (0, 0));
    for (i, &g) in groups.iter().enumerate() {
        run = if g == 0 { (if run.1 == 0 { i } else { run.0 }, run.1 + 1) } else { (0, 0) };
        if run.1 > longest.1 {
            longest = run;
        }
    }
    let push_groups = |out: &mut String, groups: &[u16]| {
        for (i, &g) in groups.iter().enumerate() {
            if i > 0 {
                out.push(':');
            }
            push_hex(out, g);
        }
    };
    if longest.1 > 1 {
        push_groups(out, &groups[..longest.0]);
        out.push_str("::");
        push_groups(out, &groups[longest.0 + longest.1..]);
    } else {
        push_groups(out, &groups);
    }
}

/// `n` in lowercase hex without leading zeros, as `{:x}` writes it.
fn push_hex(out: &mut String, n: u16) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digits = (16 - n.leading_zeros()).div_ceil(4).max(1);
    for shift in (0..digits).rev() {
        out.push(char::from(DIGITS[usize::from(n >> (4 * shift) & 0xf)]));
    }
}

/// Text made once per distinct value: captures have few distinct addresses and many rows.
/// Every column interned here shares one dictionary.
pub struct Interner<K: Internable> {
    index: K::Index,
    values: StringBuilder,
    scratch: String,
}

impl<K: Internable> Default for Interner<K> {
    fn default() -> Self {
        Interner { index: K::Index::default(), values: StringBuilder::new(), scratch: String::new() }
    }
}

impl<K: Internable> Interner<K> {
    #[inline]
    pub fn key(&mut self, value: K) -> u32 {
        match K::find(&self.index, value) {
            Some(k) => k,
            None => self.insert(value),
        }
    }

    /// A value seen for the first time: its text is made here, once. Out of line, so that the
    /// lookup above inlines into the row builders (the call cost 18 instructions a lookup).
    #[cold]
    #[inline(never)]
    fn insert(&mut self, value: K) -> u32 {
        self.scratch.clear();
        value.write_text(&mut self.scratch);
        let k = self.values.len() as u32;
        self.values.append_value(&self.scratch);
        K::insert(&mut self.index, value, k);
        k
    }

    /// `value`'s key, through a column's cache of its last value (consecutive rows mostly repeat it).
    /// Always inlined: called out of line, with the address passed through the stack, reading
    /// echo-only records was 10 % slower (paired runs).
    #[inline(always)]
    pub fn key_after(&mut self, last: &mut Option<(K, u32)>, value: K) -> u32 {
        match *last {
            Some((seen, key)) if seen == value => key,
            _ => {
                let key = self.key(value);
                *last = Some((value, key));
                key
            }
        }
    }

    /// The dictionary of the batch being finished; the next batch starts a new one, so a
    /// streamed batch carries only its own values, never everything seen before.
    pub fn take_values(&mut self) -> Arc<StringArray> {
        K::clear(&mut self.index);
        Arc::new(self.values.finish())
    }
}

/// Keys of one interned column, remembering the last value: consecutive rows mostly repeat it.
pub struct KeyColumn<K> {
    keys: UInt32Builder,
    last: Option<(K, u32)>,
}

impl<K> Default for KeyColumn<K> {
    fn default() -> Self {
        KeyColumn::with_capacity(0)
    }
}

impl<K> KeyColumn<K> {
    pub fn with_capacity(rows: usize) -> Self {
        KeyColumn { keys: UInt32Builder::with_capacity(rows), last: None }
    }
}

impl<K: Internable> KeyColumn<K> {
    pub fn push(&mut self, dict: &mut Interner<K>, value: Option<K>) {
        let key = self.key(dict, value);
        self.keys.append_option(key);
    }

    /// `value`'s key, interned now (the dictionary stays in order of first appearance) and
    /// appended later through [`KeyColumn::keys`].
    #[inline]
    pub fn key(&mut self, dict: &mut Interner<K>, value: Option<K>) -> Option<u32> {
        value.map(|v| self.key_of(dict, v))
    }

    #[inline]
    pub fn key_of(&mut self, dict: &mut Interner<K>, value: K) -> u32 {
        dict.key_after(&mut self.last, value)
    }

    pub fn keys(&mut self) -> &mut UInt32Builder {
        &mut self.keys
    }

    /// Ends the batch; keys of the next one refer to the interner's next dictionary.
    pub fn finish(&mut self, values: &Arc<StringArray>) -> ArrayRef {
        self.last = None;
        let keys = self.keys.finish();
        let values: ArrayRef = values.clone();
        // Keys come from the interner, so they are always in range.
        Arc::new(DictionaryArray::<UInt32Type>::try_new(keys, values).expect("interned keys in range"))
    }
}

pub fn dict_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::UInt32), Box::new(DataType::Utf8))
}

/// Lists of text (polars `List[String]`).
pub fn text_list_type() -> DataType {
    DataType::List(text_item())
}

fn text_item() -> FieldRef {
    Arc::new(Field::new_list_field(DataType::Utf8, false))
}

pub fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

pub fn field(name: &str, data_type: DataType, nullable: bool) -> Field {
    Field::new(name, data_type, nullable)
}

/// Zero bytes for the columns of one batch that no row fills, allocated once, when the first
/// such column is finished, and shared: each is a slice of it (values and validity alike).
/// Zeroed memory of their own for each would cost up to 8 bytes a row apiece, which glibc clears
/// by hand when it comes from the heap (callgrind, min 200k: `memset` 3 %).
pub struct Zeros {
    rows: usize,
    bytes: std::cell::OnceCell<Buffer>,
}

impl Zeros {
    pub fn new(rows: usize) -> Zeros {
        Zeros { rows, bytes: std::cell::OnceCell::new() }
    }

    fn bytes(&self) -> Buffer {
        // 8-byte elements, one more than the rows: enough for the widest value these columns have
        // (u64) and for list offsets, and aligned for every narrower type.
        self.bytes.get_or_init(|| Buffer::from_vec(vec![0u64; self.rows + 1])).clone()
    }

    /// `len` (at most one more than the rows) zero values of a column type of up to 8 bytes.
    pub fn values<T: ArrowNativeType>(&self, len: usize) -> ScalarBuffer<T> {
        ScalarBuffer::new(self.bytes(), 0, len)
    }

    /// A validity bitmap with every row null.
    pub fn nulls(&self) -> NullBuffer {
        NullBuffer::new(BooleanBuffer::new(self.bytes(), 0, self.rows))
    }
}

/// A column most rows leave null (fields only some ICMP types have): a null costs nothing per
/// row; the validity bitmap is made once, when the column is finished.
pub struct SparseColumn<T: ArrowPrimitiveType> {
    rows: Vec<u32>,
    values: Vec<T::Native>,
}

impl<T: ArrowPrimitiveType> Default for SparseColumn<T> {
    fn default() -> Self {
        SparseColumn { rows: Vec::new(), values: Vec::new() }
    }
}

impl<T: ArrowPrimitiveType> SparseColumn<T> {
    /// Sets row `row` (rows are pushed in increasing order).
    pub fn push(&mut self, row: usize, value: Option<T::Native>) {
        if let Some(v) = value {
            self.rows.push(row as u32);
            self.values.push(v);
        }
    }

    pub fn finish(&mut self, zeros: &Zeros) -> PrimitiveArray<T> {
        let rows = std::mem::take(&mut self.rows);
        let values = std::mem::take(&mut self.values);
        let len = zeros.rows;
        if rows.len() == len {
            return PrimitiveArray::new(values.into(), None);
        }
        if rows.is_empty() {
            return PrimitiveArray::new(zeros.values(len), Some(zeros.nulls()));
        }
        let mut dense = vec![T::Native::default(); len];
        let mut valid = BooleanBufferBuilder::new(len);
        valid.append_n(len, false);
        for (&row, value) in rows.iter().zip(values) {
            // Rows were numbered by the table that owns this column, below `len`.
            dense[row as usize] = value;
            valid.set_bit(row as usize, true);
        }
        PrimitiveArray::new(dense.into(), Some(NullBuffer::new(valid.finish())))
    }
}

/// An interned column most rows leave null (gateways, masks, quoted addresses).
pub struct SparseKeyColumn<K> {
    keys: SparseColumn<UInt32Type>,
    last: Option<(K, u32)>,
}

impl<K> Default for SparseKeyColumn<K> {
    fn default() -> Self {
        SparseKeyColumn { keys: SparseColumn::default(), last: None }
    }
}

impl<K: Internable> SparseKeyColumn<K> {
    /// Sets row `row` (rows are pushed in increasing order). Mostly `None` (a gateway, a mask):
    /// that test inline, the lookup out of line (a call per column and row was 2 % of reading
    /// echo-only records).
    #[inline]
    pub fn push(&mut self, row: usize, dict: &mut Interner<K>, value: Option<K>) {
        if let Some(v) = value {
            self.set(row, dict, v);
        }
    }

    #[inline(never)]
    fn set(&mut self, row: usize, dict: &mut Interner<K>, value: K) {
        let key = dict.key_after(&mut self.last, value);
        self.keys.push(row, Some(key));
    }

    pub fn finish(&mut self, zeros: &Zeros, values: &Arc<StringArray>) -> ArrayRef {
        self.last = None;
        let keys = self.keys.finish(zeros);
        let values: ArrayRef = values.clone();
        Arc::new(DictionaryArray::<UInt32Type>::try_new(keys, values).expect("interned keys in range"))
    }
}

/// A column of text lists most rows leave null (what router advertisements advertise): only the
/// rows that have a list are kept, as text, until the column is finished.
#[derive(Default)]
pub struct SparseTextList {
    rows: Vec<u32>,
    /// Where each kept row's items end in `items`.
    ends: Vec<i32>,
    items: StringBuilder,
    scratch: String,
}

impl SparseTextList {
    /// Sets row `row` (rows are pushed in increasing order) to `values` as text.
    pub fn push<T: Display>(&mut self, row: usize, values: &[T]) {
        use std::fmt::Write;
        for value in values {
            self.scratch.clear();
            let _ = write!(self.scratch, "{value}");
            self.items.append_value(&self.scratch);
        }
        self.rows.push(row as u32);
        // A batch holds far fewer than 2^31 items (a message of at most 64 KiB has at most 2048).
        self.ends.push(i32::try_from(self.items.len()).unwrap_or(i32::MAX));
    }

    pub fn finish(&mut self, zeros: &Zeros) -> ArrayRef {
        let rows = std::mem::take(&mut self.rows);
        let ends = std::mem::take(&mut self.ends);
        let items = Arc::new(self.items.finish());
        let len = zeros.rows;
        if rows.is_empty() {
            let offsets = OffsetBuffer::new(zeros.values(len + 1));
            return Arc::new(ListArray::new(text_item(), offsets, items, Some(zeros.nulls())));
        }
        let mut offsets = Vec::with_capacity(len + 1);
        offsets.push(0i32);
        let mut valid = BooleanBufferBuilder::new(len);
        valid.append_n(len, false);
        let mut end = 0;
        for (&row, &row_end) in rows.iter().zip(&ends) {
            // The rows before this one have no list: they end where the last list did.
            offsets.resize(row as usize + 1, end);
            offsets.push(row_end);
            valid.set_bit(row as usize, true);
            end = row_end;
        }
        offsets.resize(len + 1, end);
        let nulls = Some(NullBuffer::new(valid.finish()));
        // Offsets grow from 0 to the items' length, one per row.
        Arc::new(ListArray::try_new(text_item(), OffsetBuffer::new(offsets.into()), items, nulls).expect("offsets within the items"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, UInt16Array};

    #[test]
    fn addresses_written_as_display_writes_them() {
        for text in ["0.0.0.0", "9.10.99.100", "255.255.255.255", "10.0.0.1", "2001:db8::1", "::ffff:1.2.3.4"] {
            let addr: IpAddr = text.parse().unwrap();
            let mut out = String::new();
            addr.write_text(&mut out);
            assert_eq!(out, addr.to_string());
        }
        for octet in 0..=255u8 {
            let addr = IpAddr::from([octet, 7, octet, 0]);
            let mut out = String::new();
            addr.write_text(&mut out);
            assert_eq!(out, addr.to_string());
        }
        // Every pattern of zero and non-zero groups (runs to compress, ties, single zeros), with
        // groups of each hex width; IPv4-mapped and -compatible addresses.
        let widths: [u16; 9] = [0x1, 0xa, 0xab, 0xf0c, 0xabcd, 0x10, 0x100, 0x1000, 0xffff];
        let mut addrs: Vec<Ipv6Addr> = (0..=255u32)
            .flat_map(|zeros| widths.iter().map(move |&w| (zeros, w)))
            .map(|(zeros, w)| Ipv6Addr::from(std::array::from_fn::<u16, 8, _>(|i| if zeros >> i & 1 == 1 { 0 } else { w.wrapping_add(i as u16).max(1) })))
            .collect();
        addrs.extend(["::ffff:1.2.3.4", "::1.2.3.4", "::ffff:0:0", "::", "::1", "1::", "64:ff9b::1.2.3.4"].map(|t| t.parse::<Ipv6Addr>().unwrap()));
        for addr in addrs {
            let mut out = String::new();
            IpAddr::V6(addr).write_text(&mut out);
            assert_eq!(out, addr.to_string());
        }
    }

    #[test]
    fn sparse_column_fills_nulls() {
        let mut c = SparseColumn::<arrow_array::types::UInt16Type>::default();
        c.push(1, Some(7));
        c.push(3, Some(9));
        let a = c.finish(&Zeros::new(5));
        assert_eq!(a, UInt16Array::from(vec![None, Some(7), None, Some(9), None]));
        assert_eq!(c.finish(&Zeros::new(2)), UInt16Array::from(vec![None, None]));
        c.push(0, Some(1));
        assert_eq!(c.finish(&Zeros::new(1)), UInt16Array::from(vec![1]));
    }

    #[test]
    fn columns_no_row_fills_share_one_zeroed_buffer() {
        let zeros = Zeros::new(3);
        let narrow = SparseColumn::<arrow_array::types::UInt8Type>::default().finish(&zeros);
        let wide = SparseColumn::<arrow_array::types::UInt64Type>::default().finish(&zeros);
        let dict = Arc::new(StringArray::from(vec!["10.0.0.1"]));
        let keys = SparseKeyColumn::<IpAddr>::default().finish(&zeros, &dict);
        let list = SparseTextList::default().finish(&zeros);
        assert_eq!(narrow, arrow_array::UInt8Array::from(vec![None, None, None]));
        assert_eq!(wide, arrow_array::UInt64Array::from(vec![None, None, None]));
        for column in [&keys, &list] {
            assert_eq!((column.len(), column.null_count()), (3, 3));
        }
        assert_eq!(list.as_any().downcast_ref::<ListArray>().unwrap().value_offsets(), [0; 4]);
        // One allocation: the values of every column start where the first one's do.
        assert_eq!(narrow.values().inner().as_ptr(), wide.values().inner().as_ptr());
    }

    #[test]
    fn sparse_text_list_fills_nulls() {
        let mut c = SparseTextList::default();
        c.push(1, &["a", "b"]);
        c.push(2, &[] as &[&str]);
        c.push(4, &[7]);
        let a = c.finish(&Zeros::new(5));
        let list = a.as_any().downcast_ref::<ListArray>().unwrap();
        let text = |i: usize| {
            let items = list.value(i);
            let items = items.as_any().downcast_ref::<StringArray>().unwrap();
            items.iter().map(|s| s.unwrap().to_string()).collect::<Vec<_>>()
        };
        assert_eq!((0..5).map(|i| list.is_valid(i)).collect::<Vec<_>>(), [false, true, true, false, true]);
        assert_eq!((text(1), text(2), text(4)), (vec!["a".to_string(), "b".into()], vec![], vec!["7".into()]));
        assert_eq!(c.finish(&Zeros::new(3)).null_count(), 3);
    }
}
