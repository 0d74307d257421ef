//! What a consumer needs to keep a local copy current: the response headers that describe a
//! whole-dataset or change stream, and the change stream itself (a `DoGet` ticket with
//! `since`, see [`crate::ticket`]).

use std::sync::Arc;

use dagr_engine::arrow::datatypes::Schema;
use dagr_engine::changes::ChangeFeed;
use dagr_engine::{Access, Snapshot};
use futures::stream::{self, StreamExt};
use sha2::{Digest, Sha256};
use tonic::metadata::{MetadataMap, MetadataValue};

use crate::error::status;
use crate::stream::Batches;

/// The version streamed (or changed to).
pub const VERSION_HEADER: &str = "x-dagr-version";
/// The version a change stream starts from.
pub const FROM_VERSION_HEADER: &str = "x-dagr-from-version";
/// The primary-key columns, comma-separated (only when the caller is granted them).
pub const KEY_HEADER: &str = "x-dagr-primary-key";
/// The fingerprint of the caller's grants and schema on the dataset.
pub const MASK_HEADER: &str = "x-dagr-mask";
/// `hit` when a whole-dataset stream is sent from the cache of encoded streams, `miss` when
/// it is encoded now (absent when the cache is off).
pub const CACHE_HEADER: &str = "x-dagr-cache";

/// A fingerprint of what a caller sees of a dataset: its masked schema and the attributes
/// and row scopes of its grants (not which agreements they come from, so that renewing an
/// agreement on the same terms keeps local copies valid). Two streams with the same
/// fingerprint are cut from the data by the same mask.
pub fn mask_fingerprint(access: &Access, dataset: &str, schema: &Schema) -> String {
    let mut h = Sha256::new();
    for f in schema.fields() {
        h.update(format!("{}:{}:{};", f.name(), f.data_type(), f.is_nullable()).as_bytes());
    }
    match access.grants_for(dataset) {
        None => h.update(b"|all"),
        Some(grants) => {
            let mut terms: Vec<String> = grants
                .iter()
                .map(|g| {
                    let mut attributes = g.attributes.clone();
                    attributes.sort();
                    format!(
                        "{}|{}",
                        attributes.join(","),
                        g.row_scope.as_deref().unwrap_or("")
                    )
                })
                .collect();
            terms.sort();
            terms.dedup();
            for t in terms {
                h.update(b"|grant:");
                h.update(t.as_bytes());
            }
        }
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Set the headers that describe a stream of `snapshot` as the caller sees it (a change
/// stream: `from`, the version it starts from).
pub(crate) fn describe(
    metadata: &mut MetadataMap,
    snapshot: &Snapshot,
    from: Option<u64>,
    key_granted: bool,
    fingerprint: &str,
) {
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = MetadataValue::try_from(value) {
            metadata.insert(name, v);
        }
    };
    set(VERSION_HEADER, snapshot.version().to_string());
    if let Some(from) = from {
        set(FROM_VERSION_HEADER, from.to_string());
    }
    set(MASK_HEADER, fingerprint.to_owned());
    if key_granted {
        set(KEY_HEADER, snapshot.definition().primary_key.join(","));
    }
}

/// The change feed's batches as a stream.
pub(crate) fn batches(feed: Arc<ChangeFeed>, batch_rows: usize) -> Batches {
    stream::iter(feed.batches(batch_rows.max(1)))
        .map(|b| b.map_err(|e| arrow_flight::error::FlightError::from(status(e))))
        .boxed()
}
