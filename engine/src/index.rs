//! Primary-key index of a snapshot: key → row id in O(1).
//!
//! The table stores only `u32` row ids (about 5 bytes a row with control bytes); hashing and
//! equality read the key straight from the snapshot's own key columns, so the index never
//! copies a key.

use std::hash::{BuildHasher, Hasher};

use arrow::array::{
    Array, ArrayRef, AsArray, LargeStringArray, PrimitiveArray, StringArray, StringViewArray,
};
use arrow::datatypes::{DataType, Int64Type};
use hashbrown::{DefaultHashBuilder, HashTable};

use crate::error::{Error, Result};
use crate::snapshot::{CHUNK_SHIFT, row_id, split_row_id};

/// One part of a primary-key value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyValue {
    /// A string key part.
    Str(String),
    /// An integer key part (all integer key types are compared as `i64`).
    Int(i64),
}

impl std::fmt::Display for KeyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyValue::Str(s) => f.write_str(s),
            KeyValue::Int(i) => write!(f, "{i}"),
        }
    }
}

/// A primary-key value: one part per key column.
pub type Key = Vec<KeyValue>;

/// The key column of every chunk, in a form that hashing and equality can read directly.
#[derive(Debug)]
enum KeyColumn {
    Utf8(Vec<StringArray>),
    LargeUtf8(Vec<LargeStringArray>),
    Utf8View(Vec<StringViewArray>),
    Int(Vec<PrimitiveArray<Int64Type>>),
}

impl KeyColumn {
    fn new(chunks: &[ArrayRef]) -> Result<Self> {
        let t = chunks
            .first()
            .map(|c| c.data_type().clone())
            .unwrap_or(DataType::Utf8);
        Ok(match t {
            DataType::Utf8 => KeyColumn::Utf8(
                chunks
                    .iter()
                    .map(|c| c.as_string::<i32>().clone())
                    .collect(),
            ),
            DataType::LargeUtf8 => KeyColumn::LargeUtf8(
                chunks
                    .iter()
                    .map(|c| c.as_string::<i64>().clone())
                    .collect(),
            ),
            DataType::Utf8View => {
                KeyColumn::Utf8View(chunks.iter().map(|c| c.as_string_view().clone()).collect())
            }
            t if t.is_integer() => KeyColumn::Int(
                chunks
                    .iter()
                    .map(|c| {
                        arrow::compute::cast_with_options(
                            c,
                            &DataType::Int64,
                            &arrow::compute::CastOptions {
                                safe: false,
                                ..Default::default()
                            },
                        )
                        .map(|a| a.as_primitive::<Int64Type>().clone())
                    })
                    .collect::<std::result::Result<_, _>>()?,
            ),
            other => return Err(Error::Internal(format!("unsupported key type {other}"))),
        })
    }

    #[inline]
    fn str_at(&self, chunk: usize, offset: usize) -> Option<&str> {
        match self {
            KeyColumn::Utf8(c) => Some(c[chunk].value(offset)),
            KeyColumn::LargeUtf8(c) => Some(c[chunk].value(offset)),
            KeyColumn::Utf8View(c) => Some(c[chunk].value(offset)),
            KeyColumn::Int(_) => None,
        }
    }

    #[inline]
    fn hash_into(&self, chunk: usize, offset: usize, h: &mut impl Hasher) {
        match self {
            KeyColumn::Int(c) => h.write_i64(c[chunk].value(offset)),
            _ => h.write(self.str_at(chunk, offset).expect("string key").as_bytes()),
        }
    }

    #[inline]
    fn eq(&self, chunk: usize, offset: usize, v: &KeyValue) -> bool {
        match (self, v) {
            (KeyColumn::Int(c), KeyValue::Int(i)) => c[chunk].value(offset) == *i,
            (KeyColumn::Int(_), KeyValue::Str(_)) => false,
            (_, KeyValue::Str(s)) => self.str_at(chunk, offset) == Some(s.as_str()),
            (_, KeyValue::Int(_)) => false,
        }
    }

