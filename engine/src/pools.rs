//! Where the engine's CPU work runs, so that bulk work cannot starve point lookups.
//!
//! A server has three kinds of work that compete for its cores:
//!
//! - **lookups**: a key read from the index, a few rows masked and encoded, the access record
//!   committed — microseconds of CPU each, and the latency that DAGR promises;
//! - **bulk streams**: DataFusion planning and execution, whole-dataset `DoGet`s, change
//!   feeds — CPU bound for as long as the client keeps reading;
//! - **loads**: decoding, validating, indexing and persisting a snapshot — seconds of CPU in
//!   large blocking jobs.
//!
//! [`Pools`] keeps the last two off the serving runtime. It owns a separate tokio
//! multi-thread runtime (threads named `dagr-bulk`) with a bounded number of workers on
//! which DataFusion plans and executes and bulk streams are produced ([`Pools::run_bulk`],
//! [`Pools::bulk_stream`]); a bulk stream reaches the serving runtime through a bounded
//! channel, so a client that reads slowly stops production (the producer waits on the
//! channel; it neither buffers without bound nor spins). Blocking load work runs on that
//! runtime's blocking threads, at most `load_threads` jobs at once ([`Pools::load`]).
//!
//! Every thread of the bulk runtime lowers its own scheduling priority (`nice`, Linux
//! only): the kernel then gives the serving runtime's threads the CPU whenever they want it,
//! and bulk work the rest. A bounded thread count alone cannot do that on a small machine —
//! with two cores, one bulk thread and one load thread already fill both.
//!
//! [`Pools::shared`] (the default of [`crate::EngineConfig`]) owns no runtime: everything
//! runs on the caller's runtime as before, which is what tests and embedded uses want.

use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;

use futures::stream::{BoxStream, Stream, StreamExt};
use tokio::runtime::{Handle, Runtime};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};

/// Largest accepted thread count of either pool.
pub const MAX_THREADS: usize = 1024;

/// Largest accepted `nice` increment (Linux's lowest priority is 19).
pub const MAX_NICE: i32 = 19;

/// The default `nice` increment of bulk and load threads: a weight about a tenth of the
/// serving threads' under Linux's fair scheduler.
pub const DEFAULT_NICE: i32 = 10;

/// Items a bulk stream may have produced ahead of its consumer. Each is a record batch or
/// a Flight message (a few MiB at most), so two keep the pipe full without holding much.
pub const BULK_STREAM_AHEAD: usize = 2;

/// Pools that cannot start: a size out of bounds, or no threads to be had.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PoolsError(String);

/// How the pools are sized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolsConfig {
    /// Worker threads of the bulk runtime (DataFusion, bulk streams).
    pub bulk_threads: usize,
    /// Blocking load jobs (decode, validate, index, encode for the store) that run at once.
    pub load_threads: usize,
    /// `nice` increment of every bulk and load thread (0 keeps the process's priority).
    pub nice: i32,
    /// Stack of every bulk thread: SQL is parsed and planned there, recursively.
    pub stack_bytes: usize,
}

impl PoolsConfig {
    /// The defaults for a machine with `cores` cores: all cores but one for bulk work (at
    /// least one), half of them for loads (at least one), both at [`DEFAULT_NICE`]. Bulk
    /// threads may take nearly every core because their lower priority hands a core back
    /// to the serving runtime as soon as it has work; the count only bounds how many cores
    /// bulk work can hold when nothing else runs.
    pub fn for_cores(cores: usize) -> Self {
        Self {
            bulk_threads: cores.saturating_sub(1).max(1),
            load_threads: (cores / 2).max(1),
            nice: DEFAULT_NICE,
            stack_bytes: 16 << 20,
        }
    }

