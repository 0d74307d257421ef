//! The cache of encoded whole-dataset streams.
//!
//! Consumers pull the same snapshot through the same mask again: a nightly pull by several
//! systems under one agreement, a `dagr sync` catching up, a retry after a dropped
//! connection. The messages encoded for the first such pull are kept and sent again, so a
//! second pull costs the copy to the socket and nothing else.
//!
//! - **Key** ([`Key`]): the dataset, the snapshot (version and creation time), the caller's
//!   grants on it (the masked schema, the attributes and row scopes, and the agreements they
//!   come from), the projection and the compression. Two callers share an entry only when
//!   the same grants cut the same snapshot.
//! - **Filled** by a stream that was sent whole ([`EncodedCache::tee`]), one stream per key at
//!   a time (other misses of the key stream without keeping); a stream that failed, was
//!   dropped or would pass the bound leaves nothing.
//! - **Bounded** by [`crate::FlightConfig::cache_bytes`], twice: the entries kept, and what
//!   streams being filled hold (every byte counted, although most body pieces are the
//!   snapshot's own buffers); the least recently used entries go first.
//! - **Never outlives a revoked agreement or a replaced snapshot**: a revoked or expired
//!   agreement is no longer in the caller's grants, so its key is not asked for again; and
//!   [`EncodedCache::sweep`], run every second by the server, drops every entry an agreement
//!   of which is no longer in force ([`AccessPolicy::agreement_in_force`]) or whose snapshot
//!   is no longer the dataset's current one.
//! - The access record is written per pull, hit or not: a hit only skips the encoding.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use dagr_engine::arrow::ipc::CompressionType;
use dagr_engine::{Access, AccessPolicy, MaskedView};
use futures::Stream;
use futures::stream::{self, StreamExt};
use parking_lot::Mutex;

use crate::wire::{Encoded, Messages};

/// What a cached stream was cut from and how it was encoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    dataset: String,
    version: u64,
    created_at: i64,
    /// The mask fingerprint (masked schema, attributes, row scopes).
    mask: String,
    /// The agreements of the caller's grants, sorted.
    agreements: Vec<String>,
    projection: Option<Vec<usize>>,
    compression: Option<i8>,
}

impl Key {
    /// The key of a whole-dataset stream of `view` for a caller with `access`, whose mask
    /// has fingerprint `mask` ([`crate::feed::mask_fingerprint`]).
    pub(crate) fn new(
        view: &MaskedView,
        access: &Access,
        mask: &str,
        projection: Option<&[usize]>,
        compression: Option<CompressionType>,
    ) -> Self {
        let dataset = view.snapshot.definition().name.clone();
        let mut agreements: Vec<String> = access
            .grants_for(&dataset)
            .into_iter()
            .flatten()
            .filter_map(|g| g.agreement.clone())
            .collect();
        agreements.sort();
        agreements.dedup();
        Key {
            version: view.snapshot.version(),
            created_at: view.snapshot.created_at().timestamp_micros(),
            dataset,
            mask: mask.to_owned(),
            agreements,
            projection: projection.map(<[usize]>::to_vec),
            compression: compression.map(|c| c.0),
        }
    }
}

struct Entry {
    messages: Arc<[Encoded]>,
    bytes: usize,
    last_used: u64,
}

#[derive(Default)]
struct State {
    entries: HashMap<Key, Entry>,
    used: usize,
    clock: u64,
    /// Keys being filled: one stream fills a key, other misses of it stream without keeping.
    filling: HashSet<Key>,
    /// Bytes kept by streams still being sent (bounded like `used`).
    inflight: usize,
}

/// Encoded whole-dataset streams, bounded in bytes, least recently used evicted first.
pub(crate) struct EncodedCache {
    bound: usize,
    state: Mutex<State>,
}

impl std::fmt::Debug for EncodedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.lock();
        f.debug_struct("EncodedCache")
            .field("bound", &self.bound)
            .field("entries", &state.entries.len())
            .field("used", &state.used)
            .finish()
    }
}

impl EncodedCache {
    /// A cache of at most `bound` bytes (0: nothing is kept).
    pub(crate) fn new(bound: usize) -> Self {
        EncodedCache {
            bound,
            state: Mutex::new(State::default()),
        }
    }

