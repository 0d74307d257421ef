//! Sign-in throttling per source, so that nobody can lock a person out from outside.
//!
//! Failures are counted in the metadata store (shared by every replica) in buckets: one per
//! (account, source address) pair, allowed [`MAX_PAIR_FAILURES`], and one per source address,
//! allowed [`MAX_SOURCE_FAILURES`] over all accounts (password spraying). A bucket that is
//! full refuses the attempts of its pair or source for [`THROTTLE`]
//! ([`LoginError::Throttled`], with the time to wait); a bucket not used for [`THROTTLE`]
//! starts anew. No account is ever locked: the right password from another source signs in
//! whatever failed elsewhere.
//!
//! Each attempt is reserved (counted as a failure) in one atomic upsert per bucket before the
//! password is checked, so a parallel burst cannot check more passwords than the bucket
//! allows; a success then clears its pair's bucket and takes its own count back from the
//! source's.
//!
//! The source is the peer address of the connection ([`source_of`]: IPv4 addresses whole,
//! IPv6 by their /64 network, which one holder gets whole). `X-Forwarded-For` is not
//! trusted: DAGR has no setting naming a trusted proxy yet, and without one a caller could
//! name any source. Behind a reverse proxy every caller has the proxy's address.

use std::net::IpAddr;
use std::time::Duration;

use sqlx::AnyPool;

use crate::governance::{LOCKOUT, LoginError, MAX_FAILED_LOGINS};
use crate::model::Time;

/// Failures in a row of one account from one source before that pair is throttled.
pub const MAX_PAIR_FAILURES: i64 = MAX_FAILED_LOGINS;
/// Failures of one source over all accounts before the source is throttled.
pub const MAX_SOURCE_FAILURES: i64 = 4 * MAX_FAILED_LOGINS;
/// How long a full bucket refuses, and how long an unused bucket is remembered.
pub const THROTTLE: Duration = LOCKOUT;
/// The source of a sign-in whose peer address is not known (a router driven in process).
pub const UNKNOWN_SOURCE: &str = "unknown";

/// The source key of a peer address: an IPv4 address (or an IPv4-mapped IPv6 one) whole, an
/// IPv6 address by its /64 network.
pub fn source_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The two buckets of an attempt on `login` from `source`.
pub(crate) struct Buckets {
    pair: String,
    source: String,
}

impl Buckets {
    pub(crate) fn new(login: &str, source: &str) -> Self {
        Buckets {
            pair: format!("account\n{login}\n{source}"),
            source: format!("source\n{source}"),
        }
    }
}

