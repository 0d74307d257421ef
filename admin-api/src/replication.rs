//! Keeping a replica current with what other nodes commit ([`dagr_engine::ledger`]).
//!
//! A task `LISTEN`s on the ledger's channel and, on each notification, applies what changed
//! ([`Engine::catch_up`]); it also catches up every [`POLL`] whatever it heard, so a lost
//! notification (the listening connection broke and reconnected) delays a version by at most
//! that long. Agreements and tokens follow the governance policy's own refresher
//! ([`crate::spawn_refresher`], every 250 ms).
//!
//! [`ReplicaStatus`] tells readiness whether this node is caught up: it is not until the
//! first catch-up after start succeeds, nor while the ledger cannot be read (or has not been
//! for [`STALE_AFTER`]). A dataset that cannot be brought to the ledger's version (its files
//! unreadable) does not make the node unready — every node would fail alike, and the others
//! datasets still serve — but is listed by readiness and counted in `/metrics`, and retried
//! every round.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dagr_engine::Engine;
use dagr_engine::task::SpawnedTask;
use parking_lot::Mutex;
use sqlx::postgres::PgListener;

use crate::store::ledger::CHANNEL;

/// How often a replica reads the ledger whether or not it heard a notification.
pub const POLL: Duration = Duration::from_millis(1000);

/// A replica that has not read the ledger for this long is not ready.
pub const STALE_AFTER: Duration = Duration::from_secs(5);

/// How long to wait before listening again after the listening connection failed.
const RELISTEN: Duration = Duration::from_secs(2);

/// This process's replica status, once [`install`]ed (replicas only).
static STATUS: std::sync::OnceLock<Arc<ReplicaStatus>> = std::sync::OnceLock::new();

/// Make `status` the one readiness and `/metrics` report (once per process).
pub fn install(status: Arc<ReplicaStatus>) {
    let _ = STATUS.set(status);
}

/// The status [`install`]ed, if this process is a replica.
pub fn status() -> Option<&'static Arc<ReplicaStatus>> {
    STATUS.get()
}

/// Whether this node is caught up with the ledger.
#[derive(Debug, Default)]
pub struct ReplicaStatus {
    inner: Mutex<StatusInner>,
}

#[derive(Debug, Default)]
struct StatusInner {
    /// When a round last read the ledger (or finished applying what it read).
    last_ok: Option<Instant>,
    /// Why the last round failed (the ledger unreadable).
    problem: Option<String>,
    /// Datasets the last round could not bring to the ledger's version, with why.
    lagging: std::collections::BTreeMap<String, String>,
    /// Whether a round is applying what it read (reading a big version may take longer than
    /// STALE_AFTER; the node serves the versions it holds meanwhile and stays ready).
    applying: bool,
}

impl ReplicaStatus {
    /// `Ok` when caught up; else why not.
    pub fn caught_up(&self) -> Result<(), String> {
        let s = self.inner.lock();
        match (s.last_ok, &s.problem) {
            (_, Some(p)) => Err(p.clone()),
            (None, None) => Err("has not caught up with the ledger yet".into()),
            (Some(t), None) if t.elapsed() > STALE_AFTER && !s.applying => Err(format!(
                "has not read the ledger for {} s",
                t.elapsed().as_secs()
            )),
            _ => Ok(()),
        }
    }

    /// Datasets this node could not bring to the ledger's version, with why (it serves the
    /// version it holds).
    pub fn lagging(&self) -> std::collections::BTreeMap<String, String> {
        self.inner.lock().lagging.clone()
    }

    /// Seconds since the last successful round (0 before the first).
    pub fn staleness(&self) -> f64 {
        self.inner
            .lock()
            .last_ok
            .map_or(0.0, |t| t.elapsed().as_secs_f64())
    }
}

