-- 11 (door code locks): wrong door codes a ticket took in a row, and until when (unix micros)
-- it takes no code after too many (see `TicketStore::count_code_attempt`). Numbered 11 with 10
-- kept for the webhooks migration; the list in `mod.rs` is what orders them.
ALTER TABLE tickets ADD COLUMN wrong_codes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN code_locked_until BIGINT;
