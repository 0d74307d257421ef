//! Files kept beside the snapshots in the same object store (for the business modules:
//! TAPIS's version files), under a prefix of their own (never `datasets/`). A file is
//! written as a stream ([`BlobWriter`]), and on a local store flushed to disk before it
//! counts as written; it is read back as a stream.

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, WriteMultipart};

use crate::error::{Error, Result};
use crate::store::SnapshotStore;

/// A file being written: [`BlobWriter::write`] its bytes, then [`BlobWriter::finish`]
/// (durable) or [`BlobWriter::abort`].
pub struct BlobWriter {
    upload: WriteMultipart,
    path: Path,
    store: SnapshotStore,
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("path", &self.path)
            .finish()
    }
}

fn blob_path(path: &str) -> Result<Path> {
    if path.starts_with("datasets/") || path == "datasets" {
        return Err(Error::Store(format!(
            "{path}: files beside snapshots may not live under datasets/"
        )));
    }
    Path::parse(path).map_err(|e| Error::Store(format!("{path}: {e}")))
}

impl BlobWriter {
    /// Add bytes (buffered into parts of the store's upload; waits when enough are in
    /// flight).
    pub async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.upload.wait_for_capacity(4).await?;
        self.upload.write(bytes);
        Ok(())
    }

    /// Complete the file and flush it to disk (a local store).
    pub async fn finish(self) -> Result<()> {
        self.upload.finish().await?;
        self.store.sync_path(&self.path).await
    }

    /// Drop what was written.
    pub async fn abort(self) -> Result<()> {
        self.upload.abort().await?;
        Ok(())
    }
}

impl SnapshotStore {
    /// Start writing the file `path` (replacing one there when finished).
    pub async fn blob_writer(&self, path: &str) -> Result<BlobWriter> {
        let p = blob_path(path)?;
        let upload = self.object_store().put_multipart(&p).await?;
        Ok(BlobWriter {
            upload: WriteMultipart::new(upload),
            path: p,
            store: self.clone(),
        })
    }

    /// Whether the file `path` exists.
    pub async fn blob_exists(&self, path: &str) -> Result<bool> {
        match self.object_store().head(&blob_path(path)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Move the file `from` to `to`, durably.
    pub async fn rename_blob(&self, from: &str, to: &str) -> Result<()> {
        let to = blob_path(to)?;
        self.object_store().rename(&blob_path(from)?, &to).await?;
        self.sync_path(&to).await
    }

    /// Delete the file `path` (nothing when it is not there).
    pub async fn delete_blob(&self, path: &str) -> Result<()> {
        match self.object_store().delete(&blob_path(path)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The file `path` as a stream of its bytes, with its size (`None` when not there).
    pub async fn read_blob(
        &self,
        path: &str,
    ) -> Result<Option<(u64, BoxStream<'static, Result<Bytes>>)>> {
        match self.object_store().get(&blob_path(path)?).await {
            Ok(r) => {
                let size = r.meta.size;
                Ok(Some((size, r.into_stream().map_err(Error::from).boxed())))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
