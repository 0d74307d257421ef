//! `dagr pull`: the caller's masked view of a dataset, streamed over Flight `DoGet` into a
//! local Parquet or CSV file.
//!
//! The file is written under a temporary name next to the target and renamed into place only
//! when complete and synced, so an interrupted pull leaves the previous file untouched. A
//! Parquet file records where it came from in its key-value metadata (`dagr.dataset`,
//! `dagr.version`, `dagr.mask`, `dagr.primary_key`): this is what `dagr sync` continues from.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_flight::Ticket;
use arrow_flight::decode::FlightRecordBatchStream;
use dagr_engine::arrow::array::RecordBatch;
use dagr_engine::arrow::datatypes::SchemaRef;
use dagr_flight_server::feed::{FROM_VERSION_HEADER, KEY_HEADER, MASK_HEADER, VERSION_HEADER};
use dagr_flight_server::ticket::DatasetTicket;
use futures::StreamExt;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use serde::Serialize;

use crate::client::{Connection, flight_error};
use crate::error::{LoadError, Result};
use crate::progress::Progress;

/// Output formats of a pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutFormat {
    /// Apache Parquet (zstd), with the origin in its metadata.
    Parquet,
    /// CSV with a header line, UTF-8.
    Csv,
}

impl OutFormat {
    /// The format named (`parquet`, `csv`) or, failing that, implied by the file's extension.
    pub fn choose(name: Option<&str>, out: &Path) -> Result<Self> {
        let name = match name {
            Some(n) => n.to_ascii_lowercase(),
            None => out
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase)
                .unwrap_or_default(),
        };
        match name.as_str() {
            "parquet" | "parq" => Ok(OutFormat::Parquet),
            "csv" => Ok(OutFormat::Csv),
            other => Err(LoadError::Usage(format!(
                "cannot tell the output format from `{other}`: use --format parquet|csv or a \
                 .parquet / .csv file name"
            ))),
        }
    }
}

/// What a stream from the server is: the response headers of a dataset or change stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// The dataset.
    pub dataset: String,
    /// The version streamed (or changed to).
    pub version: u64,
    /// The version a change stream starts from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_version: Option<u64>,
    /// The fingerprint of the caller's grants and schema.
    pub mask: String,
    /// The primary-key columns, when granted.
    pub primary_key: Vec<String>,
}

impl Origin {
    fn of(dataset: &str, stream: &FlightRecordBatchStream) -> Result<Self> {
        let headers = stream.headers();
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let version = text(VERSION_HEADER)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                LoadError::Server(format!(
                    "the server did not say the version ({VERSION_HEADER})"
                ))
            })?;
        Ok(Origin {
            dataset: dataset.to_owned(),
            version,
            from_version: text(FROM_VERSION_HEADER).and_then(|v| v.parse().ok()),
            mask: text(MASK_HEADER).unwrap_or_default(),
            primary_key: text(KEY_HEADER)
                .map(|k| k.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
        })
    }

    /// The Parquet key-value metadata recording this origin.
    pub fn to_metadata(&self) -> Vec<KeyValue> {
        vec![
            KeyValue::new("dagr.dataset".to_owned(), self.dataset.clone()),
            KeyValue::new("dagr.version".to_owned(), self.version.to_string()),
            KeyValue::new("dagr.mask".to_owned(), self.mask.clone()),
            KeyValue::new("dagr.primary_key".to_owned(), self.primary_key.join(",")),
        ]
    }

    /// The origin recorded in a Parquet file's metadata, if it has one.
    pub fn from_metadata(kv: Option<&Vec<KeyValue>>) -> Option<Self> {
        let get = |k: &str| {
            kv?.iter()
                .find(|e| e.key == k)
                .and_then(|e| e.value.clone())
        };
        Some(Origin {
            dataset: get("dagr.dataset")?,
            version: get("dagr.version")?.parse().ok()?,
            from_version: None,
            mask: get("dagr.mask")?,
            primary_key: get("dagr.primary_key")?
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }
}

/// What a pull did.
#[derive(Debug, Clone, Serialize)]
pub struct PullOutcome {
    /// Where the data came from.
    pub origin: Origin,
    /// The file written.
    pub file: PathBuf,
    /// Its format.
    pub format: OutFormat,
    /// Rows written.
    pub rows: u64,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Open a `DoGet` stream of `ticket` and read what it is from its headers.
pub(crate) async fn open_stream(
    conn: &Connection,
    ticket: &DatasetTicket,
) -> std::result::Result<(FlightRecordBatchStream, Origin), arrow_flight::error::FlightError> {
    let mut client = conn.client().await.map_err(|e| {
        arrow_flight::error::FlightError::Tonic(Box::new(tonic::Status::unavailable(e.to_string())))
    })?;
    let stream = client.do_get(Ticket::new(ticket.to_bytes())).await?;
    let origin = Origin::of(&ticket.dataset, &stream)
        .map_err(|e| arrow_flight::error::FlightError::ProtocolError(e.to_string()))?;
    Ok((stream, origin))
}

/// How the temporary files of unfinished pulls and syncs end.
pub(crate) const PARTIAL_SUFFIX: &str = ".dagr-partial";

/// A file being written under a temporary name, renamed into place by [`Staged::commit`].
pub(crate) struct Staged {
    tmp: PathBuf,
    target: PathBuf,
}

impl Staged {
    /// Stage `target` (removing what an interrupted run left).
    pub(crate) fn new(target: &Path) -> Result<(Self, File)> {
        let name = target.file_name().ok_or_else(|| {
            LoadError::Usage(format!("`{}` is not a file name", target.display()))
        })?;
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir)
            .map_err(|e| LoadError::Io(format!("cannot create {}: {e}", dir.display())))?;
        // A name of its own per run: a pull and a sync of the same file cannot write into
        // each other's partial file.
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let tmp = dir.join(format!(
            ".{}.{}-{unique}{PARTIAL_SUFFIX}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let file = File::create(&tmp)
            .map_err(|e| LoadError::Io(format!("cannot write {}: {e}", tmp.display())))?;
        Ok((
            Staged {
                tmp,
                target: target.to_path_buf(),
            },
            file,
        ))
    }

    /// Sync the written file and move it into place (atomically, then sync the directory).
    pub(crate) fn commit(self, file: File) -> Result<()> {
        file.sync_all()
            .map_err(|e| LoadError::Io(format!("cannot sync {}: {e}", self.tmp.display())))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.target).map_err(|e| {
            LoadError::Io(format!(
                "cannot move {} into place: {e}",
                self.target.display()
            ))
        })?;
        if let Some(dir) = self.target.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        // Removes the partial file of a failed run; after a commit it is already gone.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// A writer of one output file in either format.
pub(crate) enum Writer {
    Parquet(ArrowWriter<File>),
    Csv(dagr_engine::arrow::csv::Writer<File>, Option<File>),
}

impl Writer {
    pub(crate) fn new(
        format: OutFormat,
        file: File,
        schema: SchemaRef,
        origin: &Origin,
    ) -> Result<Self> {
        Ok(match format {
            OutFormat::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()))
                    .set_key_value_metadata(Some(origin.to_metadata()))
                    .build();
                Writer::Parquet(
                    ArrowWriter::try_new(file, schema, Some(props))
                        .map_err(|e| LoadError::Io(format!("cannot write Parquet: {e}")))?,
                )
            }
            OutFormat::Csv => {
                let sync = file
                    .try_clone()
                    .map_err(|e| LoadError::Io(format!("cannot write CSV: {e}")))?;
                Writer::Csv(
                    dagr_engine::arrow::csv::WriterBuilder::new()
                        .with_header(true)
                        .build(file),
                    Some(sync),
                )
            }
        })
    }

    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            Writer::Parquet(w) => w
                .write(batch)
                .map_err(|e| LoadError::Io(format!("cannot write Parquet: {e}"))),
            Writer::Csv(w, _) => w
                .write(batch)
                .map_err(|e| LoadError::Io(format!("cannot write CSV: {e}"))),
        }
    }

    /// Finish the file and hand it back for [`Staged::commit`].
    pub(crate) fn finish(self) -> Result<File> {
        match self {
            Writer::Parquet(w) => w
                .into_inner()
                .map_err(|e| LoadError::Io(format!("cannot finish Parquet: {e}"))),
            Writer::Csv(w, sync) => {
                drop(w);
                sync.ok_or_else(|| LoadError::Io("CSV file lost".into()))
            }
        }
    }
}

