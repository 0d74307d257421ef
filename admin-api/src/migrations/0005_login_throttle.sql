-- Sign-in throttling (see `throttle.rs`): failed sign-ins counted per bucket, one bucket per
-- (account, source address) pair and one per source address. A full bucket refuses until
-- `blocked_until`; a bucket unused since `updated_at` + the throttle time starts anew. Times
-- are Unix milliseconds. Accounts are no longer locked: `users.failed_logins` and
-- `users.locked_until` are no longer used.
CREATE TABLE login_throttle (
    bucket TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    blocked_until BIGINT,
    updated_at BIGINT NOT NULL
)
;
CREATE INDEX login_throttle_updated ON login_throttle (updated_at)
