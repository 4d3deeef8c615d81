//! Column helpers shared by the table builders: interned (dictionary-encoded) text columns and
//! UTC nanosecond timestamps.
use std::fmt::Display;
use std::hash::Hash;
use std::sync::Arc;

use arrow_array::builder::{StringBuilder, UInt32Builder};
use arrow_array::types::UInt32Type;
use arrow_array::{ArrayRef, DictionaryArray, StringArray};
use arrow_schema::{DataType, Field, TimeUnit};
// FxHash: addresses are short keys from one capture; SipHash's DoS resistance costs ~10% of a
// read here and buys nothing (a hostile capture can only slow its own file).
use rustc_hash::FxHashMap;

/// Text made once per distinct value: captures have few distinct addresses and many rows.
/// Every column interned here shares one dictionary.
pub struct Interner<K> {
    index: FxHashMap<K, u32>,
    values: StringBuilder,
    scratch: String,
}

impl<K: Hash + Eq + Copy + Display> Default for Interner<K> {
    fn default() -> Self {
        Interner { index: FxHashMap::default(), values: StringBuilder::new(), scratch: String::new() }
    }
}

impl<K: Hash + Eq + Copy + Display> Interner<K> {
    pub fn key(&mut self, value: K) -> u32 {
        if let Some(&k) = self.index.get(&value) {
            return k;
        }
        use std::fmt::Write;
        self.scratch.clear();
        let _ = write!(self.scratch, "{value}");
        let k = self.index.len() as u32;
        self.values.append_value(&self.scratch);
        self.index.insert(value, k);
        k
    }

    pub fn values(&self) -> Arc<StringArray> {
        Arc::new(self.values.finish_cloned())
    }
}

/// Keys of one interned column, remembering the last value: consecutive rows mostly repeat it.
pub struct KeyColumn<K> {
    keys: UInt32Builder,
    last: Option<(K, u32)>,
}

impl<K> Default for KeyColumn<K> {
    fn default() -> Self {
        KeyColumn { keys: UInt32Builder::new(), last: None }
    }
}

impl<K: Hash + Eq + Copy + Display> KeyColumn<K> {
    pub fn push(&mut self, dict: &mut Interner<K>, value: Option<K>) {
        let Some(v) = value else {
            self.keys.append_null();
            return;
        };
        let key = match self.last {
            Some((last, key)) if last == v => key,
            _ => {
                let key = dict.key(v);
                self.last = Some((v, key));
                key
            }
        };
        self.keys.append_value(key);
    }

    pub fn finish(&mut self, values: &Arc<StringArray>) -> ArrayRef {
        let keys = self.keys.finish();
        let values: ArrayRef = values.clone();
        // Keys come from the interner, so they are always in range.
        Arc::new(DictionaryArray::<UInt32Type>::try_new(keys, values).expect("interned keys in range"))
    }
}

pub fn dict_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::UInt32), Box::new(DataType::Utf8))
}

pub fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

pub fn field(name: &str, data_type: DataType, nullable: bool) -> Field {
    Field::new(name, data_type, nullable)
}