    /// [`Self::for_cores`] of this machine.
    pub fn for_this_machine() -> Self {
        Self::for_cores(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    /// Check the bounds: 1..=[`MAX_THREADS`] threads, nice 0..=[`MAX_NICE`], a stack of at
    /// least 1 MiB.
    pub fn validated(self) -> std::result::Result<Self, PoolsError> {
        let bad = |what: String| Err(PoolsError(what));
        if !(1..=MAX_THREADS).contains(&self.bulk_threads) {
            return bad(format!(
                "bulk threads must be 1 to {MAX_THREADS}; got {}",
                self.bulk_threads
            ));
        }
        if !(1..=MAX_THREADS).contains(&self.load_threads) {
            return bad(format!(
                "load threads must be 1 to {MAX_THREADS}; got {}",
                self.load_threads
            ));
        }
        if !(0..=MAX_NICE).contains(&self.nice) {
            return bad(format!(
                "the nice increment must be 0 to {MAX_NICE}; got {}",
                self.nice
            ));
        }
        if self.stack_bytes < (1 << 20) {
            return bad(format!(
                "the bulk threads' stack must be at least 1 MiB; got {} bytes",
                self.stack_bytes
            ));
        }
        Ok(self)
    }
}

thread_local! {
    /// Whether this thread belongs to a bulk runtime.
    static ON_BULK: Cell<bool> = const { Cell::new(false) };
}

/// A runtime shut down without waiting when the last handle goes (dropping a runtime
/// inside another runtime's task would panic).
struct OwnedRuntime(Option<Runtime>);

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

struct Inner {
    /// The bulk runtime; `None` for [`Pools::shared`].
    bulk: Option<OwnedRuntime>,
    /// Permits of the load jobs.
    loads: Arc<Semaphore>,
    config: PoolsConfig,
}

/// The engine's thread pools (see the [module documentation](self)). Cheap to clone.
#[derive(Clone)]
pub struct Pools {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Pools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pools")
            .field("separate", &self.is_separate())
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Default for Pools {
    fn default() -> Self {
        Self::shared()
    }
}

impl Pools {
    /// Start the bulk runtime sized by `config` (validated first).
    pub fn start(config: PoolsConfig) -> std::result::Result<Self, PoolsError> {
        let config = config.validated()?;
        let nice = config.nice;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .worker_threads(config.bulk_threads)
            // Load jobs, plus the blocking calls DataFusion and the object store make.
            .max_blocking_threads(config.load_threads + config.bulk_threads + 2)
            .thread_name("dagr-bulk")
            .thread_stack_size(config.stack_bytes)
            .on_thread_start(move || {
                ON_BULK.with(|b| b.set(true));
                lower_priority(nice);
            })
            .build()
            .map_err(|e| PoolsError(format!("cannot start the bulk runtime: {e}")))?;
        tracing::info!(
            bulk_threads = config.bulk_threads,
            load_threads = config.load_threads,
            nice,
            "bulk runtime started"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                bulk: Some(OwnedRuntime(Some(runtime))),
                loads: Arc::new(Semaphore::new(config.load_threads)),
                config,
            }),
        })
    }

    /// Pools that own no runtime: bulk work runs on the caller's runtime, load jobs on its
    /// blocking pool (still at most [`PoolsConfig::load_threads`] at once).
    pub fn shared() -> Self {
        let config = PoolsConfig {
            nice: 0,
            ..PoolsConfig::for_this_machine()
        };
        Self {
            inner: Arc::new(Inner {
                bulk: None,
                loads: Arc::new(Semaphore::new(config.load_threads)),
                config,
            }),
        }
    }

    /// Whether bulk work has a runtime of its own.
    pub fn is_separate(&self) -> bool {
        self.inner.bulk.is_some()
    }

    /// The sizes in force.
    pub fn config(&self) -> &PoolsConfig {
        &self.inner.config
    }

    /// Whether the calling thread is a thread of a bulk runtime.
    pub fn on_bulk_thread() -> bool {
        ON_BULK.with(Cell::get)
    }

    /// The runtime bulk work runs on: the bulk runtime, or, for shared pools, the current
    /// runtime (`None` outside any runtime).
    pub fn bulk_handle(&self) -> Option<Handle> {
        match &self.inner.bulk {
            Some(OwnedRuntime(Some(rt))) => Some(rt.handle().clone()),
            _ => Handle::try_current().ok(),
        }
    }

    /// The bulk runtime's handle when work must move there: `None` for shared pools and when
    /// the caller already runs on a bulk thread.
    fn hop(&self) -> Option<Handle> {
        match &self.inner.bulk {
            Some(OwnedRuntime(Some(rt))) if !Self::on_bulk_thread() => Some(rt.handle().clone()),
            _ => None,
        }
    }

