//! Webhook endpoints and deliveries: [`WebhookStore`] for [`MemoryStore`](super::MemoryStore).

use super::*;
use crate::webhook::{
    subscribed, Delivery, DeliveryId, Message, MessageKind, NewWebhook, Webhook, WebhookId,
    WebhookStore,
};

/// Endpoints and their queued deliveries. Locked after `state` or the ticket state, never
/// before: the other files queue while holding theirs.
#[derive(Default)]
pub(super) struct Outbox {
    next_webhook_id: WebhookId,
    webhooks: BTreeMap<WebhookId, Webhook>,
    next_delivery_id: DeliveryId,
    deliveries: BTreeMap<DeliveryId, Queued>,
}

struct Queued {
    webhook_id: WebhookId,
    message_id: String,
    body: String,
    created_at: Timestamp,
    next_attempt_at: Timestamp,
    attempts: u32,
}

impl Outbox {
    fn wanted(&self, kind: MessageKind) -> bool {
        self.webhooks
            .values()
            .any(|webhook| subscribed(&webhook.events, kind))
    }

    fn queue(&mut self, message: &Message) -> u64 {
        let receivers: Vec<WebhookId> = self
            .webhooks
            .values()
            .filter(|webhook| webhook.receives(message.kind))
            .map(|webhook| webhook.id)
            .collect();
        let body = message.body();
        for webhook_id in &receivers {
            self.next_delivery_id += 1;
            self.deliveries.insert(
                self.next_delivery_id,
                Queued {
                    webhook_id: *webhook_id,
                    message_id: message.id.clone(),
                    body: body.clone(),
                    created_at: message.timestamp,
                    next_attempt_at: message.timestamp,
                    attempts: 0,
                },
            );
        }
        receivers.len() as u64
    }
}

impl MemoryStore {
    fn outbox(&self) -> Result<MutexGuard<'_, Outbox>> {
        self.outbox
            .lock()
            .map_err(|_| Error::storage("memory store lock poisoned"))
    }

    /// Queues the message `build` makes, if any endpoint receives `kind`. Called with the
    /// lock of the change it tells of held, so that the two are seen together.
    pub(super) fn queue_if_wanted(
        &self,
        kind: MessageKind,
        build: impl FnOnce() -> Result<Message>,
    ) -> Result<()> {
        let mut outbox = self.outbox()?;
        if outbox.wanted(kind) {
            outbox.queue(&build()?);
        }
        Ok(())
    }
}

impl WebhookStore for MemoryStore {
    fn create_webhook(&self, new: NewWebhook, now: Timestamp) -> Result<Webhook> {
        let mut outbox = self.outbox()?;
        outbox.next_webhook_id += 1;
        let webhook = Webhook {
            id: outbox.next_webhook_id,
            url: new.url,
            events: new.events,
            description: new.description,
            created_at: now,
            secret: new.secret,
        };
        outbox.webhooks.insert(webhook.id, webhook.clone());
        Ok(webhook)
    }

    fn webhooks(&self) -> Result<Vec<Webhook>> {
        Ok(self.outbox()?.webhooks.values().cloned().collect())
    }

    fn delete_webhook(&self, id: WebhookId) -> Result<bool> {
        let mut outbox = self.outbox()?;
        let existed = outbox.webhooks.remove(&id).is_some();
        outbox
            .deliveries
            .retain(|_, queued| queued.webhook_id != id);
        Ok(existed)
    }

    fn enqueue(&self, message: &Message) -> Result<u64> {
        Ok(self.outbox()?.queue(message))
    }

    fn claim_deliveries(
        &self,
        now: Timestamp,
        limit: u32,
        lease_until: Timestamp,
    ) -> Result<Vec<Delivery>> {
        let mut outbox = self.outbox()?;
        let mut due: Vec<(Timestamp, DeliveryId)> = outbox
            .deliveries
            .iter()
            .filter(|(_, queued)| queued.next_attempt_at <= now)
            .map(|(id, queued)| (queued.next_attempt_at, *id))
            .collect();
        due.sort();
        due.truncate(limit as usize);
        let mut claimed = Vec::with_capacity(due.len());
        for (_, id) in due {
            let Outbox {
                webhooks,
                deliveries,
                ..
            } = &mut *outbox;
            let Some(queued) = deliveries.get_mut(&id) else {
                continue;
            };
            let Some(webhook) = webhooks.get(&queued.webhook_id) else {
                continue;
            };
            queued.next_attempt_at = lease_until;
            claimed.push(Delivery {
                id,
                webhook_id: webhook.id,
                url: webhook.url.clone(),
                secret: webhook.secret.clone(),
                message_id: queued.message_id.clone(),
                body: queued.body.clone(),
                attempts: queued.attempts,
                created_at: queued.created_at,
            });
        }
        Ok(claimed)
    }

    fn remove_delivery(&self, id: DeliveryId) -> Result<()> {
        self.outbox()?.deliveries.remove(&id);
        Ok(())
    }

    fn reschedule_delivery(
        &self,
        id: DeliveryId,
        next_attempt: Timestamp,
        _error: &str,
    ) -> Result<()> {
        if let Some(queued) = self.outbox()?.deliveries.get_mut(&id) {
            queued.attempts += 1;
            queued.next_attempt_at = next_attempt;
        }
        Ok(())
    }

    fn pending_deliveries(&self) -> Result<u64> {
        Ok(self.outbox()?.deliveries.len() as u64)
    }
}
