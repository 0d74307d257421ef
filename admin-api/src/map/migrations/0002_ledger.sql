-- Accounting entries of MAP: every change of a programme's money, written in the transaction
-- that makes it (commitment at approval; release at closure, termination or withdrawal;
-- payment; recovery). Amounts in cents, positive.
CREATE TABLE map_ledger (
    id {id},
    programme BIGINT NOT NULL,
    application BIGINT NOT NULL,
    kind TEXT NOT NULL,
    amount BIGINT NOT NULL,
    at BIGINT NOT NULL,
    reference TEXT
)
;
CREATE INDEX map_ledger_at ON map_ledger (at, id)
;
CREATE INDEX map_documents_at ON map_documents (at, number)
;
CREATE INDEX map_payments_paid ON map_payments (paid_at, id)
