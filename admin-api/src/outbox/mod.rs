//! # E-mail outbox
//!
//! Notifications that leave by e-mail (docs/notifications.md). A person gives an address
//! (`PUT /api/v1/me/email`); a module that tells a person something ([`enqueue`]) writes
//! the message to `mail_outbox` in the same transaction as what it reports, so a message is
//! queued exactly when its cause commits. `dagr serve --smtp-relay HOST:PORT` drains the
//! outbox ([`spawn_drain`]): each replica claims due messages with a conditional update
//! (a claim lapses after [`CLAIM`], so a message of a replica that died is taken again),
//! hands them to the relay over SMTP ([`smtp`]) and marks them sent; a transient refusal
//! is retried with a growing delay, a permanent one (or the last of [`MAX_ATTEMPTS`]) marks
//! the message failed with the relay's answer. Delivery is at least once: a replica that
//! dies between the relay's acceptance and the mark sends that message again.
//!
//! Without a relay, messages stay `pending` and the admin sees them (`GET
//! /api/v1/outbox`). Persons without an address get no mail; the in-app inboxes hold
//! every message either way.

pub mod api;
pub mod inbox;
pub mod smtp;

use std::time::Duration;

use serde::Serialize;
use sqlx::{AnyConnection, AnyPool, Row};

use crate::governance::{GovError, GovResult};
use crate::model::Time;
use crate::store::StoreError;

/// Longest subject, in characters.
pub const MAX_SUBJECT: usize = 200;
/// Longest body, in characters.
pub const MAX_BODY: usize = 20_000;
/// Longest address (RFC 5321's path limit).
pub const MAX_ADDRESS: usize = 254;
/// Attempts before a message is given up.
pub const MAX_ATTEMPTS: i64 = 8;
/// How long a replica's claim on a message lasts.
pub const CLAIM: Duration = Duration::from_secs(120);
/// Messages one drain round claims.
const BATCH: i64 = 20;

fn db(e: sqlx::Error) -> GovError {
    GovError::Store(StoreError::Database(e))
}

/// Check an address: at most [`MAX_ADDRESS`] bytes, `local@domain` as SMTP takes it.
pub fn check_address(address: &str) -> GovResult<String> {
    let a = address.trim();
    if a.len() > MAX_ADDRESS {
        return Err(GovError::Invalid {
            field: "address".into(),
            reason: format!("longer than {MAX_ADDRESS} bytes"),
        });
    }
    a.parse::<lettre::Address>()
        .map_err(|e| GovError::Invalid {
            field: "address".into(),
            reason: format!("not an e-mail address: {e}"),
        })
        .map(|_| a.to_owned())
}

/// The address a recipient gave, if any.
pub async fn address(c: &mut AnyConnection, recipient: &str) -> GovResult<Option<String>> {
    sqlx::query_scalar("SELECT address FROM mail_addresses WHERE recipient = $1")
        .bind(recipient)
        .fetch_optional(&mut *c)
        .await
        .map_err(db)
}

/// Set (or with `None` remove) a recipient's address.
pub async fn set_address(pool: &AnyPool, recipient: &str, address: Option<&str>) -> GovResult<()> {
    let mut tx = pool.begin().await.map_err(db)?;
    sqlx::query("DELETE FROM mail_addresses WHERE recipient = $1")
        .bind(recipient)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    if let Some(a) = address {
        sqlx::query(
            "INSERT INTO mail_addresses (recipient, address, updated_at) VALUES ($1, $2, $3)",
        )
        .bind(recipient)
        .bind(a)
        .bind(Time::now().0)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)
}

/// Queue a message to `recipient` on `c` (the caller's transaction): nothing when they
/// gave no address. Subject and body are cut to their limits. Returns whether a message
/// was queued.
pub async fn enqueue(
    c: &mut AnyConnection,
    recipient: &str,
    subject: &str,
    body: &str,
) -> GovResult<bool> {
    let Some(to) = address(c, recipient).await? else {
        return Ok(false);
    };
    enqueue_to(c, recipient, &to, subject, body).await?;
    Ok(true)
}