    /// Whether anything can be kept.
    pub(crate) fn enabled(&self) -> bool {
        self.bound > 0
    }

    /// The messages of `key`, as a stream, if kept.
    pub(crate) fn get(&self, key: &Key) -> Option<Messages> {
        let mut state = self.state.lock();
        state.clock += 1;
        let now = state.clock;
        let entry = state.entries.get_mut(key)?;
        entry.last_used = now;
        let messages = Arc::clone(&entry.messages);
        Some(stream::iter((0..messages.len()).map(move |i| Ok(messages[i].clone()))).boxed())
    }

    /// `messages`, keeping a reference to each as it passes; when the stream has been sent
    /// whole, the messages are kept under `key`. Unchanged when another stream is filling
    /// `key` already. What streams being filled keep counts against the bound too: a stream
    /// that would pass it stops keeping and lets go of what it kept.
    pub(crate) fn tee(self: &Arc<Self>, key: Key, messages: Messages) -> Messages {
        if !self.state.lock().filling.insert(key.clone()) {
            return messages;
        }
        Box::pin(Tee {
            inner: messages,
            cache: Arc::clone(self),
            key: Some(key),
            kept: Vec::new(),
            bytes: 0,
        })
    }

    /// Reserve `bytes` more for a stream being filled; `false` when the bound would pass.
    fn reserve(&self, bytes: usize) -> bool {
        let mut state = self.state.lock();
        if state.inflight + bytes > self.bound {
            return false;
        }
        state.inflight += bytes;
        true
    }

    /// A stream being filled stopped: its reservation goes, and `key` may be filled again.
    fn release(&self, key: &Key, reserved: usize) {
        let mut state = self.state.lock();
        state.inflight -= reserved;
        state.filling.remove(key);
    }

    fn insert(&self, key: Key, messages: Vec<Encoded>, bytes: usize) {
        let mut state = self.state.lock();
        state.inflight -= bytes;
        state.filling.remove(&key);
        // A stream of an older snapshot than one kept: never asked for again.
        if state
            .entries
            .keys()
            .any(|k| k.dataset == key.dataset && k.version > key.version)
        {
            return;
        }
        // Older snapshots of the dataset are never asked for again.
        let stale: Vec<Key> = state
            .entries
            .keys()
            .filter(|k| k.dataset == key.dataset && k.version < key.version)
            .cloned()
            .collect();
        for k in stale {
            state.remove(&k);
        }
        state.remove(&key);
        while state.used + bytes > self.bound {
            let Some(oldest) = state
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            state.remove(&oldest);
        }
        state.clock += 1;
        let last_used = state.clock;
        state.used += bytes;
        state.entries.insert(
            key,
            Entry {
                messages: messages.into(),
                bytes,
                last_used,
            },
        );
    }

    /// Drop every entry cut by an agreement that is no longer in force, or from a snapshot
    /// that is no longer current (`current(dataset)`: its version and creation time, `None`
    /// when the dataset is gone). The checks run outside the cache's lock.
    pub(crate) fn sweep(
        &self,
        policy: &dyn AccessPolicy,
        current: impl Fn(&str) -> Option<(u64, i64)>,
    ) {
        let keys: Vec<Key> = self.state.lock().entries.keys().cloned().collect();
        if keys.is_empty() {
            return;
        }
        let agreements: BTreeSet<&str> = keys
            .iter()
            .flat_map(|k| k.agreements.iter().map(String::as_str))
            .collect();
        let ended: HashSet<&str> = agreements
            .into_iter()
            .filter(|a| !policy.agreement_in_force(a))
            .collect();
        let datasets: BTreeSet<&str> = keys.iter().map(|k| k.dataset.as_str()).collect();
        let snapshots: HashMap<&str, Option<(u64, i64)>> =
            datasets.into_iter().map(|d| (d, current(d))).collect();
        let gone: Vec<&Key> = keys
            .iter()
            .filter(|k| {
                k.agreements.iter().any(|a| ended.contains(a.as_str()))
                    || snapshots.get(k.dataset.as_str()).copied().flatten()
                        != Some((k.version, k.created_at))
            })
            .collect();
        if gone.is_empty() {
            return;
        }
        let mut state = self.state.lock();
        for k in &gone {
            state.remove(k);
        }
        tracing::info!(
            streams = gone.len(),
            "dropped cached streams of agreements no longer in force or of replaced snapshots"
        );
    }