    /// Whether two stored rows hold the same key part.
    #[inline]
    fn same(&self, c1: usize, o1: usize, c2: usize, o2: usize) -> bool {
        match self {
            KeyColumn::Int(c) => c[c1].value(o1) == c[c2].value(o2),
            _ => self.str_at(c1, o1) == self.str_at(c2, o2),
        }
    }

    /// Whether row (`c1`, `o1`) of this column and row (`c2`, `o2`) of `other` (a key column
    /// of another index) hold the same key part.
    #[inline]
    fn same_as(&self, c1: usize, o1: usize, other: &KeyColumn, c2: usize, o2: usize) -> bool {
        match (self, other) {
            (KeyColumn::Int(a), KeyColumn::Int(b)) => a[c1].value(o1) == b[c2].value(o2),
            (KeyColumn::Int(_), _) | (_, KeyColumn::Int(_)) => false,
            _ => self.str_at(c1, o1) == other.str_at(c2, o2),
        }
    }

    fn is_int(&self) -> bool {
        matches!(self, KeyColumn::Int(_))
    }

    fn value(&self, chunk: usize, offset: usize) -> KeyValue {
        match self {
            KeyColumn::Int(c) => KeyValue::Int(c[chunk].value(offset)),
            _ => KeyValue::Str(self.str_at(chunk, offset).expect("string key").to_owned()),
        }
    }
}

#[inline]
fn hash_probe(state: &DefaultHashBuilder, key: &[KeyValue]) -> u64 {
    let mut h = state.build_hasher();
    for part in key {
        match part {
            KeyValue::Int(i) => h.write_i64(*i),
            KeyValue::Str(s) => h.write(s.as_bytes()),
        }
    }
    h.finish()
}

/// Duplicate keys found while building an index.
#[derive(Debug, Default)]
pub(crate) struct Duplicates {
    /// How many rows repeat a key seen earlier.
    pub(crate) count: usize,
    /// The first few repeated keys.
    pub(crate) examples: Vec<Key>,
    /// The (1-based) row numbers of those repeats, in the same order.
    pub(crate) rows: Vec<usize>,
}

