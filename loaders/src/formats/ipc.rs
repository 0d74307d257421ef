//! Arrow IPC: the file format (`ARROW1` magic) and the stream format.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::ipc::reader::{FileReader, StreamReader};
use arrow::record_batch::RecordBatch;

use super::{Emit, TargetInfo, at_source, emit_typed, io_error, typed_plan};
use crate::error::{LoadError, Result};

const MAGIC: &[u8; 6] = b"ARROW1";

/// Read an Arrow IPC file or stream.
pub(super) fn read(
    path: &Path,
    label: &Arc<str>,
    target: &TargetInfo,
    batch_rows: usize,
    emit: Emit<'_>,
) -> Result<()> {
    let mut file = File::open(path).map_err(|e| io_error(label, &e))?;
    let mut head = [0u8; 6];
    let mut got = 0;
    while got < head.len() {
        match file.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(label, &e)),
        }
    }
    file.seek(SeekFrom::Start(0))
        .map_err(|e| io_error(label, &e))?;
    let bad = |what: &str, e: ArrowError| {
        LoadError::input(at_source(label, None), format!("{what}: {e}"))
    };
    if got == head.len() && &head == MAGIC {
        let reader = FileReader::try_new(BufReader::new(file), None)
            .map_err(|e| bad("not a readable Arrow IPC file", e))?;
        let schema = reader.schema();
        consume(schema, reader, label, target, batch_rows, emit)
    } else {
        let reader = StreamReader::try_new(BufReader::new(file), None)
            .map_err(|e| bad("not an Arrow IPC file or stream", e))?;
        let schema = reader.schema();
        consume(schema, reader, label, target, batch_rows, emit)
    }
}

fn consume(
    schema: SchemaRef,
    batches: impl Iterator<Item = std::result::Result<RecordBatch, ArrowError>>,
    label: &Arc<str>,
    target: &TargetInfo,
    batch_rows: usize,
    emit: Emit<'_>,
) -> Result<()> {
    let plan = typed_plan(target, &schema, label)?;
    let mut row = 0u64;
    for (k, batch) in batches.enumerate() {
        let batch = batch.map_err(|e| {
            LoadError::input(
                at_source(label, None),
                format!(
                    "record batch {} (after row {row}) cannot be read: {e}",
                    k + 1
                ),
            )
        })?;
        let mut offset = 0;
        while offset < batch.num_rows() {
            let len = batch_rows.min(batch.num_rows() - offset);
            let part = batch.slice(offset, len);
            offset += len;
            if !emit_typed(target, &plan, &part, label, &mut row, &mut *emit)? {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The number of rows of an IPC file, from its footer and the record batch headers (no
/// data is read); `None` for a stream or an unreadable file.
pub(in crate::source) fn file_rows(path: &Path) -> Option<u64> {
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    if len < 18 {
        return None;
    }
    let mut head = [0u8; 6];
    file.read_exact(&mut head).ok()?;
    if &head != MAGIC {
        return None;
    }
    let mut tail = [0u8; 10];
    file.seek(SeekFrom::End(-10)).ok()?;
    file.read_exact(&mut tail).ok()?;
    if &tail[4..] != MAGIC {
        return None;
    }
    let footer_len = u64::try_from(i32::from_le_bytes(tail[..4].try_into().ok()?)).ok()?;
    if footer_len + 10 > len {
        return None;
    }
    let mut footer = vec![0u8; usize::try_from(footer_len).ok()?];
    file.seek(SeekFrom::Start(len - 10 - footer_len)).ok()?;
    file.read_exact(&mut footer).ok()?;
    let footer = arrow::ipc::root_as_footer(&footer).ok()?;
    let mut total = 0u64;
    for block in footer.recordBatches()?.iter() {
        let offset = u64::try_from(block.offset()).ok()?;
        let meta_len = usize::try_from(block.metaDataLength()).ok()?;
        if meta_len < 8 || offset + meta_len as u64 > len {
            return None;
        }
        let mut meta = vec![0u8; meta_len];
        file.seek(SeekFrom::Start(offset)).ok()?;
        file.read_exact(&mut meta).ok()?;
        // [0xFFFFFFFF] [length: i32] [flatbuffer] (or, before 0.15, [length] [flatbuffer]).
        let start = if meta[..4] == [0xFF; 4] { 8 } else { 4 };
        let size =
            usize::try_from(i32::from_le_bytes(meta[start - 4..start].try_into().ok()?)).ok()?;
        let message = arrow::ipc::root_as_message(meta.get(start..start + size)?).ok()?;
        total += u64::try_from(message.header_as_record_batch()?.length()).ok()?;
    }
    Some(total)
}
