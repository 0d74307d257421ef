-- Reminders sent (report due soon, report overdue), one row each, so that every replica
-- sends each reminder once.
CREATE TABLE map_reminders (
    key TEXT PRIMARY KEY,
    at BIGINT NOT NULL
)
