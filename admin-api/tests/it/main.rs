//! Integration tests of the REST API and governance rules: the real router (in process,
//! through `tower::ServiceExt::oneshot`) over a real engine and a real metadata store —
//! SQLite always, and PostgreSQL when `DAGR_TEST_POSTGRES_URL` names a server (the
//! project's `scripts/test` starts one and sets `DAGR_TEST_REQUIRE_POSTGRES=1`, so that a
//! missing server fails instead of skipping).

mod api;
mod audit;
mod changes;
mod common;
mod hardening;
mod ledger;
mod loads;
mod roles;
mod sessions;
mod user_tokens;
mod workflow;
