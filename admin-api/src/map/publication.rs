//! Publication: the granted projects as the dataset `map_projects`, kept current, for anyone
//! to read under agreements like any register. It holds no personal data: the project, its
//! programme and grantor, the company and the amounts.
//!
//! The dataset belongs to the grantor that published first (in the demo, LIAA); its owner
//! decides access requests like any register owner. Every decision that changes the set of
//! granted projects (approve, contract, close, terminate, withdraw after approval)
//! [`schedule`]s a publication: within [`PUBLISH_DELAY`] one snapshot built from the metadata
//! database is published for every decision of that window, off the decisions' path (a
//! snapshot per decision cost as much as the decision itself: `benches/map.rs`). A
//! process-wide lock keeps two publications from committing out of order. A publication that
//! fails is logged and does not undo the decision: the next one (or the next start) catches
//! up.

use std::sync::Arc;

use dagr_engine::arrow::array::{
    ArrayRef, Date32Builder, Decimal128Builder, Int64Builder, RecordBatch, StringBuilder,
};
use dagr_engine::arrow::datatypes::DataType;
use dagr_engine::{Attribute, DatasetDefinition};
use sqlx::Row;

use crate::AppState;
use crate::governance::{GovError, GovResult};

use super::store::db;

/// The dataset's name.
pub const DATASET: &str = "map_projects";

/// Keeps publications of this process in order.
static PUBLISHING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a scheduled publication waits for more decisions to publish with.
pub const PUBLISH_DELAY: std::time::Duration = std::time::Duration::from_millis(300);

/// The scheduled publisher of each engine in the process (tests run several servers in one
/// process): whether a decision came since the last publication began, and the task.
#[derive(Default)]
struct Scheduled {
    dirty: bool,
    running: bool,
    task: Option<dagr_engine::task::SpawnedTask<()>>,
}

static SCHEDULED: parking_lot::Mutex<Option<std::collections::HashMap<usize, Scheduled>>> =
    parking_lot::Mutex::new(None);

fn key(state: &AppState) -> usize {
    Arc::as_ptr(&state.engine) as usize
}

/// Publish within [`PUBLISH_DELAY`], once for every decision scheduled meanwhile.
pub fn schedule(state: &AppState) {
    let mut all = SCHEDULED.lock();
    let entry = all
        .get_or_insert_with(Default::default)
        .entry(key(state))
        .or_default();
    entry.dirty = true;
    if entry.running {
        return;
    }
    entry.running = true;
    let state = state.clone();
    entry.task = Some(dagr_engine::task::SpawnedTask::spawn(async move {
        loop {
            tokio::time::sleep(PUBLISH_DELAY).await;
            {
                let mut all = SCHEDULED.lock();
                let Some(e) = all.as_mut().and_then(|m| m.get_mut(&key(&state))) else {
                    return;
                };
                if !e.dirty {
                    e.running = false;
                    return;
                }
                e.dirty = false;
            }
            publish_or_log(&state).await;
        }
    }));
}

fn definition(owner: &str) -> DatasetDefinition {
    DatasetDefinition {
        name: DATASET.into(),
        owner: owner.into(),
        description: "MAP: projects granted state or programme funding (no personal data)".into(),
        primary_key: vec!["application".into()],
        attributes: vec![
            Attribute::new("application", DataType::Int64, "MAP application id").required(),
            Attribute::new("programme", DataType::Int64, "Programme id").required(),
            Attribute::new("programme_title", DataType::Utf8, "Programme title").required(),
            Attribute::new("grantor", DataType::Utf8, "Grantor organisation (code)").required(),
            Attribute::new(
                "registration_number",
                DataType::Utf8,
                "The beneficiary company's registration number",
            )
            .required(),
            Attribute::new(
                "beneficiary",
                DataType::Utf8,
                "The beneficiary company's name",
            )
            .required(),
            Attribute::new("title", DataType::Utf8, "Project title").required(),
            Attribute::new(
                "granted",
                DataType::Decimal128(18, 2),
                "Amount granted, EUR",
            )
            .required(),
            Attribute::new("aid_regime", DataType::Utf8, "de_minimis or none").required(),
            Attribute::new(
                "status",
                DataType::Utf8,
                "approved, contracted, closed or terminated",
            )
            .required(),
            Attribute::new("decided_on", DataType::Date32, "Date of the grant decision").required(),
        ],
    }
}

