-- Webhook endpoints, and the outbox: one row per message and endpoint, written in the same
-- transaction as the change the message tells of, removed once delivered (or given up on).
CREATE TABLE webhooks (
    id          INTEGER PRIMARY KEY,
    url         TEXT    NOT NULL,
    -- `whsec_...`: needed in full to sign, so kept as is (the file is 0600).
    secret      TEXT    NOT NULL,
    -- `,kind,kind,`; empty for every kind but access.denied.
    events      TEXT    NOT NULL DEFAULT '',
    description TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);

CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY,
    webhook_id      INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    message_id      TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    -- Due from then; a claim moves it forward by the claim's lease.
    next_attempt_at INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, id);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id);
