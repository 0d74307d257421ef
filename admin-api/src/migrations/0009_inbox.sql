-- The in-app inbox every module writes to (docs/notifications.md), in the transaction of
-- what it reports, beside the e-mail of `mail_outbox`. A recipient is `user:LOGIN` or
-- `subject:PERSONAL_CODE`. MAP keeps its own inbox (`map_inbox`); `GET /api/v1/me/inbox`
-- shows both.
CREATE TABLE inbox (
    id {id},
    recipient TEXT NOT NULL,
    module TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    link TEXT,
    created_at BIGINT NOT NULL
)
;
CREATE INDEX inbox_recipient ON inbox (recipient, id)
