//! # MAP — grant management
//!
//! The grant-funding lifecycle (MISSION.md part 4) as a module of the REST API: programmes
//! with budgets, eligibility conditions and versioned scoresheets; applications from
//! companies, filed by people who may represent them; evaluation with conflict-of-interest
//! detection and blind scoring; decisions that never exceed a budget or the de minimis
//! ceiling; contracts, payments with approval levels, reports, closure and termination.
//!
//! Layout, by responsibility:
//! - [`model`]: statuses, roles, inputs and the application as the API shows it;
//! - [`store`]: the module's tables (own migrations, [`MIGRATIONS`]) on the metadata
//!   database, every transition one conditional transaction with its history entry;
//! - [`registers`]: every read of a register, through the engine under the grantor's MAP
//!   system's agreements (a masked view, never unrestricted), each committed to the usage
//!   audit before it is used, kept as evidence;
//! - [`rules`]: who may do what in which state, money and ceilings;
//! - [`service`]: MAP as the REST handlers and the portal call it ([`service::MapCaller`]
//!   and one function per read or action);
//! - [`api`]: the handlers and the router under `/api/v1/map`;
//! - [`deadlines`]: reports due under contracts, and reminders;
//! - [`exports`]: payment orders, accounting entries and documents as CSV or JSON;
//! - [`publication`]: the granted projects as the dataset `map_projects`;
//! - [`settings`]: the Latvian specifics as data (document numbers, retention, due dates on
//!   working days, reminders);
//! - [`seed`]: bulk writes for the demo seeder.
//!
//! MAP writes are not policy: they do not bump the metadata generation counter that makes
//! every replica reload its access policy.

pub(crate) mod api;
pub mod deadlines;
pub mod exports;
pub mod model;
pub mod publication;
pub(crate) mod registers;
pub(crate) mod rules;
pub mod seed;
pub mod service;
pub mod settings;
pub mod store;

pub use api::routes;
pub use model::{MapRole, Status};
pub use store::MapStore;

/// The module's migrations, applied with the metadata store's (tracked in
/// `map_migrations`).
pub(crate) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "map", include_str!("migrations/0001_map.sql")),
    (2, "ledger", include_str!("migrations/0002_ledger.sql")),
    (
        3,
        "reminders",
        include_str!("migrations/0003_reminders.sql"),
    ),
    (
        4,
        "aid rules",
        include_str!("migrations/0004_aid_rules.sql"),
    ),
    (5, "settings", include_str!("migrations/0005_settings.sql")),
];
