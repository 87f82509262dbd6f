//! Webhook endpoints and deliveries: [`WebhookStore`] for [`SqliteStore`](super::SqliteStore).

use super::*;
use crate::webhook::{
    events_column, parse_events_column, Delivery, DeliveryId, Message, NewWebhook, Webhook,
    WebhookId, WebhookSecret, WebhookStore,
};

impl WebhookStore for SqliteStore {
    fn create_webhook(&self, new: NewWebhook, now: Timestamp) -> Result<Webhook> {
        self.writer.run(move |conn| {
            let id: WebhookId = conn
                .prepare_cached(
                    "INSERT INTO webhooks (url, secret, events, description, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                )?
                .query_row(
                    params![
                        new.url,
                        new.secret.expose(),
                        events_column(&new.events),
                        new.description,
                        now.unix_micros()
                    ],
                    |row| row.get(0),
                )?;
            Ok(Webhook {
                id,
                url: new.url,
                events: new.events,
                description: new.description,
                created_at: now,
                secret: new.secret,
            })
        })
    }

    fn webhooks(&self) -> Result<Vec<Webhook>> {
        let conn = self.reader()?;
        let webhooks = conn
            .prepare_cached(
                "SELECT id, url, secret, events, description, created_at FROM webhooks ORDER BY id",
            )?
            .query_map([], |row| {
                Ok(Webhook {
                    id: row.get(0)?,
                    url: row.get(1)?,
                    secret: WebhookSecret::from_stored(row.get(2)?),
                    events: parse_events_column(&row.get::<_, String>(3)?),
                    description: row.get(4)?,
                    created_at: Timestamp::from_unix_micros(row.get(5)?),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(webhooks)
    }

    fn delete_webhook(&self, id: WebhookId) -> Result<bool> {
        // Its queued deliveries go with it through ON DELETE CASCADE.
        self.writer.run(move |conn| {
            let deleted = conn
                .prepare_cached("DELETE FROM webhooks WHERE id = ?1")?
                .execute([id])?;
            Ok(deleted > 0)
        })
    }

    fn enqueue(&self, message: &Message) -> Result<u64> {
        let message = message.clone();
        self.writer.run(move |conn| outbox::queue(conn, &message))
    }

    fn claim_deliveries(
        &self,
        now: Timestamp,
        limit: u32,
        lease_until: Timestamp,
    ) -> Result<Vec<Delivery>> {
        // One write transaction (BEGIN IMMEDIATE): another process claiming at the same time
        // waits for it, then finds these leased.
        self.writer.run(move |conn| {
            let due = conn
                .prepare_cached(
                    "SELECT d.id, d.webhook_id, w.url, w.secret, d.message_id, d.body, \
                     d.attempts, d.created_at \
                     FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
                     WHERE d.next_attempt_at <= ?1 ORDER BY d.next_attempt_at, d.id LIMIT ?2",
                )?
                .query_map(params![now.unix_micros(), limit], |row| {
                    Ok(Delivery {
                        id: row.get(0)?,
                        webhook_id: row.get(1)?,
                        url: row.get(2)?,
                        secret: WebhookSecret::from_stored(row.get(3)?),
                        message_id: row.get(4)?,
                        body: row.get(5)?,
                        attempts: row.get(6)?,
                        created_at: Timestamp::from_unix_micros(row.get(7)?),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut lease = conn.prepare_cached(
                "UPDATE webhook_deliveries SET next_attempt_at = ?2 WHERE id = ?1",
            )?;
            for delivery in &due {
                lease.execute(params![delivery.id, lease_until.unix_micros()])?;
            }
            Ok(due)
        })
    }

    fn remove_delivery(&self, id: DeliveryId) -> Result<()> {
        self.writer.run(move |conn| {
            conn.prepare_cached("DELETE FROM webhook_deliveries WHERE id = ?1")?
                .execute([id])?;
            Ok(())
        })
    }

    fn reschedule_delivery(
        &self,
        id: DeliveryId,
        next_attempt: Timestamp,
        error: &str,
    ) -> Result<()> {
        let error = error.to_owned();
        self.writer.run(move |conn| {
            conn.prepare_cached(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ?2, \
                 last_error = ?3 WHERE id = ?1",
            )?
            .execute(params![id, next_attempt.unix_micros(), error])?;
            Ok(())
        })
    }

    fn pending_deliveries(&self) -> Result<u64> {
        let count: i64 = self
            .reader()?
            .prepare_cached("SELECT COUNT(*) FROM webhook_deliveries")?
            .query_row([], |row| row.get(0))?;
        Ok(u64::try_from(count).unwrap_or_default())
    }
}