impl Duplicates {
    /// The examples for a message. When a key column is personal data (a personal code),
    /// only the row numbers are named: refusal reasons are kept in the load history and
    /// shown to admins, who must not learn personal codes from them. Otherwise each key's
    /// parts joined by `,`, the keys (at most [`MAX_EXAMPLES`]) by `; `.
    pub(crate) fn examples_text(&self, definition: &crate::DatasetDefinition) -> String {
        let personal = definition
            .primary_key
            .iter()
            .any(|k| definition.attribute(k).is_some_and(|a| a.personal));
        if personal {
            let rows: Vec<String> = self
                .rows
                .iter()
                .take(MAX_EXAMPLES)
                .map(ToString::to_string)
                .collect();
            return format!(
                "rows {} (values withheld: the key is personal data)",
                rows.join(", ")
            );
        }
        self.examples
            .iter()
            .take(MAX_EXAMPLES)
            .map(|k| {
                k.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// How many offending keys an error message lists.
pub(crate) const MAX_EXAMPLES: usize = 5;

/// The primary-key index of one snapshot.
#[derive(Debug)]
pub struct PrimaryKeyIndex {
    table: HashTable<u32>,
    state: DefaultHashBuilder,
    columns: Vec<KeyColumn>,
}

impl PrimaryKeyIndex {
    /// Build the index over `key_chunks[k][chunk]` (key column `k` of each chunk).
    ///
    /// Chunks must hold `1 << CHUNK_SHIFT` rows each except the last, and the key columns
    /// must have no nulls (checked by the caller). Duplicate keys are collected, not indexed.
    pub(crate) fn build(key_chunks: &[Vec<ArrayRef>], rows: usize) -> Result<(Self, Duplicates)> {
        let columns = key_chunks
            .iter()
            .map(|c| KeyColumn::new(c))
            .collect::<Result<Vec<_>>>()?;
        let mut index = PrimaryKeyIndex {
            table: HashTable::with_capacity(rows),
            state: DefaultHashBuilder::default(),
            columns,
        };
        let mut dups = Duplicates::default();
        let first_column = key_chunks.first().map_or(&[][..], Vec::as_slice);
        for (chunk, array) in first_column.iter().enumerate() {
            let len = array.len();
            for offset in 0..len {
                let hash = index.hash_row(chunk, offset);
                let found = index
                    .table
                    .find(hash, |&r| index.rows_equal(r, chunk, offset))
                    .is_some();
                if found {
                    dups.count += 1;
                    if dups.examples.len() < MAX_EXAMPLES {
                        dups.examples.push(index.key_at(chunk, offset));
                        dups.rows.push((chunk << CHUNK_SHIFT) + offset + 1);
                    }
                    continue;
                }
                let id = row_id(chunk, offset);
                let Self {
                    table,
                    columns,
                    state,
                } = &mut index;
                table.insert_unique(hash, id, |&r| {
                    let (c, o) = split_row_id(r);
                    let mut h = state.build_hasher();
                    for col in columns.iter() {
                        col.hash_into(c, o, &mut h);
                    }
                    h.finish()
                });
            }
        }
        Ok((index, dups))
    }

    #[inline]
    fn hash_row(&self, chunk: usize, offset: usize) -> u64 {
        let mut h = self.state.build_hasher();
        for c in &self.columns {
            c.hash_into(chunk, offset, &mut h);
        }
        h.finish()
    }

    #[inline]
    fn rows_equal(&self, row: u32, chunk: usize, offset: usize) -> bool {
        let (c, o) = split_row_id(row);
        self.columns.iter().all(|col| col.same(c, o, chunk, offset))
    }

    fn key_at(&self, chunk: usize, offset: usize) -> Key {
        self.columns
            .iter()
            .map(|c| c.value(chunk, offset))
            .collect()
    }

    /// The key stored at a row id.
    pub fn key_of(&self, row: u32) -> Key {
        let (c, o) = split_row_id(row);
        self.key_at(c, o)
    }

    /// Number of key columns.
    pub fn arity(&self) -> usize {
        self.columns.len()
    }

    /// Whether key part `k` is an integer.
    pub fn part_is_int(&self, k: usize) -> bool {
        self.columns[k].is_int()
    }

    /// Row id of a key, if present. A key of the wrong arity or part types is never found.
    #[inline]
    pub fn get(&self, key: &[KeyValue]) -> Option<u32> {
        if key.len() != self.columns.len() {
            return None;
        }
        let hash = hash_probe(&self.state, key);
        self.table
            .find(hash, |&r| {
                let (c, o) = split_row_id(r);
                self.columns.iter().zip(key).all(|(col, v)| col.eq(c, o, v))
            })
            .copied()
    }

    /// Row id in this index of the key stored at `row` of `other` (another snapshot's index
    /// of the same key columns), if present: matches records across versions without
    /// copying a key. Keys whose parts differ in kind (integer or string) never match.
    #[inline]
    pub fn get_from(&self, other: &PrimaryKeyIndex, row: u32) -> Option<u32> {
        if other.columns.len() != self.columns.len() {
            return None;
        }
        let (oc, oo) = split_row_id(row);
        // The same bytes as `hash_row` hashes for an equal key, under this index's state.
        let mut h = self.state.build_hasher();
        for col in &other.columns {
            col.hash_into(oc, oo, &mut h);
        }
        self.table
            .find(h.finish(), |&r| {
                let (c, o) = split_row_id(r);
                self.columns
                    .iter()
                    .zip(&other.columns)
                    .all(|(mine, theirs)| mine.same_as(c, o, theirs, oc, oo))
            })
            .copied()
    }

    /// Row ids of a batch of keys, in the order given; absent keys are skipped.
    pub fn get_many<'a>(&self, keys: impl IntoIterator<Item = &'a [KeyValue]>) -> Vec<u32> {
        keys.into_iter().filter_map(|k| self.get(k)).collect()
    }

    /// Approximate heap bytes held by the index (not counting the key columns it borrows).
    pub fn memory_size(&self) -> usize {
        // hashbrown: one u32 bucket and one control byte per bucket.
        self.table.capacity() * (std::mem::size_of::<u32>() + 1)
    }
}

const _: () = assert!(CHUNK_SHIFT <= 31);