    /// Entries and bytes kept, and bytes reserved by streams being filled.
    #[cfg(test)]
    pub(crate) fn usage(&self) -> (usize, usize, usize) {
        let state = self.state.lock();
        (state.entries.len(), state.used, state.inflight)
    }
}

impl State {
    fn remove(&mut self, key: &Key) {
        if let Some(e) = self.entries.remove(key) {
            self.used -= e.bytes;
        }
    }
}

/// The stream of [`EncodedCache::tee`].
struct Tee {
    inner: Messages,
    cache: Arc<EncodedCache>,
    /// `None` once the stream failed or outgrew the bound.
    key: Option<Key>,
    kept: Vec<Encoded>,
    bytes: usize,
}

impl Stream for Tee {
    type Item = Result<Encoded, tonic::Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let polled = this.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(m))) if this.key.is_some() => {
                if this.cache.reserve(m.size()) {
                    this.bytes += m.size();
                    this.kept.push(m.clone());
                } else {
                    this.give_up();
                }
            }
            Poll::Ready(Some(Err(_))) => this.give_up(),
            Poll::Ready(None) => {
                if let Some(key) = this.key.take() {
                    let kept = std::mem::take(&mut this.kept);
                    this.cache
                        .insert(key, kept, std::mem::take(&mut this.bytes));
                }
            }
            _ => {}
        }
        polled
    }
}

impl Tee {
    /// Keep nothing more, and let go of what was kept.
    fn give_up(&mut self) {
        if let Some(key) = self.key.take() {
            self.cache.release(&key, std::mem::take(&mut self.bytes));
            self.kept = Vec::new();
        }
    }
}

