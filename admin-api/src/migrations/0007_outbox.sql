-- E-mail (docs/notifications.md): the addresses persons gave, and the outbox every module
-- writes to in the transaction of what it reports; `dagr serve --smtp-relay` drains it.
-- A recipient is `user:LOGIN` or `subject:PERSONAL_CODE`, as in the in-app inboxes.
CREATE TABLE mail_addresses (
    recipient TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    updated_at BIGINT NOT NULL
)
;
-- status: pending (to send at `next_attempt_at`), sent, failed (permanently refused, or
-- given up after the last attempt). A replica claims a message by setting `claimed_until`
-- with a conditional update; a claim that lapses (the replica died) is taken again.
CREATE TABLE mail_outbox (
    id {id},
    recipient TEXT NOT NULL,
    address TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claimed_until BIGINT NOT NULL,
    sent_at BIGINT,
    last_error TEXT
)
;
CREATE INDEX mail_outbox_due ON mail_outbox (status, next_attempt_at, id)
;
CREATE INDEX mail_outbox_recipient ON mail_outbox (recipient, id)
