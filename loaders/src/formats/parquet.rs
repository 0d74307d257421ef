//! Parquet: the footer is read once, then each row group in turn, so that an error names
//! the row group it is in.
//!
//! The Parquet and Arrow decoders panic on some malformed files instead of returning an
//! error (an embedded Arrow schema they cannot decode, a page whose sizes lie; found by
//! `fuzz/`'s `ingest_parquet`): every call into them is [`guarded`], so such a file is
//! refused like any other unreadable one, naming it, rather than failing the reader.

use std::fs::File;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::file::metadata::ParquetMetaDataReader;

use super::{Emit, TargetInfo, at_source, emit_typed, io_error, typed_plan};
use crate::error::{LoadError, Result};

/// Read a Parquet file.
pub(super) fn read(
    path: &Path,
    label: &Arc<str>,
    target: &TargetInfo,
    batch_rows: usize,
    emit: Emit<'_>,
) -> Result<()> {
    let file = File::open(path).map_err(|e| io_error(label, &e))?;
    let unreadable = |e: &dyn std::fmt::Display| {
        LoadError::input(
            at_source(label, None),
            format!("not a readable Parquet file (truncated or corrupt?): {e}"),
        )
    };
    let meta = guarded(|| ArrowReaderMetadata::load(&file, ArrowReaderOptions::default()))
        .map_err(|e| unreadable(&e))?
        .map_err(|e| unreadable(&e))?;
    let schema = Arc::clone(meta.schema());
    let plan = typed_plan(target, &schema, label)?;
    let groups = meta.metadata().num_row_groups();
    let mut row = 0u64;
    for g in 0..groups {
        let group_rows = u64::try_from(meta.metadata().row_group(g).num_rows()).unwrap_or(0);
        let group_start = row;
        let in_group = |e: &dyn std::fmt::Display| {
            LoadError::input(
                at_source(label, None),
                format!(
                    "row group {} of {groups} (rows {}–{}) cannot be read: {e}",
                    g + 1,
                    group_start + 1,
                    group_start + group_rows
                ),
            )
        };
        let handle = file.try_clone().map_err(|e| io_error(label, &e))?;
        let mut reader = guarded(|| {
            ParquetRecordBatchReaderBuilder::new_with_metadata(handle, meta.clone())
                .with_row_groups(vec![g])
                .with_batch_size(batch_rows)
                .build()
        })
        .map_err(|e| in_group(&e))?
        .map_err(|e| in_group(&e))?;
        while let Some(batch) = guarded(|| reader.next()).map_err(|e| in_group(&e))? {
            let batch = batch.map_err(|e| in_group(&e))?;
            if !emit_typed(target, &plan, &batch, label, &mut row, &mut *emit)? {
                return Ok(());
            }
        }
        if row != group_start + group_rows {
            return Err(in_group(&format!(
                "it holds {group_rows} rows, but {} were read",
                row - group_start
            )));
        }
    }
    Ok(())
}

/// Run a call into the Parquet decoder; a panic in it becomes the error (`Err`) that says
/// the decoder failed, with the panic's message.
fn guarded<T>(call: impl FnOnce() -> T) -> std::result::Result<T, String> {
    catch_unwind(AssertUnwindSafe(call)).map_err(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("no message");
        format!("the Parquet decoder failed on it ({message})")
    })
}

/// The number of rows of a Parquet file, from its footer. Only the Parquet metadata is
/// read: not the Arrow schema embedded in it, whose decoder panics on some malformed files
/// (arrow-ipc's `fb_to_schema` unwraps), and this runs on the caller's thread, before any
/// reader (whose thread contains such a panic as an error).
pub(in crate::source) fn file_rows(path: &Path) -> Option<u64> {
    let file = File::open(path).ok()?;
    let meta = ParquetMetaDataReader::new().parse_and_finish(&file).ok()?;
    u64::try_from(meta.file_metadata().num_rows()).ok()
}