    /// Run `future` to completion on the bulk runtime and return its output (in place for
    /// shared pools, or when already there). Dropping the returned future aborts the task.
    pub async fn run_bulk<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Result<T> {
        match self.hop() {
            None => Ok(future.await),
            Some(handle) => {
                let mut task = AbortOnDrop(handle.spawn(future));
                (&mut task.0)
                    .await
                    .map_err(|e| task_failed("a bulk task", e))
            }
        }
    }

    /// Produce `stream` on the bulk runtime and hand its items over through a channel of
    /// `ahead` places (at least 1): when the consumer stops reading, the producer waits on
    /// the channel. Dropping the returned stream stops the producer. If the producer panics,
    /// the stream ends with `failed(reason)`. Shared pools, or a caller already on a bulk
    /// thread, get `stream` back unchanged.
    pub fn bulk_stream<T: Send + 'static>(
        &self,
        stream: impl Stream<Item = T> + Send + 'static,
        ahead: usize,
        failed: fn(String) -> T,
    ) -> BoxStream<'static, T> {
        let Some(handle) = self.hop() else {
            return stream.boxed();
        };
        /// The producer starts at the first read, not before (a result planned only for its
        /// schema is never run).
        enum State<S, T> {
            Idle(Handle, S),
            Running(mpsc::Receiver<T>, AbortOnDrop<()>),
            Done,
        }
        let ahead = ahead.max(1);
        let state = State::Idle(handle, stream);
        futures::stream::unfold(state, move |state| async move {
            let (mut rx, mut task) = match state {
                State::Done => return None,
                State::Running(rx, task) => (rx, task),
                State::Idle(handle, stream) => {
                    let (tx, rx) = mpsc::channel(ahead);
                    let producer = handle.spawn(async move {
                        let mut stream = std::pin::pin!(stream);
                        while let Some(item) = stream.next().await {
                            if tx.send(item).await.is_err() {
                                // The consumer is gone.
                                return;
                            }
                        }
                    });
                    (rx, AbortOnDrop(producer))
                }
            };
            if let Some(item) = rx.recv().await {
                return Some((item, State::Running(rx, task)));
            }
            // The channel closed: the producer ended, or it panicked.
            match (&mut task.0).await {
                Ok(()) => None,
                Err(e) => {
                    let reason = task_failed("the producer of a bulk stream", e).to_string();
                    Some((failed(reason), State::Done))
                }
            }
        })
        .boxed()
    }

    /// Run a blocking load job (decode, validate, index, encode) once one of the
    /// [`PoolsConfig::load_threads`] permits is free, on the bulk runtime's blocking threads
    /// (the caller's for shared pools). Waiting for a permit is cancelled with the caller; a
    /// job that started runs to its end.
    pub async fn load<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let permit = Arc::clone(&self.inner.loads)
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal("the load pool is closed".into()))?;
        let job = move || {
            let out = job();
            drop(permit);
            out
        };
        self.blocking(job).await
    }

    /// Run a blocking job of bulk work (no load permit) on the bulk runtime's blocking
    /// threads, or the caller's for shared pools.
    pub async fn blocking<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let task = match &self.inner.bulk {
            Some(OwnedRuntime(Some(rt))) => rt.spawn_blocking(job),
            _ => tokio::task::spawn_blocking(job),
        };
        task.await.map_err(|e| task_failed("a blocking job", e))
    }
}

/// A task aborted when its handle is dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn task_failed(what: &str, e: tokio::task::JoinError) -> Error {
    if e.is_panic() {
        let reason = panic_message(e.into_panic().as_ref());
        tracing::error!(reason, "{what} panicked");
        Error::Internal(format!("{what} failed: {reason}"))
    } else {
        Error::Internal(format!("{what} was cancelled"))
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned())
}

