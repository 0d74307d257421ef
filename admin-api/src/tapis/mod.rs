//! # TAPIS — territorial development planning
//!
//! Municipal planning documents (MISSION.md part 5) as a module of the REST API: documents
//! of six types moving through their stages with a full history; a territory checked as an
//! RFC 7946 (Multi)Polygon with its area on the LKS-92 TM grid; the rules as data (deadlines
//! per document type, the institutions to ask, the calendar's days), versioned, changed by
//! merge patch; coordination with institutions through signed, expiring single-request links
//! answered without an account, with due dates from the working-day calendar, reminders,
//! an overdue flag and extensions; e-mail through the outbox.
//!
//! Layout, by responsibility:
//! - [`model`]: types, stages and the moves between them, the document as the API shows it;
//! - [`geometry`]: territory checks, area, overlaps;
//! - [`rules`]: the rules document, its defaults and sources, merge patch, Europe/Riga dates;
//! - [`store`]: the module's tables (own migrations, [`MIGRATIONS`]);
//! - [`coordination`]: requests, links, answers, extensions, reminders;
//! - [`consultation`]: versions, and public consultations opened and closed on time;
//! - [`files`]: files of versions, streamed to the object store with their SHA-256;
//! - [`comments`]: citizens' comments, receipts, the officers' split, tags, groups and
//!   answers; [`report`]: the consultation's report, streamed;
//! - [`parcels`]: owners from the registers (read under the municipality's TAPIS system,
//!   audited), notices to owners, the plan against the cadastre;
//! - [`help`]: help and FAQ per stage and role, LV/EN, searchable, with anonymous
//!   "was this helpful" votes;
//! - [`service`]: who may do what ([`service::Caller`]), one function per read or action;
//! - [`api`]: the handlers and the router under `/api/v1/tapis`.
//!
//! What is not built yet is listed in docs/tapis.md, "Not yet".

pub mod api;
pub mod comments;
pub mod consultation;
pub mod coordination;
pub mod files;
pub mod geometry;
pub mod help;
pub mod model;
pub mod parcels;
pub mod report;
pub mod rules;
pub mod service;
pub mod store;

pub use store::TapisStore;

/// The module's migrations, applied with the metadata store's (tracked in
/// `tapis_migrations`).
pub(crate) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "tapis", include_str!("migrations/0001_tapis.sql")),
    (2, "versions", include_str!("migrations/0002_versions.sql")),
    (3, "comments", include_str!("migrations/0003_comments.sql")),
    (4, "parcels", include_str!("migrations/0004_parcels.sql")),
    (5, "help", include_str!("migrations/0005_help.sql")),
    (
        6,
        "parcel_shapes",
        include_str!("migrations/0006_parcel_shapes.sql"),
    ),
    (
        7,
        "comment_search",
        include_str!("migrations/0007_comment_search.sql"),
    ),
];

/// How often the reminder task looks.
pub const REMINDER_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Send coordination reminders every [`REMINDER_INTERVAL`] until the task is dropped.
pub fn spawn_reminders(store: TapisStore) -> dagr_engine::task::SpawnedTask<()> {
    dagr_engine::task::SpawnedTask::spawn(async move {
        let mut tick = tokio::time::interval(REMINDER_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let days = match store.rules().await {
                Ok(r) => r.reminder_days,
                Err(e) => {
                    tracing::warn!(error = %e, "TAPIS reminders: rules unreadable; retried later");
                    continue;
                }
            };
            match store
                .send_reminders(
                    days,
                    "Use the link of the request's first e-mail to answer.",
                )
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(reminders = n, "TAPIS coordination reminders queued"),
                Err(e) => tracing::warn!(error = %e, "TAPIS reminders not sent; retried later"),
            }
        }
    })
}

/// How often the scheduler looks for consultations to open or close.
pub const SCHEDULER_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// How long after a failed attempt the owners of an open consultation's properties are
/// tried again.
pub const OWNERS_RETRY: std::time::Duration = std::time::Duration::from_secs(600);

