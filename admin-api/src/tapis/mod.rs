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
//! - [`service`]: who may do what ([`service::Caller`]), one function per read or action;
//! - [`api`]: the handlers and the router under `/api/v1/tapis`.
//!
//! Comments and receipts, files of versions, owners from the registers, help and the portal
//! pages follow (docs/tapis.md, "Not yet").

pub mod api;
pub mod consultation;
pub mod coordination;
pub mod geometry;
pub mod model;
pub mod rules;
pub mod service;
pub mod store;

pub use store::TapisStore;

/// The module's migrations, applied with the metadata store's (tracked in
/// `tapis_migrations`).
pub(crate) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "tapis", include_str!("migrations/0001_tapis.sql")),
    (2, "versions", include_str!("migrations/0002_versions.sql")),
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