/// Publish the current set of granted projects as the next snapshot of `map_projects`
/// (creating the dataset, owned by the first grantor, when it does not exist). Nothing is
/// published while no organisation is a grantor.
pub async fn publish(state: &AppState) -> GovResult<()> {
    let _order = PUBLISHING.lock().await;
    let pool = state.gov.store().pool().clone();
    let owner: Option<String> = sqlx::query_scalar(
        "SELECT organisation FROM map_grantors ORDER BY created_at, organisation LIMIT 1",
    )
    .fetch_optional(&pool)
    .await
    .map_err(db)?;
    let Some(owner) = owner else { return Ok(()) };
    let engine = Arc::clone(&state.engine);
    if !engine.dataset_names().iter().any(|n| n == DATASET) {
        match engine.create_dataset(definition(&owner)).await {
            Ok(_) | Err(dagr_engine::Error::DatasetExists(_)) => {}
            Err(e) => return Err(GovError::Engine(e)),
        }
        state.gov.sync_datasets().await?;
        state.gov.reload().await?;
    }
    let rows = sqlx::query(
        "SELECT a.id, a.programme, g.title AS programme_title, g.organisation, \
         a.registration_number, a.applicant, a.title, a.granted, g.aid_regime, a.status, \
         (SELECT MIN(h.at) FROM map_history h WHERE h.application = a.id \
          AND h.to_status = 'approved') AS decided_at, a.updated_at \
         FROM map_applications a JOIN map_programmes g ON g.id = a.programme \
         WHERE a.status IN ('approved', 'contracted', 'closed', 'terminated') \
         AND a.granted IS NOT NULL ORDER BY a.id",
    )
    .fetch_all(&pool)
    .await
    .map_err(db)?;
    let n = rows.len();
    let mut id = Int64Builder::with_capacity(n);
    let mut programme = Int64Builder::with_capacity(n);
    let mut programme_title = StringBuilder::new();
    let mut grantor = StringBuilder::new();
    let mut rn = StringBuilder::new();
    let mut beneficiary = StringBuilder::new();
    let mut title = StringBuilder::new();
    let mut granted = Decimal128Builder::with_capacity(n);
    let mut regime = StringBuilder::new();
    let mut status = StringBuilder::new();
    let mut decided = Date32Builder::with_capacity(n);
    for r in &rows {
        id.append_value(r.try_get("id").map_err(db)?);
        programme.append_value(r.try_get("programme").map_err(db)?);
        programme_title.append_value(r.try_get::<String, _>("programme_title").map_err(db)?);
        grantor.append_value(r.try_get::<String, _>("organisation").map_err(db)?);
        rn.append_value(r.try_get::<String, _>("registration_number").map_err(db)?);
        let applicant: super::model::Applicant =
            serde_json::from_str(&r.try_get::<String, _>("applicant").map_err(db)?)
                .map_err(|e| super::store::corrupt(format!("applicant: {e}")))?;
        beneficiary.append_value(applicant.name);
        title.append_value(r.try_get::<String, _>("title").map_err(db)?);
        granted.append_value(i128::from(r.try_get::<i64, _>("granted").map_err(db)?));
        regime.append_value(r.try_get::<String, _>("aid_regime").map_err(db)?);
        status.append_value(r.try_get::<String, _>("status").map_err(db)?);
        let at: i64 = r
            .try_get::<Option<i64>, _>("decided_at")
            .map_err(db)?
            .unwrap_or(r.try_get("updated_at").map_err(db)?);
        decided.append_value(at.div_euclid(86_400_000) as i32);
    }
    let granted = granted
        .finish()
        .with_precision_and_scale(18, 2)
        .map_err(|e| GovError::Engine(dagr_engine::Error::Internal(e.to_string())))?;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(programme.finish()),
        Arc::new(programme_title.finish()),
        Arc::new(grantor.finish()),
        Arc::new(rn.finish()),
        Arc::new(beneficiary.finish()),
        Arc::new(title.finish()),
        Arc::new(granted),
        Arc::new(regime.finish()),
        Arc::new(status.finish()),
        Arc::new(decided.finish()),
    ];
    let schema = engine.definition(DATASET)?.arrow_schema();
    let batch = RecordBatch::try_new(schema, columns)
        .map_err(|e| GovError::Engine(dagr_engine::Error::Internal(e.to_string())))?;
    engine.load_batches(DATASET, vec![batch]).await?;
    tracing::debug!(projects = n, "map_projects published");
    Ok(())
}

/// Publish when the dataset has no snapshot yet (a first start, or a grantor registered
/// since): decisions keep it current afterwards.
pub async fn publish_if_missing(state: &AppState) {
    let missing = state
        .engine
        .current_opt(DATASET)
        .map_or(true, |s| s.is_none());
    if missing {
        publish_or_log(state).await;
    }
}

/// [`publish`], logging a failure instead of returning it (after a decision that is already
/// committed).
pub async fn publish_or_log(state: &AppState) {
    if let Err(e) = publish(state).await {
        tracing::error!(error = %e, "map_projects not published; the next decision or start retries");
    }
}