/// One catch-up round: apply, count, and note the outcome in `status`.
pub async fn catch_up_once(engine: &Engine, status: &ReplicaStatus) {
    let metrics = dagr_engine::metrics::metrics();
    let entries = match engine.ledger_entries().await {
        Ok(entries) => entries,
        Err(e) => {
            let mut s = status.inner.lock();
            if s.problem.is_none() {
                tracing::error!(error = %e, "cannot read the ledger of replicas; serving the versions held");
            }
            s.problem = Some(format!("cannot read the ledger: {e}"));
            return;
        }
    };
    // Fresh as soon as the ledger was read: applying a big version may take longer than
    // STALE_AFTER, and every node but the committer does it at once; they serve the version
    // they hold meanwhile.
    {
        let mut s = status.inner.lock();
        if s.problem.take().is_some() {
            tracing::info!("reading the ledger again");
        }
        s.last_ok = Some(Instant::now());
        s.applying = true;
    }
    // Cleared however the round ends (a panic or a cancelled round included), so that a
    // round that never finishes cannot keep the node ready.
    struct Applying<'a>(&'a ReplicaStatus);
    impl Drop for Applying<'_> {
        fn drop(&mut self) {
            self.0.inner.lock().applying = false;
        }
    }
    let applying = Applying(status);
    let report = engine.apply_entries(entries).await;
    drop(applying);
    for (_, _, lag) in &report.applied {
        metrics.replication_lag.observe(lag.as_secs_f64());
    }
    metrics.replication_failed.set(report.failed.len() as i64);
    let mut s = status.inner.lock();
    s.last_ok = Some(Instant::now());
    s.lagging = report.failed.into_iter().collect();
}

/// Keep `engine` current with the ledger in the PostgreSQL database at `url` until the
/// returned task is dropped. The caller has caught up once already (at open).
pub fn spawn(url: String, engine: Arc<Engine>, status: Arc<ReplicaStatus>) -> SpawnedTask<()> {
    SpawnedTask::spawn(async move {
        // The listener runs in a task of its own, never cancelled mid-message; it wakes the
        // catch-up loop, which also runs every POLL whatever it heard.
        let wake = Arc::new(tokio::sync::Notify::new());
        let _listener = SpawnedTask::spawn(keep_listening(url, Arc::clone(&wake)));
        loop {
            let _ = tokio::time::timeout(POLL, wake.notified()).await;
            catch_up_once(&engine, &status).await;
        }
    })
}

/// Listen for commits of other nodes, waking `wake` on each (and on every reconnection,
/// after which notifications may have been lost).
async fn keep_listening(url: String, wake: Arc<tokio::sync::Notify>) {
    let mut warned = false;
    loop {
        match listen(&url).await {
            Ok(mut l) => {
                if std::mem::take(&mut warned) {
                    tracing::info!("listening for commits of other nodes again");
                }
                wake.notify_one();
                loop {
                    match l.try_recv().await {
                        // A notification, or (`None`) a broken connection that the next
                        // call reconnects, after which notifications may have been lost.
                        Ok(_) => wake.notify_one(),
                        Err(e) => {
                            tracing::warn!(error = %e, "lost the connection listening for commits of other nodes; polling every {} ms", POLL.as_millis());
                            warned = true;
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                if !warned {
                    tracing::warn!(error = %e, "cannot listen for commits of other nodes; polling every {} ms", POLL.as_millis());
                    warned = true;
                }
            }
        }
        tokio::time::sleep(RELISTEN).await;
    }
}

async fn listen(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut l = PgListener::connect(url).await?;
    l.listen(CHANNEL).await?;
    Ok(l)
}

/// Delete unreferenced snapshot files older than `grace`, every `every`, until the returned
/// task is dropped ([`Engine::collect_garbage`]).
pub fn spawn_gc(engine: Arc<Engine>, grace: Duration, every: Duration) -> SpawnedTask<()> {
    SpawnedTask::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = engine.collect_garbage(grace).await {
                tracing::warn!(error = %e, "snapshot garbage collection failed; retried later");
            }
        }
    })
}
