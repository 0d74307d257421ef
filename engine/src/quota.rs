//! Per-consumer quotas: requests per second, concurrent result streams and concurrent SQL
//! queries, per API token.
//!
//! Both protocol servers (`flight-server`, `admin-api`) share one [`Quotas`], so a token's
//! requests are counted together whichever protocol it uses. Each limit has a server-wide
//! default ([`QuotaValues`], from the command line) that a system may override
//! ([`QuotaOverrides`], from the metadata store, handed to the servers through
//! [`crate::AccessPolicy::quota_overrides`] with the rest of the policy, so no request reads
//! the database).
//!
//! - **Requests per second**: a token bucket per token holding at most one second's worth
//!   of requests (the burst), refilled continuously. A request finding it empty is refused
//!   with the whole seconds to wait ([`QuotaExceeded::retry_after`], at least 1).
//! - **Streams** and **SQL queries**: counters of what a token has open now. A
//!   [`QuotaPermit`] holds one unit until it is dropped.
//!
//! The state of a token is one small entry in one of [`SHARDS`] maps, each behind a short
//! `parking_lot` mutex: a check is a hash, a lock and a few arithmetic operations (well
//! under a microsecond). An entry whose bucket is full again and that holds no permit is
//! equivalent to a fresh one, so it is dropped: when a permit is released, and by a sweep
//! each shard runs when it has doubled in size since its last sweep or every
//! [`SWEEP_EVERY`]. The maps therefore hold the tokens used in the last seconds, not every
//! token ever seen.

use std::borrow::Cow;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hashbrown::{DefaultHashBuilder, HashMap};
use parking_lot::Mutex;

use crate::Principal;

/// Default requests per second per token: 0, no limit (lookups are the product; set a
/// limit per system, or a server-wide one with `--quota-rps`).
pub const DEFAULT_REQUESTS_PER_SECOND: u32 = 0;
/// Default result streams one token may hold open at once.
pub const DEFAULT_STREAMS: u32 = 16;
/// Default SQL queries one token may run at once.
pub const DEFAULT_SQL_QUERIES: u32 = 16;
/// Largest requests-per-second limit that can be set.
pub const MAX_REQUESTS_PER_SECOND: u32 = 1_000_000;
/// Largest streams limit that can be set.
pub const MAX_STREAMS: u32 = 10_000;
/// Largest SQL-queries limit that can be set.
pub const MAX_SQL_QUERIES: u32 = 10_000;
/// Maps the token entries are spread over (fewer collisions on the locks).
pub const SHARDS: usize = 16;
/// Longest time between two sweeps of a shard that takes new entries.
pub const SWEEP_EVERY: Duration = Duration::from_secs(10);
/// A shard is swept when it holds this many entries, or twice as many as after its last
/// sweep, whichever is more.
const MIN_SWEEP_LEN: usize = 256;
/// The burst of the token bucket, in seconds of the rate: an entry untouched this long has
/// a full bucket again.
const BURST_NS: u64 = 1_000_000_000;

/// The three limits of a token. `requests_per_second` 0 means no limit; so does 0 for the
/// two others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuotaValues {
    /// Requests per second (the burst is one second's worth).
    pub requests_per_second: u32,
    /// Result streams open at once.
    pub streams: u32,
    /// SQL queries running at once.
    pub sql_queries: u32,
}

impl Default for QuotaValues {
    fn default() -> Self {
        QuotaValues {
            requests_per_second: DEFAULT_REQUESTS_PER_SECOND,
            streams: DEFAULT_STREAMS,
            sql_queries: DEFAULT_SQL_QUERIES,
        }
    }
}

impl QuotaValues {
    /// The limit of one quota.
    pub fn get(&self, quota: QuotaKind) -> u32 {
        match quota {
            QuotaKind::RequestsPerSecond => self.requests_per_second,
            QuotaKind::Streams => self.streams,
            QuotaKind::SqlQueries => self.sql_queries,
        }
    }
}

/// A system's own limits; `None` is the server default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct QuotaOverrides {
    /// Requests per second.
    pub requests_per_second: Option<u32>,
    /// Result streams open at once.
    pub streams: Option<u32>,
    /// SQL queries running at once.
    pub sql_queries: Option<u32>,
}

impl QuotaOverrides {
    /// The override of one quota.
    pub fn get(&self, quota: QuotaKind) -> Option<u32> {
        match quota {
            QuotaKind::RequestsPerSecond => self.requests_per_second,
            QuotaKind::Streams => self.streams,
            QuotaKind::SqlQueries => self.sql_queries,
        }
    }