/// Open and close consultations on time until the task is dropped. Every replica runs it;
/// each switch is a conditional update, so it happens once.
pub fn spawn_scheduler(store: TapisStore) -> dagr_engine::task::SpawnedTask<()> {
    dagr_engine::task::SpawnedTask::spawn(async move {
        let mut tick = tokio::time::interval(SCHEDULER_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match consultation::advance(&store).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(switched = n, "TAPIS consultations opened or closed"),
                Err(e) => tracing::warn!(error = %e, "TAPIS scheduler: retried in a second"),
            }
        }
    })
}

/// How often the owners' notices look for opened consultations.
pub const OWNERS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);
/// How long a replica's claim on a consultation's owners' notices lasts (a municipality's
/// registers read, compared and notified take seconds to minutes).
pub const OWNERS_LEASE: std::time::Duration = std::time::Duration::from_secs(1800);

/// Tell the owners of the properties in each opened consultation's territory, in a task of
/// its own (register reads never hold up opening and closing consultations). Every replica
/// runs it; a replica claims a consultation with a conditional update first, so one does
/// the work.
pub fn spawn_owner_notices(state: crate::AppState) -> dagr_engine::task::SpawnedTask<()> {
    dagr_engine::task::SpawnedTask::spawn(async move {
        let store = TapisStore::new(state.gov.store());
        let mut tick = tokio::time::interval(OWNERS_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = tell_owners(&state, &store).await {
                tracing::warn!(error = %e, "TAPIS owners' notices: retried shortly");
            }
        }
    })
}

async fn tell_owners(
    state: &crate::AppState,
    store: &TapisStore,
) -> crate::governance::GovResult<()> {
    use sqlx::Row;
    let now = crate::model::Time::now().0;
    let due = sqlx::query(
        "SELECT id, document FROM tapis_consultations WHERE status = 'open' \
         AND owners_notified_at IS NULL AND (owners_retry_at IS NULL OR owners_retry_at <= $1) \
         ORDER BY id LIMIT 20",
    )
    .bind(now)
    .fetch_all(&store.pool)
    .await
    .map_err(store::db)?;
    for r in &due {
        let (cid, doc): (i64, i64) = (
            r.try_get("id").map_err(store::db)?,
            r.try_get("document").map_err(store::db)?,
        );
        // This replica's claim; another that claimed it first does the work.
        let claimed = sqlx::query(
            "UPDATE tapis_consultations SET owners_retry_at = $1 WHERE id = $2 \
             AND owners_notified_at IS NULL AND (owners_retry_at IS NULL OR owners_retry_at <= $3)",
        )
        .bind(now + OWNERS_LEASE.as_millis() as i64)
        .bind(cid)
        .bind(now)
        .execute(&store.pool)
        .await
        .map_err(store::db)?
        .rows_affected()
            == 1;
        if !claimed {
            continue;
        }
        let has_territory = store.document(doc).await?.territory.is_some();
        let outcome = if has_territory {
            match parcels::compare_cadastre(state, doc, "consultation").await {
                Ok(_) => parcels::notify_owners(state, doc, cid)
                    .await
                    .map(|n| format!("{n} owner(s) told")),
                Err(e) => Err(e),
            }
        } else {
            Ok("no territory: no owners to tell".to_owned())
        };
        let (done, retry, note) = match outcome {
            Ok(note) => (Some(now), None, note),
            Err(e) => {
                tracing::warn!(consultation = cid, document = doc, error = %e,
                    "TAPIS: the owners of an open consultation's territory could not be told");
                (
                    None,
                    Some(now + OWNERS_RETRY.as_millis() as i64),
                    e.to_string(),
                )
            }
        };
        sqlx::query(
            "UPDATE tapis_consultations SET owners_notified_at = $1, owners_retry_at = $2, \
             owners_note = $3 WHERE id = $4 AND owners_notified_at IS NULL",
        )
        .bind(done)
        .bind(retry)
        .bind(note.chars().take(2_000).collect::<String>())
        .bind(cid)
        .execute(&store.pool)
        .await
        .map_err(store::db)?;
    }
    Ok(())
}
