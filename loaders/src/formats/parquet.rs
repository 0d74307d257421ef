//! Parquet: the footer is read once, then each row group in turn, so that an error names
//! the row group it is in.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};

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
    let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::default()).map_err(|e| {
        LoadError::input(
            at_source(label, None),
            format!("not a readable Parquet file (truncated or corrupt?): {e}"),
        )
    })?;
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
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(handle, meta.clone())
            .with_row_groups(vec![g])
            .with_batch_size(batch_rows)
            .build()
            .map_err(|e| in_group(&e))?;
        for batch in reader {
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

/// The number of rows of a Parquet file, from its footer.
pub(in crate::source) fn file_rows(path: &Path) -> Option<u64> {
    let file = File::open(path).ok()?;
    let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::default()).ok()?;
    u64::try_from(meta.metadata().file_metadata().num_rows()).ok()
}
