-- 0004: a refused command never runs. A ledger insert carries its caller's deadline (accept_by);
-- one that commits after it (the caller was already told "refused") is `expired`: never
-- delivered, not final, and its idempotency key can be used again (a retry revives the row).
ALTER TABLE commands DROP CONSTRAINT commands_status_check;
ALTER TABLE commands ADD CONSTRAINT commands_status_check
    CHECK (status IN ('queued', 'sent', 'done', 'failed', 'expired'));
ALTER TABLE commands ADD COLUMN accept_by timestamptz;