/// Queue a message to an address known to the caller (an institution without an account:
/// `recipient` names it, e.g. `institution:CODE`), on `c`.
pub async fn enqueue_to(
    c: &mut AnyConnection,
    recipient: &str,
    to: &str,
    subject: &str,
    body: &str,
) -> GovResult<()> {
    let now = Time::now().0;
    sqlx::query(
        "INSERT INTO mail_outbox (recipient, address, subject, body, status, created_at, attempts, \
         next_attempt_at, claimed_until) VALUES ($1, $2, $3, $4, 'pending', $5, 0, $5, 0)",
    )
    .bind(recipient)
    .bind(to)
    .bind(cut(subject.lines().next().unwrap_or(""), MAX_SUBJECT))
    .bind(cut(body, MAX_BODY))
    .bind(now)
    .execute(&mut *c)
    .await
    .map_err(db)?;
    Ok(())
}

/// Whether a recipient is a person (whose message bodies the admin's list withholds).
pub fn is_person(recipient: &str) -> bool {
    recipient.starts_with("user:") || recipient.starts_with("subject:")
}

fn cut(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// A message as the admin's outbox list shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Mail {
    /// Id.
    pub id: i64,
    /// `user:LOGIN`, `subject:CODE`, or what a module names an addressee without an
    /// account by (`institution:…`).
    pub recipient: String,
    /// The address it goes to.
    pub to: String,
    /// Subject.
    pub subject: String,
    /// The text; withheld (absent) for messages to persons: what a module tells a person
    /// is theirs, not the operator's.
    pub body: Option<String>,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    /// Queued (RFC 3339).
    pub created_at: String,
    /// Attempts made.
    pub attempts: i64,
    /// Sent (RFC 3339).
    pub sent_at: Option<String>,
    /// The relay's last refusal, or why sending failed.
    pub last_error: Option<String>,
}

/// The newest messages, optionally of one status or recipient, at most `limit` (≤ 1 000).
pub async fn list(
    pool: &AnyPool,
    status: Option<&str>,
    recipient: Option<&str>,
    limit: i64,
) -> GovResult<Vec<Mail>> {
    let rows = sqlx::query(
        "SELECT id, recipient, address, subject, body, status, created_at, attempts, sent_at, last_error \
         FROM mail_outbox WHERE ($1 = '' OR status = $1) AND ($2 = '' OR recipient = $2) \
         ORDER BY id DESC LIMIT $3",
    )
    .bind(status.unwrap_or(""))
    .bind(recipient.unwrap_or(""))
    .bind(limit.clamp(1, 1_000))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    rows.iter()
        .map(|r| {
            let recipient: String = r.try_get("recipient").map_err(db)?;
            let body: String = r.try_get("body").map_err(db)?;
            Ok(Mail {
                id: r.try_get("id").map_err(db)?,
                body: (!is_person(&recipient)).then_some(body),
                recipient,
                to: r.try_get("address").map_err(db)?,
                subject: r.try_get("subject").map_err(db)?,
                status: r.try_get("status").map_err(db)?,
                created_at: Time(r.try_get("created_at").map_err(db)?).to_rfc3339(),
                attempts: r.try_get("attempts").map_err(db)?,
                sent_at: r
                    .try_get::<Option<i64>, _>("sent_at")
                    .map_err(db)?
                    .map(|t| Time(t).to_rfc3339()),
                last_error: r.try_get("last_error").map_err(db)?,
            })
        })
        .collect()
}

/// A claimed message.
struct Claimed {
    id: i64,
    address: String,
    subject: String,
    body: String,
    attempts: i64,
}

