//! Files of a version (the plan's drawings, the explanatory memorandum): streamed to the
//! object store beside the snapshots while their SHA-256 is computed, stored once per
//! content (`tapis/files/{sha256}`), and named in the version by a row of `tapis_files`.
//! A version takes files until a consultation freezes it; the row is written under the
//! version's row lock, so a file can never slip into a version that a consultation opened
//! at the same moment.

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::AppState;
use crate::auth::to_hex;
use crate::error::ApiError;
use crate::governance::{GovError, GovResult};
use crate::model::Time;
use crate::store::StoreError;

use super::store::{TapisStore, db, note};

/// Largest file, in bytes.
pub const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;
/// Most files of a version.
pub const MAX_FILES: i64 = 100;
/// Longest file name, in characters.
pub const MAX_NAME: usize = 200;
/// Longest content type.
const MAX_CONTENT_TYPE: usize = 127;

/// A file of a version.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VersionFile {
    /// Its name in the version.
    pub name: String,
    /// SHA-256 of its bytes (hex).
    pub sha256: String,
    /// Size in bytes.
    pub size: i64,
    /// The content type given at upload.
    pub content_type: String,
    /// Added (RFC 3339).
    pub created_at: String,
}

fn invalid(field: &str, reason: impl Into<String>) -> GovError {
    GovError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

fn engine_err(e: dagr_engine::Error) -> GovError {
    GovError::Engine(e)
}

/// Check a file name: 1–[`MAX_NAME`] characters, no path separators, no control
/// characters, not `.` or `..`.
pub fn check_name(name: &str) -> GovResult<()> {
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME {
        return Err(invalid("name", format!("give 1 to {MAX_NAME} characters")));
    }
    if name == "." || name == ".." || name.starts_with(' ') || name.ends_with(' ') {
        return Err(invalid(
            "name",
            "not `.`, `..` or with spaces at either end",
        ));
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return Err(invalid(
            "name",
            "no control characters, `/` or `\\` in a file name",
        ));
    }
    Ok(())
}

/// Check a declared content type: `type/subtype` of printable ASCII (default
/// `application/octet-stream`).
pub fn check_content_type(ct: Option<&str>) -> GovResult<String> {
    let ct = ct.map(str::trim).unwrap_or("");
    if ct.is_empty() {
        return Ok("application/octet-stream".into());
    }
    let ok = ct.len() <= MAX_CONTENT_TYPE
        && ct.contains('/')
        && ct.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if ok {
        Ok(ct.to_owned())
    } else {
        Err(invalid(
            "content-type",
            format!("a media type of at most {MAX_CONTENT_TYPE} printable ASCII characters"),
        ))
    }
}

fn object(sha: &str) -> String {
    format!("tapis/files/{sha}")
}

fn file_row(r: &sqlx::any::AnyRow) -> GovResult<VersionFile> {
    Ok(VersionFile {
        name: r.try_get("name").map_err(db)?,
        sha256: r.try_get("sha256").map_err(db)?,
        size: r.try_get("size").map_err(db)?,
        content_type: r.try_get("content_type").map_err(db)?,
        created_at: Time(r.try_get("created_at").map_err(db)?).to_rfc3339(),
    })
}

impl TapisStore {
    /// The files of a version, by name.
    pub(crate) async fn files(&self, version: i64) -> GovResult<Vec<VersionFile>> {
        let rows = sqlx::query("SELECT * FROM tapis_files WHERE version = $1 ORDER BY name")
            .bind(version)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(file_row).collect()
    }

    /// One file of a version.
    pub(crate) async fn file(&self, version: i64, name: &str) -> GovResult<VersionFile> {
        let row = sqlx::query("SELECT * FROM tapis_files WHERE version = $1 AND name = $2")
            .bind(version)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| GovError::NotFound(format!("no file `{name}` in version {version}")))?;
        file_row(&row)
    }

    /// Name stored content in a version, unless the version is frozen (409) or has the name
    /// already (409) or [`MAX_FILES`] files.
    async fn add_file(
        &self,
        doc: i64,
        version: i64,
        f: &VersionFile,
        actor: &str,
        staging: &str,
        blobs: &dagr_engine::store::SnapshotStore,
    ) -> GovResult<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The version's row lock: a consultation freezing it waits for this, or this sees
        // the freeze.
        let r = sqlx::query(
            "UPDATE tapis_versions SET frozen_at = frozen_at \
             WHERE id = $1 AND document = $2 AND frozen_at IS NULL",
        )
        .bind(version)
        .bind(doc)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if r.rows_affected() != 1 {
            return Err(GovError::Conflict(format!(
                "version {version} is frozen: a consultation showed it; make a new version"
            )));
        }
        let (count, same): (i64, i64) = {
            let row = sqlx::query(
                "SELECT COUNT(*) AS n, COALESCE(SUM(CASE WHEN name = $2 THEN 1 ELSE 0 END), 0) AS same \
                 FROM tapis_files WHERE version = $1",
            )
            .bind(version)
            .bind(&f.name)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
            (
                row.try_get("n").map_err(db)?,
                row.try_get("same").map_err(db)?,
            )
        };
        if same > 0 {
            return Err(GovError::Conflict(format!(
                "version {version} has a file `{}` already: files are not replaced",
                f.name
            )));
        }
        if count >= MAX_FILES {
            return Err(GovError::Conflict(format!(
                "version {version} has {MAX_FILES} files, the most one may have"
            )));
        }
        sqlx::query(
            "INSERT INTO tapis_files (version, name, sha256, size, content_type, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(version)
        .bind(&f.name)
        .bind(&f.sha256)
        .bind(f.size)
        .bind(&f.content_type)
        .bind(actor)
        .bind(Time::now().0)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        note(
            &mut tx,
            doc,
            &format!(
                "version {version}: file `{}` ({} bytes, sha256 {})",
                f.name, f.size, f.sha256
            ),
            actor,
        )
        .await?;
        // Content-addressed: the same bytes are stored once. The object is put in place
        // only once the row is sure to be written (never deleted: another row may name
        // it); a commit that fails after it leaves an unnamed object, nothing worse.
        let target = object(&f.sha256);
        if !blobs.blob_exists(&target).await.map_err(engine_err)? {
            blobs
                .rename_blob(staging, &target)
                .await
                .map_err(engine_err)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }
}

/// Stream `body` into the object store as file `name` of `version`, computing its SHA-256;
/// more than [`MAX_FILE_BYTES`] is refused (413) and leaves nothing. The checks of caller
/// and stage are the caller's; the version's freeze is checked here, before and after the
/// bytes.
#[allow(
    clippy::too_many_arguments,
    reason = "the upload's coordinates, its label and the stream"
)]
pub(crate) async fn upload<S, E>(
    state: &AppState,
    store: &TapisStore,
    doc: i64,
    version: i64,
    name: &str,
    content_type: &str,
    actor: &str,
    body: S,
) -> Result<VersionFile, ApiError>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
    E: std::fmt::Display,
{
    check_name(name)?;
    let v = store.version(doc, version).await?;
    if v.frozen_at.is_some() {
        return Err(GovError::Conflict(format!(
            "version {version} is frozen: a consultation showed it; make a new version"
        ))
        .into());
    }
    // The cheap refusals before any byte is read.
    let names = store.files(version).await?;
    if names.iter().any(|x| x.name == name) {
        return Err(GovError::Conflict(format!(
            "version {version} has a file `{name}` already: files are not replaced"
        ))
        .into());
    }
    if names.len() as i64 >= MAX_FILES {
        return Err(GovError::Conflict(format!(
            "version {version} has {MAX_FILES} files, the most one may have"
        ))
        .into());
    }
    let blobs = state.engine.store();
    let staging = format!("tapis/staging/{}", uuid());
    let mut writer = blobs.blob_writer(&staging).await.map_err(engine_err)?;
    let mut hash = Sha256::new();
    let mut size = 0u64;
    let mut body = body;
    let failed = loop {
        match body.next().await {
            None => break None,
            Some(Err(e)) => {
                break Some(ApiError::BadRequest(format!("the upload broke off: {e}")));
            }
            Some(Ok(chunk)) => {
                size += chunk.len() as u64;
                if size > MAX_FILE_BYTES {
                    break Some(ApiError::TooLarge(format!(
                        "a file is at most {MAX_FILE_BYTES} bytes"
                    )));
                }
                hash.update(&chunk);
                if let Err(e) = writer.write(&chunk).await {
                    break Some(engine_err(e).into());
                }
            }
        }
    };
    if let Some(e) = failed {
        let _ = writer.abort().await;
        return Err(e);
    }
    writer.finish().await.map_err(engine_err)?;
    let f = VersionFile {
        name: name.to_owned(),
        sha256: to_hex(&hash.finalize()),
        size: i64::try_from(size).unwrap_or(i64::MAX),
        content_type: content_type.to_owned(),
        created_at: Time::now().to_rfc3339(),
    };
    // The row and the bytes' place are settled together; whatever is refused leaves
    // nothing behind (the staging object is deleted).
    let added = store
        .add_file(doc, version, &f, actor, &staging, blobs)
        .await;
    let _ = blobs.delete_blob(&staging).await;
    added?;
    Ok(store.file(version, name).await?)
}

/// A file's bytes as a stream, with its row.
pub(crate) async fn download(
    state: &AppState,
    store: &TapisStore,
    doc: i64,
    version: i64,
    name: &str,
) -> GovResult<(
    VersionFile,
    BoxStream<'static, Result<Bytes, dagr_engine::Error>>,
)> {
    store.version(doc, version).await?;
    let f = store.file(version, name).await?;
    let (_, stream) = state
        .engine
        .store()
        .read_blob(&object(&f.sha256))
        .await
        .map_err(engine_err)?
        .ok_or_else(|| {
            GovError::Store(StoreError::Corrupt(format!(
                "the bytes of file `{name}` (sha256 {}) are missing from the object store",
                f.sha256
            )))
        })?;
    Ok((f, stream))
}

fn uuid() -> String {
    let mut b = [0u8; 16];
    // A staging name need only be unique; without randomness the time and a counter do.
    if getrandom::fill(&mut b).is_err() {
        b[..8].copy_from_slice(&Time::now().0.to_le_bytes());
    }
    to_hex(&b)
}
