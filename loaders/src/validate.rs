//! The checks a load must pass, run on the client before anything is sent: the same the
//! engine runs (`Snapshot::build`), reported with the source and row of the offending value.
//!
//! A [`Validator`] sees every [`SourceBatch`] of a load in turn and refuses
//! - a null in a primary-key column, and in another required (non-nullable) column — in a
//!   change set only on upsert rows, since a delete needs nothing but its key;
//! - a [`CHANGE_COLUMN`] value other than [`UPSERT`] or [`DELETE`];
//! - a key seen before, in any source: `key `X` appears twice: a.csv row 3 and b.csv row 7`;
//! - an integer key beyond the engine's signed 64-bit key index, and more rows than a
//!   snapshot (or a change set) may hold.
//!
//! What it cannot see batch by batch is left to the caller: the engine also refuses a
//! change set without rows ([`Summary::rows`] is 0).
//!
//! Keys are remembered exactly, compactly: their bytes (length-prefixed) in one arena and,
//! per key, a 16-byte slot in a hash table — about 20–35 bytes a key plus its length (1 M
//! integer keys take some 45 MB).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, LargeStringArray, RecordBatch, StringArray,
    StringViewArray,
};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use hashbrown::{DefaultHashBuilder, HashTable};

use crate::error::{LoadError, Location, Result};
use crate::source::{CHANGE_COLUMN, DELETE, SourceBatch, Target, UPSERT};

/// Most rows a snapshot may hold (the engine's limit).
const MAX_ROWS: u64 = dagr_engine::snapshot::MAX_ROWS as u64;

/// What a validated load holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Rows checked.
    pub rows: u64,
    /// Rows that put their key's values: every row of a whole dataset, the `upsert` rows
    /// of a change set.
    pub upserts: u64,
    /// Rows of a change set that delete their key.
    pub deletes: u64,
    /// Sources that delivered at least one row.
    pub sources: usize,
}

/// The message for a null where none may be.
pub(crate) fn null_message(column: &str, is_key: bool, is_change: bool, upsert: bool) -> String {
    if is_change {
        format!("`{CHANGE_COLUMN}` is null; it must be `{UPSERT}` or `{DELETE}`")
    } else if is_key {
        format!("primary key column `{column}` is null")
    } else if upsert {
        format!("required column `{column}` is null in an upsert row")
    } else {
        format!("required column `{column}` is null")
    }
}

/// The message for a [`CHANGE_COLUMN`] value that is neither upsert nor delete.
pub(crate) fn change_value_message(value: &str) -> String {
    format!("`{CHANGE_COLUMN}` is `{value}`; it must be `{UPSERT}` or `{DELETE}`")
}

/// Checks the batches of one load (see the module docs).
#[derive(Debug)]
pub struct Validator {
    schema: SchemaRef,
    changes: bool,
    /// Ordinals of the key columns, in key order.
    keys: Vec<usize>,
    /// Ordinals of the non-key columns the definition says are never null.
    required: Vec<usize>,
    /// Ordinal of [`CHANGE_COLUMN`] in a change set.
    change: Option<usize>,
    seen: KeySet,
    sources: Vec<Arc<str>>,
    source_ids: HashMap<Arc<str>, u32>,
    rows: u64,
    upserts: u64,
    deletes: u64,
    buf: Vec<u8>,
}

impl Validator {
    /// A validator for loads into `target`.
    pub fn new(target: &Target) -> Self {
        let schema = target.schema();
        let def = &target.definition;
        let keys = def
            .primary_key
            .iter()
            .filter_map(|k| schema.index_of(k).ok())
            .collect::<Vec<_>>();
        let required = def
            .attributes
            .iter()
            .filter(|a| !a.nullable && !def.primary_key.contains(&a.name))
            .filter_map(|a| schema.index_of(&a.name).ok())
            .collect();
        Self {
            change: target.changes.then(|| schema.fields().len() - 1),
            schema,
            changes: target.changes,
            keys,
            required,
            seen: KeySet::default(),
            sources: Vec::new(),
            source_ids: HashMap::new(),
            rows: 0,
            upserts: 0,
            deletes: 0,
            buf: Vec::new(),
        }
    }

