//! Tasks that cannot outlive their owner: [`SpawnedTask`] aborts its task when dropped.
//!
//! `clippy.toml` bans raw `tokio::spawn`; background work (cache refreshers, stream
//! producers) is spawned through this type so that dropping the server stops it.

use std::future::Future;

use tokio::task::JoinHandle;

/// A spawned task that is aborted when this handle is dropped.
#[derive(Debug)]
pub struct SpawnedTask<T> {
    handle: JoinHandle<T>,
}

impl<T: Send + 'static> SpawnedTask<T> {
    /// Spawn `future` on the current runtime.
    #[expect(
        clippy::disallowed_methods,
        reason = "the one place that spawns: the handle aborts on drop"
    )]
    pub fn spawn(future: impl Future<Output = T> + Send + 'static) -> Self {
        Self {
            handle: tokio::spawn(future),
        }
    }

    /// Wait for the task to finish; `Err` if it panicked or was aborted.
    pub async fn join(mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.handle).await
    }
}

impl<T> Drop for SpawnedTask<T> {
    fn drop(&mut self) {
        self.handle.abort();
    }
}
