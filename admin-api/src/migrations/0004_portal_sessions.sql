-- Portal sessions: one row per signed-in browser. `id_hash` is the SHA-256 (hex) of the
-- session cookie's secret, which is never stored. A session is either a user's (`user_id`)
-- or a citizen's (`subject_token`: the SHA-256 hex of the subject token they signed in with,
-- checked against the live tokens on every request, so revoking the token ends the
-- session). `csrf` is the token every form of the session must carry. Times are Unix
-- milliseconds; a session is dead after `expires_at` (idle limit, moved on by use) or after
-- `created_at` + the absolute limit, whichever comes first.
CREATE TABLE portal_sessions (
    id_hash TEXT PRIMARY KEY,
    user_id BIGINT REFERENCES users (id),
    subject_token TEXT,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
)
;
CREATE INDEX portal_sessions_expires ON portal_sessions (expires_at)