    fn at(batch: &SourceBatch, i: usize, column: Option<&str>) -> Location {
        Location {
            source: batch.source.to_string(),
            row: Some(batch.first_row + i as u64),
            line: None,
            column: column.map(str::to_owned),
        }
    }

    /// Check one batch (in [`Target::schema`]); the first problem is the error. After an
    /// error the load is refused: the validator is not meant to go on.
    pub fn check(&mut self, batch: &SourceBatch) -> Result<()> {
        let b = &batch.batch;
        if b.schema().fields() != self.schema.fields() {
            return Err(LoadError::Usage(format!(
                "{}: the batch does not have the dataset's schema",
                batch.source
            )));
        }
        let n = b.num_rows();
        if n == 0 {
            return Ok(());
        }
        // Which rows are deletes.
        let mut delete = vec![false; if self.change.is_some() { n } else { 0 }];
        if let Some(c) = self.change {
            let values = b.column(c).as_string::<i32>();
            for (i, is_delete) in delete.iter_mut().enumerate() {
                if values.is_null(i) {
                    return Err(LoadError::input(
                        Self::at(batch, i, Some(CHANGE_COLUMN)),
                        null_message(CHANGE_COLUMN, false, true, false),
                    ));
                }
                match values.value(i) {
                    UPSERT => {}
                    DELETE => *is_delete = true,
                    other => {
                        return Err(LoadError::input(
                            Self::at(batch, i, Some(CHANGE_COLUMN)),
                            change_value_message(other),
                        ));
                    }
                }
            }
        }
        for &k in &self.keys {
            let column = b.column(k);
            if column.null_count() > 0 {
                let i = (0..n).find(|&i| column.is_null(i)).unwrap_or(0);
                let name = self.schema.field(k).name();
                return Err(LoadError::input(
                    Self::at(batch, i, Some(name)),
                    null_message(name, true, false, false),
                ));
            }
        }
        for &r in &self.required {
            let column = b.column(r);
            if column.null_count() == 0 {
                continue;
            }
            let hit =
                (0..n).find(|&i| column.is_null(i) && !delete.get(i).copied().unwrap_or(false));
            if let Some(i) = hit {
                let name = self.schema.field(r).name();
                return Err(LoadError::input(
                    Self::at(batch, i, Some(name)),
                    null_message(name, false, false, self.changes),
                ));
            }
        }
        if self.rows + n as u64 > MAX_ROWS {
            return Err(LoadError::input(
                Self::at(batch, 0, None),
                format!("more than {MAX_ROWS} rows: a dataset holds at most {MAX_ROWS}"),
            ));
        }
        let source = self.source_id(&batch.source);
        let keys = KeyColumns::new(b, &self.keys).map_err(|(i, k, value)| {
            let name = self.schema.field(self.keys[k]).name();
            LoadError::input(
                Self::at(batch, i, Some(name)),
                format!(
                    "key `{value}` does not fit a signed 64-bit integer, which the engine's key index needs"
                ),
            )
        })?;
        for i in 0..n {
            self.buf.clear();
            keys.encode(i, &mut self.buf);
            let row = batch.first_row + i as u64;
            if let Some((first_source, first_row)) = self.seen.insert(&self.buf, source, row) {
                let key = keys.display(i);
                let column =
                    (self.keys.len() == 1).then(|| self.schema.field(self.keys[0]).name().as_str());
                return Err(LoadError::input(
                    Self::at(batch, i, column),
                    format!(
                        "key `{key}` appears twice: {} row {first_row} and {} row {row}",
                        self.sources[first_source as usize], batch.source
                    ),
                ));
            }
        }
        self.rows += n as u64;
        let deletes = delete.iter().filter(|d| **d).count() as u64;
        self.deletes += deletes;
        self.upserts += n as u64 - deletes;
        Ok(())
    }