fn unavailable(e: sqlx::Error) -> LoginError {
    LoginError::Unavailable(e.to_string())
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

/// Count an attempt in `bucket` unless it is full (at `max`) or throttled at `now`; a
/// bucket whose throttle has ended, or unused for [`THROTTLE`], starts anew. `false`: refused.
async fn reserve(pool: &AnyPool, bucket: &str, max: i64, now: Time) -> Result<bool, LoginError> {
    let row: Option<i64> = sqlx::query_scalar(
        "INSERT INTO login_throttle (bucket, failures, blocked_until, updated_at) \
         VALUES ($1, 1, NULL, $2) \
         ON CONFLICT (bucket) DO UPDATE SET \
         failures = CASE WHEN login_throttle.blocked_until <= $2 \
             OR (login_throttle.blocked_until IS NULL AND login_throttle.updated_at <= $4) \
             THEN 1 ELSE login_throttle.failures + 1 END, \
         blocked_until = CASE WHEN login_throttle.blocked_until <= $2 \
             THEN NULL ELSE login_throttle.blocked_until END, \
         updated_at = $2 \
         WHERE (login_throttle.blocked_until IS NULL OR login_throttle.blocked_until <= $2) \
         AND (login_throttle.failures < $3 OR login_throttle.blocked_until IS NOT NULL \
             OR login_throttle.updated_at <= $4) \
         RETURNING failures",
    )
    .bind(bucket)
    .bind(now.0)
    .bind(max)
    .bind(now.0 - ms(THROTTLE))
    .fetch_optional(pool)
    .await
    .map_err(unavailable)?;
    Ok(row.is_some())
}

/// How long the refused `bucket` stays refused.
async fn retry_after(pool: &AnyPool, bucket: &str, now: Time) -> Result<Duration, LoginError> {
    let until: Option<Option<i64>> =
        sqlx::query_scalar("SELECT blocked_until FROM login_throttle WHERE bucket = $1")
            .bind(bucket)
            .fetch_optional(pool)
            .await
            .map_err(unavailable)?;
    // Full but not throttled yet: the attempts in flight throttle it when they fail. A
    // concurrent attempt that began after this one may have set the block from its own later
    // `now`: what is left is never more than the throttle itself.
    let left = until
        .flatten()
        .map_or(ms(THROTTLE), |t| t - now.0)
        .clamp(1000, ms(THROTTLE));
    Ok(Duration::from_millis(left as u64))
}

/// Reserve an attempt in both buckets (the source's first); refused with the time to wait.
pub(crate) async fn reserve_attempt(
    pool: &AnyPool,
    b: &Buckets,
    now: Time,
) -> Result<(), LoginError> {
    for (bucket, max) in [
        (&b.source, MAX_SOURCE_FAILURES),
        (&b.pair, MAX_PAIR_FAILURES),
    ] {
        if !reserve(pool, bucket, max, now).await? {
            return Err(LoginError::Throttled(retry_after(pool, bucket, now).await?));
        }
    }
    Ok(())
}

/// Finish a reserved attempt: a failure stays counted and throttles each full bucket for
/// [`THROTTLE`]; a success clears the pair's bucket and takes its count back from the
/// source's.
pub(crate) async fn finish_attempt(
    pool: &AnyPool,
    b: &Buckets,
    success: bool,
    now: Time,
) -> Result<(), LoginError> {
    if success {
        sqlx::query("DELETE FROM login_throttle WHERE bucket = $1 AND blocked_until IS NULL")
            .bind(&b.pair)
            .execute(pool)
            .await
            .map_err(unavailable)?;
        sqlx::query(
            "UPDATE login_throttle SET failures = failures - 1 \
             WHERE bucket = $1 AND failures > 0 AND blocked_until IS NULL",
        )
        .bind(&b.source)
        .execute(pool)
        .await
        .map_err(unavailable)?;
    } else {
        for (bucket, max) in [
            (&b.source, MAX_SOURCE_FAILURES),
            (&b.pair, MAX_PAIR_FAILURES),
        ] {
            sqlx::query(
                "UPDATE login_throttle SET blocked_until = $3 \
                 WHERE bucket = $1 AND failures >= $2 AND blocked_until IS NULL",
            )
            .bind(bucket)
            .bind(max)
            .bind(now.0 + ms(THROTTLE))
            .execute(pool)
            .await
            .map_err(unavailable)?;
        }
    }
    // Forget buckets nobody used for a while (unknown logins make new ones).
    sqlx::query(
        "DELETE FROM login_throttle WHERE updated_at <= $1 \
         AND (blocked_until IS NULL OR blocked_until <= $2)",
    )
    .bind(now.0 - ms(THROTTLE))
    .bind(now.0)
    .execute(pool)
    .await
    .map_err(unavailable)?;
    Ok(())
}

/// The id and password hash of the account `login`, if there is one.
pub(crate) async fn account(
    pool: &AnyPool,
    login: &str,
) -> Result<Option<(i64, String)>, LoginError> {
    sqlx::query_as("SELECT id, password_hash FROM users WHERE login = $1")
        .bind(login)
        .fetch_optional(pool)
        .await
        .map_err(unavailable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_addresses_and_ipv6_networks() {
        assert_eq!(source_of("192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_eq!(source_of("::ffff:192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_eq!(
            source_of("2001:db8:1:2:aaaa::1".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            source_of("2001:db8:1:2:bbbb::9".parse().unwrap()),
            source_of("2001:db8:1:2:aaaa::1".parse().unwrap())
        );
    }
}