/// Pull the caller's masked view of `dataset` into `out`.
pub async fn pull(
    conn: &Connection,
    dataset: &str,
    out: &Path,
    format: OutFormat,
    quiet: bool,
) -> Result<PullOutcome> {
    conn.retrying("pull", |_| async {
        let (mut stream, origin) = open_stream(conn, &DatasetTicket::dataset(dataset))
            .await
            .map_err(flight_error)?;
        let mut progress = Progress::new(format!("pulling {dataset}"), None, quiet);
        let (staged, file) = Staged::new(out)?;
        let mut writer: Option<Writer> = None;
        let mut file = Some(file);
        // The writer is made once: at the first batch, or at the end when there was none.
        let mut start = |schema: SchemaRef| -> Result<Writer> {
            let f = file
                .take()
                .ok_or_else(|| LoadError::Io("output lost".into()))?;
            Writer::new(format, f, schema, &origin)
        };
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(flight_error)?;
            if writer.is_none() {
                writer = Some(start(batch.schema())?);
            }
            if let Some(w) = writer.as_mut() {
                w.write(&batch)?;
            }
            progress.add(batch.num_rows() as u64);
        }
        let writer = match writer {
            Some(w) => w,
            // No rows visible: an empty file with the stream's schema.
            None => {
                let schema = stream
                    .schema()
                    .cloned()
                    .ok_or_else(|| LoadError::Server("the stream carried no schema".into()))?;
                start(schema)?
            }
        };
        staged.commit(writer.finish()?)?;
        progress.finish(&format!(
            "version {} written to {}",
            origin.version,
            out.display()
        ));
        Ok(PullOutcome {
            origin,
            file: out.to_path_buf(),
            format,
            rows: progress.rows(),
            seconds: progress.elapsed().as_secs_f64(),
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn an_unfinished_file_never_replaces_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("persons.parquet");
        std::fs::write(&target, b"previous").unwrap();
        {
            let (_staged, mut file) = Staged::new(&target).unwrap();
            file.write_all(b"half of the new").unwrap();
            // Dropped without commit: an error or an interrupted run.
        }
        assert_eq!(std::fs::read(&target).unwrap(), b"previous");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "the partial file was not removed");
        let (staged, mut file) = Staged::new(&target).unwrap();
        file.write_all(b"new").unwrap();
        staged.commit(file).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
    }
}