/// Claim up to [`BATCH`] due messages for this replica.
async fn claim(pool: &AnyPool) -> GovResult<Vec<Claimed>> {
    let now = Time::now().0;
    let until = now + CLAIM.as_millis() as i64;
    let due = sqlx::query(
        "SELECT id, address, subject, body, attempts FROM mail_outbox WHERE status = 'pending' \
         AND next_attempt_at <= $1 AND claimed_until < $1 ORDER BY id LIMIT $2",
    )
    .bind(now)
    .bind(BATCH)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    let mut out = Vec::new();
    for row in &due {
        let id: i64 = row.try_get("id").map_err(db)?;
        // Another replica may have claimed it since: the condition decides.
        let r = sqlx::query(
            "UPDATE mail_outbox SET claimed_until = $1 WHERE id = $2 AND status = 'pending' \
             AND claimed_until < $3",
        )
        .bind(until)
        .bind(id)
        .bind(now)
        .execute(pool)
        .await
        .map_err(db)?;
        if r.rows_affected() != 1 {
            continue;
        }
        out.push(Claimed {
            id,
            address: row.try_get("address").map_err(db)?,
            subject: row.try_get("subject").map_err(db)?,
            body: row.try_get("body").map_err(db)?,
            attempts: row.try_get("attempts").map_err(db)?,
        });
    }
    Ok(out)
}

/// The delay before attempt `n + 1`: 30 s, doubling, at most six hours.
fn backoff(attempts: i64) -> Duration {
    Duration::from_secs((30u64 << attempts.clamp(0, 20) as u32).min(6 * 3_600))
}

/// Record the outcome of one attempt.
async fn settle(
    pool: &AnyPool,
    m: &Claimed,
    outcome: Result<(), smtp::SendError>,
) -> GovResult<()> {
    let now = Time::now().0;
    let attempts = m.attempts + 1;
    let q = match outcome {
        Ok(()) => sqlx::query(
            "UPDATE mail_outbox SET status = 'sent', sent_at = $1, attempts = $2, claimed_until = 0, \
             last_error = NULL WHERE id = $3",
        )
        .bind(now)
        .bind(attempts)
        .bind(m.id),
        Err(e) => {
            let give_up = e.permanent || attempts >= MAX_ATTEMPTS;
            let next = now + backoff(m.attempts).as_millis() as i64;
            sqlx::query(
                "UPDATE mail_outbox SET status = $1, attempts = $2, next_attempt_at = $3, \
                 claimed_until = 0, last_error = $4 WHERE id = $5",
            )
            .bind(if give_up { "failed" } else { "pending" })
            .bind(attempts)
            .bind(next)
            .bind(cut(&e.message, 1_000))
            .bind(m.id)
        }
    };
    q.execute(pool).await.map_err(db)?;
    Ok(())
}

/// One drain round: claim what is due, send it, record each outcome. Returns how many
/// messages were attempted.
pub async fn drain_once(pool: &AnyPool, relay: &smtp::Relay) -> GovResult<usize> {
    let due = claim(pool).await?;
    for m in &due {
        let outcome = relay.send(&m.address, &m.subject, &m.body).await;
        if let Err(e) = &outcome {
            tracing::warn!(message = m.id, error = %e.message, permanent = e.permanent, "e-mail not sent");
        }
        settle(pool, m, outcome).await?;
    }
    Ok(due.len())
}

/// Drain the outbox through `relay` every `every` (sooner after a full batch) until the
/// returned task is dropped.
pub fn spawn_drain(
    pool: AnyPool,
    relay: smtp::Relay,
    every: Duration,
) -> dagr_engine::task::SpawnedTask<()> {
    dagr_engine::task::SpawnedTask::spawn(async move {
        loop {
            match drain_once(&pool, &relay).await {
                Ok(n) if n as i64 == BATCH => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "e-mail outbox: drain failed"),
            }
            tokio::time::sleep(every).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked() {
        assert_eq!(check_address(" a.b@example.lv ").unwrap(), "a.b@example.lv");
        assert!(check_address("no-at-sign").is_err());
        assert!(check_address("a@b\r\nRCPT TO:<x@y>").is_err());
        assert!(check_address(&format!("{}@example.lv", "a".repeat(260))).is_err());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(0), Duration::from_secs(30));
        assert_eq!(backoff(1), Duration::from_secs(60));
        assert_eq!(backoff(30), Duration::from_secs(6 * 3_600));
    }
}