impl Drop for Tee {
    fn drop(&mut self) {
        self.give_up();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use dagr_engine::{AuthError, Principal};

    fn key(dataset: &str, version: u64, agreement: &str) -> Key {
        Key {
            dataset: dataset.to_owned(),
            version,
            created_at: 0,
            mask: "m".to_owned(),
            agreements: vec![agreement.to_owned()],
            projection: None,
            compression: None,
        }
    }

    fn message(bytes: usize) -> Encoded {
        Encoded {
            header: Bytes::new(),
            body: vec![Bytes::from(vec![7u8; bytes])],
            app_metadata: Bytes::new(),
        }
    }

    async fn fill(cache: &Arc<EncodedCache>, key: Key, sizes: &[usize]) {
        let messages: Vec<_> = sizes.iter().map(|&n| Ok(message(n))).collect();
        let tee = cache.tee(key, stream::iter(messages).boxed());
        assert_eq!(tee.count().await, sizes.len());
    }

    #[tokio::test]
    async fn a_whole_stream_is_kept_and_the_least_recently_used_goes_first() {
        let cache = Arc::new(EncodedCache::new(1000));
        fill(&cache, key("a", 1, "1"), &[300, 100]).await;
        fill(&cache, key("b", 1, "1"), &[400]).await;
        assert_eq!(cache.usage(), (2, 800, 0));
        let hit: Vec<_> = cache.get(&key("a", 1, "1")).unwrap().collect().await;
        assert_eq!(hit.len(), 2);
        assert_eq!(hit[0].as_ref().unwrap().body_len(), 300);
        // `b` is now the least recently used: it makes room for `c`.
        fill(&cache, key("c", 1, "1"), &[500]).await;
        assert!(cache.get(&key("b", 1, "1")).is_none());
        assert!(cache.get(&key("a", 1, "1")).is_some());
        assert_eq!(cache.usage(), (2, 900, 0));
        // Too large for the bound: passes through, kept nowhere.
        fill(&cache, key("d", 1, "1"), &[600, 600]).await;
        assert!(cache.get(&key("d", 1, "1")).is_none());
        // A newer snapshot drops the older one's entries.
        fill(&cache, key("a", 2, "1"), &[10]).await;
        assert!(cache.get(&key("a", 1, "1")).is_none());
        assert!(cache.get(&key("a", 2, "1")).is_some());
    }

    #[tokio::test]
    async fn a_failed_or_dropped_stream_leaves_nothing() {
        let cache = Arc::new(EncodedCache::new(1000));
        let failing = stream::iter(vec![Ok(message(10)), Err(tonic::Status::internal("x"))]);
        let _ = cache
            .tee(key("a", 1, "1"), failing.boxed())
            .collect::<Vec<_>>()
            .await;
        assert!(cache.get(&key("a", 1, "1")).is_none());
        let mut dropped = cache.tee(
            key("b", 1, "1"),
            stream::iter(vec![Ok(message(10)), Ok(message(10))]).boxed(),
        );
        let _ = dropped.next().await;
        drop(dropped);
        assert_eq!(cache.usage(), (0, 0, 0));
    }

    #[derive(Debug)]
    struct Revoked(&'static str);

    impl AccessPolicy for Revoked {
        fn authenticate(&self, _bearer: &str) -> Result<Principal, AuthError> {
            Err(AuthError::Invalid)
        }
        fn access(&self, _principal: &Principal) -> Access {
            Access::Grants(Default::default())
        }
        fn agreement_in_force(&self, agreement: &str) -> bool {
            agreement != self.0
        }
    }

    #[tokio::test]
    async fn a_sweep_drops_what_a_revoked_agreement_cut() {
        let cache = Arc::new(EncodedCache::new(1000));
        fill(&cache, key("a", 1, "7"), &[10]).await;
        fill(&cache, key("a", 1, "8"), &[10]).await;
        fill(&cache, key("b", 4, "8"), &[10]).await;
        let current = |d: &str| match d {
            "a" => Some((1, 0)),
            // `b` has a newer snapshot now.
            _ => Some((5, 0)),
        };
        cache.sweep(&Revoked("7"), current);
        assert!(cache.get(&key("a", 1, "7")).is_none());
        assert!(cache.get(&key("a", 1, "8")).is_some());
        assert!(cache.get(&key("b", 4, "8")).is_none());
        assert_eq!(cache.usage(), (1, 10, 0));
        // A dataset that is gone takes its entries with it.
        cache.sweep(&Revoked("7"), |_| None);
        assert_eq!(cache.usage(), (0, 0, 0));
    }

    #[tokio::test]
    async fn one_stream_fills_a_key_and_streams_being_filled_count_against_the_bound() {
        let cache = Arc::new(EncodedCache::new(1000));
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let mut first = cache.tee(key("a", 1, "1"), rx.boxed());
        tx.unbounded_send(Ok(message(600))).unwrap();
        assert!(first.next().await.is_some());
        assert_eq!(cache.usage(), (0, 0, 600), "reserved while it is sent");
        // A second miss of the same key streams without keeping.
        fill(&cache, key("a", 1, "1"), &[600]).await;
        assert_eq!(cache.usage(), (0, 0, 600));
        // Another key would pass the bound with what the first holds: it keeps nothing.
        fill(&cache, key("b", 1, "1"), &[300, 300]).await;
        assert!(cache.get(&key("b", 1, "1")).is_none());
        assert_eq!(cache.usage(), (0, 0, 600));
        // The first ends: kept, nothing reserved.
        drop(tx);
        assert!(first.next().await.is_none());
        assert_eq!(cache.usage(), (1, 600, 0));
        // A dropped filler lets go of its reservation and of the key.
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let mut dropped = cache.tee(key("c", 1, "1"), rx.boxed());
        tx.unbounded_send(Ok(message(100))).unwrap();
        assert!(dropped.next().await.is_some());
        assert_eq!(cache.usage(), (1, 600, 100));
        drop(dropped);
        assert_eq!(cache.usage(), (1, 600, 0));
        fill(&cache, key("c", 1, "1"), &[100]).await;
        assert!(cache.get(&key("c", 1, "1")).is_some());
        // A stream of an older snapshot than one kept is not kept.
        fill(&cache, key("a", 0, "1"), &[10]).await;
        assert!(cache.get(&key("a", 0, "1")).is_none());
    }
}
