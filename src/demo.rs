//! Seeding the demo into an empty data directory.
//!
//! Seeding is resumable: a marker file is written only when all five registers are loaded
//! and the demo governance (organisations, systems, tokens, agreements) is in place,
//! and a start that finds no marker (a seeding killed half-way) finishes the job, loading the
//! registers that have no snapshot yet and leaving committed ones alone.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use dagr_engine::Engine;
use dagr_engine::demo::{DemoConfig, definitions, generate};
use tracing::info;

/// The marker written when the demo is fully seeded.
pub fn marker(data_dir: &Path) -> PathBuf {
    data_dir.join("demo-seeded")
}

/// Whether a start should (finish) seeding the demo: no marker, and no dataset other than
/// the demo registers (a data directory in real use is never touched).
pub fn should_seed(engine: &Engine, data_dir: &Path) -> bool {
    if marker(data_dir).exists() {
        return false;
    }
    let demo: Vec<String> = definitions().into_iter().map(|d| d.name).collect();
    engine.dataset_names().iter().all(|n| demo.contains(n))
}

/// Generate the five demo registers and load each one that has no snapshot yet as its next
/// version. The caller seeds the demo governance next and then calls [`finish`].
pub async fn seed(engine: &Engine, data_dir: &Path, persons: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    // A seeding that was interrupted resumes with the size it started with, so that the
    // registers stay consistent with each other.
    let pending = data_dir.join("demo-seeding");
    let persons = match std::fs::read_to_string(&pending) {
        Ok(text) => text
            .trim()
            .strip_prefix("persons=")
            .and_then(|v| v.parse().ok())
            .unwrap_or(persons),
        Err(_) => {
            std::fs::create_dir_all(data_dir)?;
            std::fs::write(&pending, format!("persons={persons}\n"))
                .with_context(|| format!("writing {}", pending.display()))?;
            persons
        }
    };
    let cfg = DemoConfig {
        persons,
        ..DemoConfig::default()
    };
    info!(persons, "seeding the demo registers");
    let datasets = tokio::task::spawn_blocking(move || generate(&cfg)).await??;
    for d in datasets {
        let name = d.definition.name.clone();
        if !engine.dataset_names().contains(&name) {
            engine.create_dataset(d.definition).await?;
        }
        if engine.current_opt(&name)?.is_none() {
            engine.load_batches(&name, d.batches).await?;
        }
    }
    info!(
        ms = started.elapsed().as_millis() as u64,
        "demo registers loaded"
    );
    Ok(())
}

/// Whether a demo seeding is under way (started and not finished).
pub fn pending(data_dir: &Path) -> bool {
    data_dir.join("demo-seeding").exists()
}

/// Mark the demo as fully seeded (registers and governance).
pub fn finish(data_dir: &Path) -> anyhow::Result<()> {
    std::fs::rename(data_dir.join("demo-seeding"), marker(data_dir))
        .with_context(|| format!("writing {}", marker(data_dir).display()))?;
    info!("demo seeded");
    Ok(())
}
