//! Webhook endpoints and deliveries: [`WebhookStore`] for [`PostgresStore`](super::PostgresStore).

use super::*;
use crate::webhook::{
    events_column, parse_events_column, Delivery, DeliveryId, Message, NewWebhook, Webhook,
    WebhookId, WebhookSecret, WebhookStore,
};

impl WebhookStore for PostgresStore {
    fn create_webhook(&self, new: NewWebhook, now: Timestamp) -> Result<Webhook> {
        let row = self.conn()?.query_typed_one(
            "INSERT INTO webhooks (url, secret, events, description, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[
                (&nul_free(&new.url).as_ref(), Type::TEXT),
                (&new.secret.expose(), Type::TEXT),
                (&events_column(&new.events), Type::TEXT),
                (&nul_free(&new.description).as_ref(), Type::TEXT),
                (&now.unix_micros(), Type::INT8),
            ],
        )?;
        Ok(Webhook {
            id: row.try_get(0)?,
            url: new.url,
            events: new.events,
            description: new.description,
            created_at: now,
            secret: new.secret,
        })
    }

    fn webhooks(&self) -> Result<Vec<Webhook>> {
        self.conn()?
            .query_typed(
                "SELECT id, url, secret, events, description, created_at FROM webhooks ORDER BY id",
                &[],
            )?
            .iter()
            .map(|row| {
                Ok(Webhook {
                    id: row.try_get(0)?,
                    url: row.try_get(1)?,
                    secret: WebhookSecret::from_stored(row.try_get(2)?),
                    events: parse_events_column(row.try_get(3)?),
                    description: row.try_get(4)?,
                    created_at: Timestamp::from_unix_micros(row.try_get(5)?),
                })
            })
            .collect()
    }

    fn delete_webhook(&self, id: WebhookId) -> Result<bool> {
        // Its queued deliveries go with it through ON DELETE CASCADE.
        let deleted = self
            .conn()?
            .execute_typed("DELETE FROM webhooks WHERE id = $1", &[(&id, Type::INT8)])?;
        Ok(deleted > 0)
    }

    fn enqueue(&self, message: &Message) -> Result<u64> {
        outbox::queue(&mut *self.conn()?, message)
    }

    fn claim_deliveries(
        &self,
        now: Timestamp,
        limit: u32,
        lease_until: Timestamp,
    ) -> Result<Vec<Delivery>> {
        // SKIP LOCKED: nodes claiming at once take disjoint deliveries without waiting for each
        // other; the lease then keeps them from every node until it runs out.
        self.conn()?
            .query_typed(
                "WITH due AS (SELECT id FROM webhook_deliveries WHERE next_attempt_at <= $1 \
                 ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
                 UPDATE webhook_deliveries AS d SET next_attempt_at = $2 \
                 FROM due, webhooks AS w WHERE d.id = due.id AND w.id = d.webhook_id \
                 RETURNING d.id, d.webhook_id, w.url, w.secret, d.message_id, d.body, \
                 d.attempts, d.created_at",
                &[
                    (&now.unix_micros(), Type::INT8),
                    (&lease_until.unix_micros(), Type::INT8),
                    (&i64::from(limit), Type::INT8),
                ],
            )?
            .iter()
            .map(|row| {
                Ok(Delivery {
                    id: row.try_get(0)?,
                    webhook_id: row.try_get(1)?,
                    url: row.try_get(2)?,
                    secret: WebhookSecret::from_stored(row.try_get(3)?),
                    message_id: row.try_get(4)?,
                    body: row.try_get(5)?,
                    attempts: u32::try_from(row.try_get::<_, i32>(6)?).unwrap_or_default(),
                    created_at: Timestamp::from_unix_micros(row.try_get(7)?),
                })
            })
            .collect::<Result<Vec<_>>>()
            .map(|mut claimed| {
                claimed.sort_by_key(|delivery| delivery.id);
                claimed
            })
    }

    fn remove_delivery(&self, id: DeliveryId) -> Result<()> {
        self.conn()?.execute_typed(
            "DELETE FROM webhook_deliveries WHERE id = $1",
            &[(&id, Type::INT8)],
        )?;
        Ok(())
    }

    fn reschedule_delivery(
        &self,
        id: DeliveryId,
        next_attempt: Timestamp,
        error: &str,
    ) -> Result<()> {
        self.conn()?.execute_typed(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = $2, \
             last_error = $3 WHERE id = $1",
            &[
                (&id, Type::INT8),
                (&next_attempt.unix_micros(), Type::INT8),
                (&nul_free(error).as_ref(), Type::TEXT),
            ],
        )?;
        Ok(())
    }

    fn pending_deliveries(&self) -> Result<u64> {
        let count: i64 = self
            .conn()?
            .query_typed_one("SELECT COUNT(*) FROM webhook_deliveries", &[])?
            .try_get(0)?;
        Ok(u64::try_from(count).unwrap_or_default())
    }
}