    fn source_id(&mut self, source: &Arc<str>) -> u32 {
        if let Some(id) = self.source_ids.get(source) {
            return *id;
        }
        let id = u32::try_from(self.sources.len()).unwrap_or(u32::MAX);
        self.sources.push(Arc::clone(source));
        self.source_ids.insert(Arc::clone(source), id);
        id
    }

    /// What the checked batches hold.
    pub fn finish(self) -> Summary {
        Summary {
            rows: self.rows,
            upserts: self.upserts,
            deletes: self.deletes,
            sources: self.sources.len(),
        }
    }

    /// Bytes held for the keys seen (for tests of the memory bound).
    #[cfg(test)]
    fn key_memory(&self) -> usize {
        self.seen.memory_size()
    }
}

/// The key columns of a batch, ready to encode.
enum KeyColumn<'a> {
    Utf8(&'a StringArray),
    LargeUtf8(&'a LargeStringArray),
    Utf8View(&'a StringViewArray),
    Int(Int64Array),
}

impl KeyColumn<'_> {
    fn str_at(&self, i: usize) -> Option<&str> {
        match self {
            KeyColumn::Utf8(a) => Some(a.value(i)),
            KeyColumn::LargeUtf8(a) => Some(a.value(i)),
            KeyColumn::Utf8View(a) => Some(a.value(i)),
            KeyColumn::Int(_) => None,
        }
    }
}

struct KeyColumns<'a>(Vec<KeyColumn<'a>>);

impl<'a> KeyColumns<'a> {
    /// The key columns of `batch`; integers as `Int64` (an error names the row, the key
    /// part and the value that does not fit).
    fn new(
        batch: &'a RecordBatch,
        keys: &[usize],
    ) -> std::result::Result<Self, (usize, usize, String)> {
        let mut out = Vec::with_capacity(keys.len());
        for (k, &ordinal) in keys.iter().enumerate() {
            let column: &'a ArrayRef = batch.column(ordinal);
            out.push(match column.data_type() {
                DataType::Utf8 => KeyColumn::Utf8(column.as_string::<i32>()),
                DataType::LargeUtf8 => KeyColumn::LargeUtf8(column.as_string::<i64>()),
                DataType::Utf8View => KeyColumn::Utf8View(column.as_string_view()),
                _ => {
                    let options = CastOptions {
                        safe: true,
                        ..Default::default()
                    };
                    let ints = cast_with_options(column, &DataType::Int64, &options)
                        .map_err(|e| (0, k, e.to_string()))?;
                    if ints.null_count() != column.null_count() {
                        let i = (0..column.len())
                            .find(|&i| column.is_valid(i) && ints.is_null(i))
                            .unwrap_or(0);
                        let value = arrow::util::display::ArrayFormatter::try_new(
                            column.as_ref(),
                            &Default::default(),
                        )
                        .map(|f| f.value(i).to_string())
                        .unwrap_or_default();
                        return Err((i, k, value));
                    }
                    KeyColumn::Int(ints.as_primitive::<Int64Type>().clone())
                }
            });
        }
        Ok(Self(out))
    }

    /// Append the bytes of row `i`'s key: a single string key as is; otherwise each string
    /// part prefixed with its length, each integer as 8 bytes.
    fn encode(&self, i: usize, out: &mut Vec<u8>) {
        let single = self.0.len() == 1;
        for column in &self.0 {
            match column {
                KeyColumn::Int(a) => out.extend_from_slice(&a.value(i).to_le_bytes()),
                s => {
                    let text = s.str_at(i).unwrap_or_default();
                    if !single {
                        let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
                        out.extend_from_slice(&len.to_le_bytes());
                    }
                    out.extend_from_slice(text.as_bytes());
                }
            }
        }
    }

