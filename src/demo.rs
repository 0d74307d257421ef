//! Seeding the demo into an empty data directory.

use std::time::Instant;

use dagr_engine::Engine;
use dagr_engine::demo::{DemoConfig, generate};
use tracing::info;

/// Generate the four demo registers and load each as version 1.
///
/// Idempotent per dataset: a dataset that already exists is left alone.
pub async fn seed(engine: &Engine, persons: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    let cfg = DemoConfig {
        persons,
        ..DemoConfig::default()
    };
    info!(persons, "seeding the demo registers");
    let datasets = tokio::task::spawn_blocking(move || generate(&cfg)).await??;
    for d in datasets {
        let name = d.definition.name.clone();
        if engine.dataset_names().contains(&name) {
            continue;
        }
        engine.create_dataset(d.definition).await?;
        engine.load_batches(&name, d.batches).await?;
    }
    info!(ms = started.elapsed().as_millis() as u64, "demo seeded");
    Ok(())
}