/// Lower the calling thread's scheduling priority by `nice` (Linux: priority is per thread).
/// A failure is logged once and otherwise ignored: the pools still bound the thread count.
/// Also for other background threads that must not take cores from lookups (the audit log's
/// indexer and checkpointer).
pub fn lower_priority(nice: i32) {
    if nice == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let tid = rustix::thread::gettid();
        let now = rustix::process::getpriority_process(Some(tid)).unwrap_or(0);
        if let Err(e) = rustix::process::setpriority_process(Some(tid), now.saturating_add(nice)) {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!(error = %e, nice, "cannot lower the priority of bulk threads");
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn separate(threads: usize) -> Pools {
        Pools::start(PoolsConfig {
            bulk_threads: threads,
            load_threads: 1,
            nice: 5,
            stack_bytes: 2 << 20,
        })
        .unwrap()
    }

    #[test]
    fn defaults_leave_a_core_and_validate() {
        let two = PoolsConfig::for_cores(2);
        assert_eq!((two.bulk_threads, two.load_threads), (1, 1));
        let one = PoolsConfig::for_cores(1);
        assert_eq!((one.bulk_threads, one.load_threads), (1, 1));
        let eight = PoolsConfig::for_cores(8);
        assert_eq!((eight.bulk_threads, eight.load_threads), (7, 4));
        assert!(eight.validated().is_ok());
        let err = PoolsConfig {
            bulk_threads: 0,
            ..PoolsConfig::for_cores(2)
        }
        .validated()
        .unwrap_err();
        assert!(
            err.to_string().contains("bulk threads must be 1 to"),
            "{err}"
        );
        let err = PoolsConfig {
            nice: 20,
            ..PoolsConfig::for_cores(2)
        }
        .validated()
        .unwrap_err();
        assert!(err.to_string().contains("nice increment"), "{err}");
    }

    #[tokio::test]
    async fn bulk_work_runs_on_bulk_threads_and_shared_in_place() {
        let pools = separate(1);
        assert!(!Pools::on_bulk_thread());
        assert!(
            pools
                .run_bulk(async { Pools::on_bulk_thread() })
                .await
                .unwrap()
        );
        let name = pools
            .blocking(|| std::thread::current().name().map(str::to_owned))
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("dagr-bulk"));
        let shared = Pools::shared();
        assert!(
            !shared
                .run_bulk(async { Pools::on_bulk_thread() })
                .await
                .unwrap()
        );
        assert_eq!(shared.load(|| 7).await.unwrap(), 7);
        drop(pools);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn bulk_threads_run_at_a_lower_priority() {
        let pools = separate(1);
        let mine = rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let theirs = pools
            .run_bulk(async {
                rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap()
            })
            .await
            .unwrap();
        assert_eq!(theirs, (mine + 5).min(19));
    }

    #[tokio::test]
    async fn a_bulk_stream_delivers_everything_and_stops_with_its_reader() {
        let pools = separate(1);
        let items: Vec<u32> = pools
            .bulk_stream(futures::stream::iter(0..100u32), 2, |_| u32::MAX)
            .collect()
            .await;
        assert_eq!(items, (0..100).collect::<Vec<_>>());

        // An endless producer stops when its reader is dropped: the counter stops moving.
        let produced = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = Arc::clone(&produced);
        let endless = futures::stream::repeat(()).map(move |()| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        let mut s = pools.bulk_stream(endless, 2, |_| ());
        for _ in 0..10 {
            s.next().await.unwrap();
        }
        // Unread, the producer is at most a channel's worth (and one in hand) ahead.
        tokio::task::yield_now().await;
        let ahead = produced.load(std::sync::atomic::Ordering::SeqCst);
        assert!(ahead <= 10 + 2 + 1, "{ahead}");
        drop(s);
        // Once aborted, the count is final.
        pools.run_bulk(async {}).await.unwrap();
        let after = produced.load(std::sync::atomic::Ordering::SeqCst);
        pools.run_bulk(async {}).await.unwrap();
        assert_eq!(produced.load(std::sync::atomic::Ordering::SeqCst), after);
    }

    #[tokio::test]
    async fn a_panicking_producer_ends_its_stream_with_an_error() {
        let pools = separate(1);
        let stream = futures::stream::iter(0..3u32).map(|i| {
            assert!(i < 2, "the producer broke");
            Ok::<u32, String>(i)
        });
        let items: Vec<_> = pools.bulk_stream(stream, 2, Err).collect().await;
        assert_eq!(items[..2], [Ok(0), Ok(1)]);
        let last = items[2].as_ref().unwrap_err();
        assert!(last.contains("the producer broke"), "{last}");
        assert_eq!(items.len(), 3);
    }
}