    /// Row `i`'s key as text, parts joined by `,` (as the engine writes keys).
    fn display(&self, i: usize) -> String {
        self.0
            .iter()
            .map(|c| match c {
                KeyColumn::Int(a) => a.value(i).to_string(),
                s => s.str_at(i).unwrap_or_default().to_owned(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Where a key was first seen: its bytes are in arena block `offset >> 32` at
/// `offset & 0xFFFF_FFFF`, after their length (LEB128). Rows fit 32 bits: a load holds at
/// most [`MAX_ROWS`] rows.
#[derive(Debug, Clone, Copy)]
struct Slot {
    offset: u64,
    source: u32,
    row: u32,
}

/// Bytes of one arena block (a longer key gets a block of its own).
const ARENA_BLOCK: usize = 1 << 20;

/// The keys seen, exactly: length-prefixed bytes in arena blocks (no copying as it grows),
/// 16-byte slots in a hash table.
#[derive(Default)]
struct KeySet {
    arena: Vec<Vec<u8>>,
    table: HashTable<Slot>,
    hasher: DefaultHashBuilder,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("keys", &self.table.len())
            .field("blocks", &self.arena.len())
            .finish()
    }
}

/// The key bytes stored at `offset`.
fn key_bytes(arena: &[Vec<u8>], offset: u64) -> &[u8] {
    let Some(block) = arena.get((offset >> 32) as usize) else {
        return &[];
    };
    let mut at = (offset & 0xFFFF_FFFF) as usize;
    let mut len = 0usize;
    let mut shift = 0;
    while let Some(&b) = block.get(at) {
        len |= usize::from(b & 0x7F) << shift;
        at += 1;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    block.get(at..at + len).unwrap_or_default()
}

impl KeySet {
    /// Remember `key` at (`source`, `row`); if it was seen before, where.
    fn insert(&mut self, key: &[u8], source: u32, row: u64) -> Option<(u32, u64)> {
        let KeySet {
            arena,
            table,
            hasher,
        } = self;
        let hash = hasher.hash_one(key);
        if let Some(slot) = table.find(hash, |s| key_bytes(arena, s.offset) == key) {
            return Some((slot.source, u64::from(slot.row)));
        }
        let need = key.len() + 10;
        if arena.last().is_none_or(|b| b.capacity() - b.len() < need) {
            arena.push(Vec::with_capacity(need.max(ARENA_BLOCK)));
        }
        let index = arena.len() - 1;
        let block = &mut arena[index];
        let slot = Slot {
            offset: ((index as u64) << 32) | block.len() as u64,
            source,
            row: u32::try_from(row).unwrap_or(u32::MAX),
        };
        let mut len = key.len();
        loop {
            let low = (len & 0x7F) as u8;
            len >>= 7;
            if len == 0 {
                block.push(low);
                break;
            }
            block.push(low | 0x80);
        }
        block.extend_from_slice(key);
        table.insert_unique(hash, slot, |s| hasher.hash_one(key_bytes(arena, s.offset)));
        None
    }

    #[cfg(test)]
    fn memory_size(&self) -> usize {
        self.arena.iter().map(Vec::capacity).sum::<usize>() + self.table.allocation_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use dagr_engine::{Attribute, DatasetDefinition};

    fn target(changes: bool) -> Target {
        let definition = DatasetDefinition {
            name: "things".into(),
            owner: "test".into(),
            description: String::new(),
            primary_key: vec!["id".into()],
            attributes: vec![
                Attribute::new("id", DataType::Int64, "id").required(),
                Attribute::new("name", DataType::Utf8, "name").required(),
                Attribute::new("note", DataType::Utf8, "note"),
            ],
        }
        .validated()
        .unwrap();
        Target::new(definition, changes)
    }

    fn batch(target: &Target, source: &str, first_row: u64, ids: Vec<i64>) -> SourceBatch {
        let n = ids.len();
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("n{i}")),
            )),
            Arc::new(StringArray::from(vec![None::<&str>; n])),
        ];
        if target.changes {
            columns.push(Arc::new(StringArray::from_iter_values(
                std::iter::repeat_n(UPSERT, n),
            )));
        }
        SourceBatch {
            batch: RecordBatch::try_new(target.schema(), columns).unwrap(),
            source: source.into(),
            first_row,
        }
    }

    #[test]
    fn a_million_keys_fit_in_little_memory() {
        let t = target(false);
        let mut v = Validator::new(&t);
        let per_batch = 65_536;
        let mut next = 0i64;
        while next < 1_000_000 {
            let ids: Vec<i64> = (next..(next + per_batch).min(1_000_000)).collect();
            let b = batch(&t, "big.csv", next as u64 + 1, ids);
            v.check(&b).unwrap();
            next += per_batch;
        }
        let memory = v.key_memory();
        // 2^21 buckets of 17 bytes (slot and control byte), 9 bytes of arena per key.
        assert!(memory < 46 << 20, "{memory} bytes for 1 M keys");
        let dup = batch(&t, "more.csv", 1, vec![5, 999_999]);
        let err = v.check(&dup).unwrap_err().to_string();
        assert_eq!(
            err,
            "more.csv, row 1, column `id`: key `5` appears twice: big.csv row 6 and more.csv row 1"
        );
        let s = v.finish();
        assert_eq!(s.rows, 1_000_000);
        assert_eq!(s.upserts, 1_000_000);
        assert_eq!(s.sources, 2, "the refused batch's source was seen too");
    }

    #[test]
    fn change_values_and_required_on_upserts_only() {
        let t = target(true);
        let mut v = Validator::new(&t);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![1, 2])),
            Arc::new(StringArray::from(vec![None, Some("b")])),
            Arc::new(StringArray::from(vec![None::<&str>, None])),
            Arc::new(StringArray::from(vec![DELETE, UPSERT])),
        ];
        let b = SourceBatch {
            batch: RecordBatch::try_new(t.schema(), columns).unwrap(),
            source: "c.csv".into(),
            first_row: 1,
        };
        v.check(&b).unwrap();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![3])),
            Arc::new(StringArray::from(vec![None::<&str>])),
            Arc::new(StringArray::from(vec![None::<&str>])),
            Arc::new(StringArray::from(vec![UPSERT])),
        ];
        let b = SourceBatch {
            batch: RecordBatch::try_new(t.schema(), columns).unwrap(),
            source: "c.csv".into(),
            first_row: 3,
        };
        assert_eq!(
            v.check(&b).unwrap_err().to_string(),
            "c.csv, row 3, column `name`: required column `name` is null in an upsert row"
        );
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![4])),
            Arc::new(StringArray::from(vec!["x"])),
            Arc::new(StringArray::from(vec![None::<&str>])),
            Arc::new(StringArray::from(vec!["remove"])),
        ];
        let b = SourceBatch {
            batch: RecordBatch::try_new(t.schema(), columns).unwrap(),
            source: "c.csv".into(),
            first_row: 4,
        };
        assert_eq!(
            v.check(&b).unwrap_err().to_string(),
            "c.csv, row 4, column `_dagr_change`: `_dagr_change` is `remove`; it must be `upsert` or `delete`"
        );
        let s = v.finish();
        assert_eq!((s.rows, s.upserts, s.deletes), (2, 1, 1));
    }

    #[test]
    fn composite_string_keys_are_exact() {
        let mut set = KeySet::default();
        let mut a = Vec::new();
        let mut b = Vec::new();
        // ("ab", "c") and ("a", "bc") must differ.
        for (out, parts) in [(&mut a, ["ab", "c"]), (&mut b, ["a", "bc"])] {
            for p in parts {
                out.extend_from_slice(&(p.len() as u32).to_le_bytes());
                out.extend_from_slice(p.as_bytes());
            }
        }
        assert!(set.insert(&a, 0, 1).is_none());
        assert!(set.insert(&b, 0, 2).is_none());
        assert_eq!(set.insert(&a, 1, 9), Some((0, 1)));
        // Long keys (a length over 127 takes two bytes) and the empty key.
        let long = vec![7u8; 300];
        assert!(set.insert(&long, 2, 3).is_none());
        assert!(set.insert(b"", 2, 4).is_none());
        assert_eq!(set.insert(&long, 3, 5), Some((2, 3)));
        assert_eq!(set.insert(b"", 3, 6), Some((2, 4)));
        assert_eq!(set.insert(&a, 1, 9), Some((0, 1)));
    }
}