    /// Whether every quota is the default.
    pub fn is_default(&self) -> bool {
        *self == QuotaOverrides::default()
    }

    /// Each value within its bounds (1 to the largest of [`QuotaKind::max`]), or the quota
    /// that is not.
    pub fn validate(&self) -> Result<(), (QuotaKind, String)> {
        for quota in QuotaKind::ALL {
            if let Some(v) = self.get(quota)
                && !(1..=quota.max()).contains(&v)
            {
                return Err((
                    quota,
                    format!(
                        "must be between 1 and {} (or null for the default); got {v}",
                        quota.max()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// One of the three quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    /// Requests per second.
    RequestsPerSecond,
    /// Result streams open at once.
    Streams,
    /// SQL queries running at once.
    SqlQueries,
}

impl QuotaKind {
    /// Every quota, in the order they are shown.
    pub const ALL: [QuotaKind; 3] = [
        QuotaKind::RequestsPerSecond,
        QuotaKind::Streams,
        QuotaKind::SqlQueries,
    ];

    /// The name used in the API, the metadata store and messages.
    pub fn name(self) -> &'static str {
        match self {
            QuotaKind::RequestsPerSecond => "requests_per_second",
            QuotaKind::Streams => "streams",
            QuotaKind::SqlQueries => "sql_queries",
        }
    }

    /// The largest value that can be set.
    pub fn max(self) -> u32 {
        match self {
            QuotaKind::RequestsPerSecond => MAX_REQUESTS_PER_SECOND,
            QuotaKind::Streams => MAX_STREAMS,
            QuotaKind::SqlQueries => MAX_SQL_QUERIES,
        }
    }

    fn index(self) -> usize {
        match self {
            QuotaKind::RequestsPerSecond => 0,
            QuotaKind::Streams => 1,
            QuotaKind::SqlQueries => 2,
        }
    }
}

impl fmt::Display for QuotaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A request refused by a quota: which one, its limit, and when to retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct QuotaExceeded {
    /// The quota.
    pub quota: QuotaKind,
    /// Its limit for this token.
    pub limit: u32,
    /// Whole seconds to wait before retrying (at least 1).
    pub retry_after: u64,
}

impl QuotaExceeded {
    fn message(&self) -> String {
        let (limit, name, retry) = (self.limit, self.quota.name(), self.retry_after);
        match self.quota {
            QuotaKind::RequestsPerSecond => format!(
                "quota `{name}` exceeded: this token may make {limit} requests per second; \
                 retry after {retry} s"
            ),
            QuotaKind::Streams => format!(
                "quota `{name}` exceeded: this token already has {limit} result streams open, \
                 the most it may hold; read or cancel one, then retry"
            ),
            QuotaKind::SqlQueries => format!(
                "quota `{name}` exceeded: this token already runs {limit} SQL queries, the \
                 most it may run at once; retry when one has ended"
            ),
        }
    }
}

/// The key of a caller's quota state: its token id, else its description (a caller without
/// a token, e.g. in-process tools).
pub fn key_of(p: &Principal) -> Cow<'_, str> {
    match &p.token_id {
        Some(t) => Cow::Borrowed(t.as_str()),
        None => Cow::Owned(p.describe()),
    }
}

/// The quota state of one token.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Requests left in the bucket (infinite until a limited request touched it).
    tokens: f64,
    /// When `tokens` was last refilled (ns since [`Quotas::origin`]).
    at: u64,
    /// Streams held.
    streams: u32,
    /// SQL queries held.
    sql: u32,
}

impl Entry {
    fn fresh(now: u64) -> Self {
        Entry {
            tokens: f64::INFINITY,
            at: now,
            streams: 0,
            sql: 0,
        }
    }

    /// Holds no permit and its bucket is full again: a fresh entry would behave the same.
    fn idle(&self, now: u64) -> bool {
        self.streams == 0
            && self.sql == 0
            && (self.tokens.is_infinite() || now.saturating_sub(self.at) >= BURST_NS)
    }

    fn count(&mut self, quota: QuotaKind) -> &mut u32 {
        match quota {
            QuotaKind::Streams => &mut self.streams,
            _ => &mut self.sql,
        }
    }
}

#[derive(Debug, Default)]
struct Shard {
    entries: HashMap<Box<str>, Entry>,
    swept_at: u64,
    sweep_len: usize,
}

impl Shard {
    /// The entry of `key`, made (after a sweep, when one is due) if there is none.
    fn entry(&mut self, key: &str, now: u64) -> &mut Entry {
        if !self.entries.contains_key(key) {
            if self.entries.len() >= self.sweep_len.max(MIN_SWEEP_LEN)
                || now.saturating_sub(self.swept_at) >= SWEEP_EVERY.as_nanos() as u64
            {
                self.sweep(now);
            }
            self.entries.insert(key.into(), Entry::fresh(now));
        }
        self.entries.get_mut(key).expect("just inserted")
    }

    fn sweep(&mut self, now: u64) {
        self.entries.retain(|_, e| !e.idle(now));
        self.sweep_len = self.entries.len() * 2;
        self.swept_at = now;
    }
}

/// The quota state of every token, and the server defaults.
#[derive(Debug)]
pub struct Quotas {
    defaults: [AtomicU32; 3],
    origin: Instant,
    hasher: DefaultHashBuilder,
    shards: Box<[Mutex<Shard>]>,
    /// Time moved on by tests (ns), instead of sleeping.
    #[cfg(test)]
    advanced: std::sync::atomic::AtomicU64,
}

impl Quotas {
    /// Quotas with these defaults.
    pub fn new(defaults: QuotaValues) -> Arc<Self> {
        let q = Quotas {
            defaults: [AtomicU32::new(0), AtomicU32::new(0), AtomicU32::new(0)],
            origin: Instant::now(),
            hasher: DefaultHashBuilder::default(),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            #[cfg(test)]
            advanced: Default::default(),
        };
        q.set_defaults(defaults);
        Arc::new(q)
    }

    /// Change the server defaults (at start, from the configuration).
    pub fn set_defaults(&self, v: QuotaValues) {
        for quota in QuotaKind::ALL {
            self.defaults[quota.index()].store(v.get(quota), Ordering::Relaxed);
        }
    }

    /// The server defaults.
    pub fn defaults(&self) -> QuotaValues {
        let d = |q: QuotaKind| self.defaults[q.index()].load(Ordering::Relaxed);
        QuotaValues {
            requests_per_second: d(QuotaKind::RequestsPerSecond),
            streams: d(QuotaKind::Streams),
            sql_queries: d(QuotaKind::SqlQueries),
        }
    }

    /// The limit of `quota` for a caller with `overrides`.
    pub fn limit(&self, quota: QuotaKind, overrides: &QuotaOverrides) -> u32 {
        overrides
            .get(quota)
            .unwrap_or_else(|| self.defaults[quota.index()].load(Ordering::Relaxed))
    }

    /// The limits in force for a caller with `overrides`.
    pub fn effective(&self, overrides: &QuotaOverrides) -> QuotaValues {
        QuotaValues {
            requests_per_second: self.limit(QuotaKind::RequestsPerSecond, overrides),
            streams: self.limit(QuotaKind::Streams, overrides),
            sql_queries: self.limit(QuotaKind::SqlQueries, overrides),
        }
    }

    fn now(&self) -> u64 {
        let now = self.origin.elapsed().as_nanos() as u64;
        #[cfg(test)]
        let now = now + self.advanced.load(Ordering::Relaxed);
        now
    }

    fn shard(&self, key: &str) -> &Mutex<Shard> {
        &self.shards[self.hasher.hash_one(key) as usize % self.shards.len()]
    }

    /// Count one request of `key` against its requests-per-second limit; refused when its
    /// bucket is empty. Free when the limit is 0 (none).
    pub fn request(&self, key: &str, overrides: &QuotaOverrides) -> Result<(), QuotaExceeded> {
        let rate = self.limit(QuotaKind::RequestsPerSecond, overrides);
        if rate == 0 {
            return Ok(());
        }
        let now = self.now();
        let mut shard = self.shard(key).lock();
        let e = shard.entry(key, now);
        let rate_f = f64::from(rate);
        let elapsed = now.saturating_sub(e.at) as f64 / 1e9;
        e.tokens = (e.tokens + elapsed * rate_f).min(rate_f);
        e.at = now;
        if e.tokens >= 1.0 {
            e.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - e.tokens) / rate_f;
        Err(QuotaExceeded {
            quota: QuotaKind::RequestsPerSecond,
            limit: rate,
            retry_after: (wait.ceil() as u64).max(1),
        })
    }

    /// A permit for one more stream of `key`, or a refusal when it holds as many as its
    /// limit allows.
    pub fn stream(
        self: &Arc<Self>,
        key: &str,
        overrides: &QuotaOverrides,
    ) -> Result<QuotaPermit, QuotaExceeded> {
        self.acquire(QuotaKind::Streams, key, overrides)
    }

    /// A permit for one more SQL query of `key`, or a refusal when it runs as many as its
    /// limit allows.
    pub fn sql(
        self: &Arc<Self>,
        key: &str,
        overrides: &QuotaOverrides,
    ) -> Result<QuotaPermit, QuotaExceeded> {
        self.acquire(QuotaKind::SqlQueries, key, overrides)
    }

    fn acquire(
        self: &Arc<Self>,
        quota: QuotaKind,
        key: &str,
        overrides: &QuotaOverrides,
    ) -> Result<QuotaPermit, QuotaExceeded> {
        let limit = self.limit(quota, overrides);
        if limit == 0 {
            return Ok(QuotaPermit { held: None });
        }
        let now = self.now();
        let mut shard = self.shard(key).lock();
        let n = shard.entry(key, now).count(quota);
        if *n >= limit {
            return Err(QuotaExceeded {
                quota,
                limit,
                retry_after: 1,
            });
        }
        *n += 1;
        drop(shard);
        Ok(QuotaPermit {
            held: Some((Arc::clone(self), key.into(), quota)),
        })
    }

    fn release(&self, key: &str, quota: QuotaKind) {
        let now = self.now();
        let mut shard = self.shard(key).lock();
        if let Some(e) = shard.entries.get_mut(key) {
            let n = e.count(quota);
            *n = n.saturating_sub(1);
            if e.idle(now) {
                shard.entries.remove(key);
            }
        }
    }

    /// Tokens with quota state kept now (for tests and health pages).
    pub fn tracked(&self) -> usize {
        self.shards.iter().map(|s| s.lock().entries.len()).sum()
    }

    /// Streams and SQL queries `key` holds now.
    pub fn held(&self, key: &str) -> (u32, u32) {
        self.shard(key)
            .lock()
            .entries
            .get(key)
            .map_or((0, 0), |e| (e.streams, e.sql))
    }
}

/// One stream or SQL query of a token, counted until dropped.
#[derive(Debug)]
pub struct QuotaPermit {
    held: Option<(Arc<Quotas>, Box<str>, QuotaKind)>,
}

impl QuotaPermit {
    /// A permit that counts nothing (e.g. for callers not subject to quotas).
    pub fn none() -> Self {
        QuotaPermit { held: None }
    }
}

impl Drop for QuotaPermit {
    fn drop(&mut self) {
        if let Some((quotas, key, quota)) = self.held.take() {
            quotas.release(&key, quota);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rps: u32, streams: u32, sql: u32) -> QuotaValues {
        QuotaValues {
            requests_per_second: rps,
            streams,
            sql_queries: sql,
        }
    }

    const NONE: QuotaOverrides = QuotaOverrides {
        requests_per_second: None,
        streams: None,
        sql_queries: None,
    };

    /// Let `by` pass on the clock of `q`, without sleeping.
    fn age(q: &Quotas, by: Duration) {
        q.advanced
            .fetch_add(by.as_nanos() as u64, Ordering::Relaxed);
    }

    #[test]
    fn the_bucket_allows_a_burst_of_one_second_and_refills() {
        let q = Quotas::new(limits(5, 0, 0));
        // The first second's worth passes at once (no refill in between to speak of).
        for _ in 0..5 {
            q.request("a", &NONE).unwrap();
        }
        let refused = q.request("a", &NONE).unwrap_err();
        assert_eq!(refused.quota, QuotaKind::RequestsPerSecond);
        assert_eq!(refused.limit, 5);
        assert_eq!(refused.retry_after, 1);
        assert!(
            refused.to_string().contains("requests_per_second")
                && refused.to_string().contains("5 requests per second"),
            "{refused}"
        );
        // Another token has a bucket of its own.
        q.request("b", &NONE).unwrap();
        // 0.4 s later two requests are back, not more.
        age(&q, Duration::from_millis(400));
        q.request("a", &NONE).unwrap();
        q.request("a", &NONE).unwrap();
        assert!(q.request("a", &NONE).is_err());
        // A long pause refills the bucket to its burst only.
        age(&q, Duration::from_secs(60));
        for _ in 0..5 {
            q.request("a", &NONE).unwrap();
        }
        assert!(q.request("a", &NONE).is_err());
    }

    #[test]
    fn overrides_replace_the_defaults_and_zero_is_no_limit() {
        let q = Quotas::new(limits(0, 2, 1));
        for _ in 0..1000 {
            q.request("a", &NONE).unwrap();
        }
        assert_eq!(q.tracked(), 0, "an unlimited rate keeps no state");
        let two = QuotaOverrides {
            requests_per_second: Some(2),
            ..NONE
        };
        q.request("a", &two).unwrap();
        q.request("a", &two).unwrap();
        assert_eq!(q.request("a", &two).unwrap_err().limit, 2);
        assert_eq!(
            q.effective(&two),
            limits(2, 2, 1),
            "unset overrides are the defaults"
        );
        q.set_defaults(limits(7, 3, 3));
        assert_eq!(q.defaults(), limits(7, 3, 3));
        assert_eq!(q.effective(&two), limits(2, 3, 3));
    }

    #[test]
    fn permits_are_counted_per_token_and_released_on_drop() {
        let q = Quotas::new(limits(0, 2, 1));
        let a1 = q.stream("a", &NONE).unwrap();
        let _a2 = q.stream("a", &NONE).unwrap();
        let refused = q.stream("a", &NONE).unwrap_err();
        assert_eq!(refused.quota, QuotaKind::Streams);
        assert_eq!(refused.retry_after, 1);
        assert!(
            refused.to_string().contains("2 result streams"),
            "{refused}"
        );
        let _b = q.stream("b", &NONE).unwrap();
        let sql = q.sql("a", &NONE).unwrap();
        assert_eq!(q.sql("a", &NONE).unwrap_err().quota, QuotaKind::SqlQueries);
        assert_eq!(q.held("a"), (2, 1));
        drop(a1);
        drop(sql);
        assert_eq!(q.held("a"), (1, 0));
        let more = QuotaOverrides {
            streams: Some(3),
            ..NONE
        };
        let _a3 = q.stream("a", &NONE).unwrap();
        let _a4 = q.stream("a", &more).unwrap();
        assert!(q.stream("a", &more).is_err());
    }

    #[test]
    fn idle_entries_are_dropped() {
        let q = Quotas::new(limits(10, 4, 4));
        let permit = q.stream("held", &NONE).unwrap();
        drop(q.sql("released", &NONE).unwrap());
        assert_eq!(q.tracked(), 1, "a released permit's entry goes at once");
        for i in 0..2000 {
            q.request(&format!("t{i}"), &NONE).unwrap();
        }
        // Entries that used their bucket within the last second are kept...
        assert!(q.tracked() > 1000);
        // ...and once their buckets are full again, the next sweep (due after SWEEP_EVERY)
        // drops them.
        age(&q, SWEEP_EVERY + Duration::from_secs(1));
        for i in 0..SHARDS * 64 {
            q.request(&format!("new{i}"), &NONE).unwrap();
        }
        assert!(
            q.tracked() <= SHARDS * 64 + 1,
            "idle entries were swept: {} left",
            q.tracked()
        );
        assert_eq!(q.held("held"), (1, 0), "an entry holding a permit stays");
        drop(permit);
        assert_eq!(q.held("held"), (0, 0));
    }

    #[test]
    fn the_memory_stays_bounded_under_many_tokens() {
        let q = Quotas::new(limits(1, 1, 1));
        for round in 0..50u64 {
            for i in 0..1000 {
                q.request(&format!("r{round}-{i}"), &NONE).unwrap();
            }
            age(&q, Duration::from_secs(2));
        }
        // 50 000 tokens seen; the idle ones go when a shard has grown to its sweep size.
        assert!(
            q.tracked() <= SHARDS * MIN_SWEEP_LEN + 1000,
            "{} entries kept",
            q.tracked()
        );
    }

    #[test]
    fn overrides_are_validated() {
        assert!(NONE.validate().is_ok());
        let bad = QuotaOverrides {
            streams: Some(0),
            ..NONE
        };
        assert_eq!(bad.validate().unwrap_err().0, QuotaKind::Streams);
        let bad = QuotaOverrides {
            requests_per_second: Some(MAX_REQUESTS_PER_SECOND + 1),
            ..NONE
        };
        assert_eq!(bad.validate().unwrap_err().0, QuotaKind::RequestsPerSecond);
    }

    #[test]
    fn the_key_is_the_token() {
        let p = Principal {
            role: crate::Role::Consumer,
            organisation: Some("BANK".into()),
            system: Some("3".into()),
            subject: None,
            user: None,
            token_id: Some("12".into()),
        };
        assert_eq!(key_of(&p), "12");
        let p = Principal {
            token_id: None,
            ..p
        };
        assert_eq!(key_of(&p), "consumer BANK/3");
    }
}
