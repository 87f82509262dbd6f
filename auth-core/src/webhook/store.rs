//! Where webhook endpoints and their outbox are kept: [`WebhookStore`].
//!
//! The outbox is filled by the other stores themselves, inside the transactions that make the
//! changes it tells of; this trait manages endpoints, queues messages that stand alone
//! (`access.denied`), and hands due deliveries to workers.

use super::{Delivery, DeliveryId, Message, NewWebhook, Webhook, WebhookId};
use crate::clock::Timestamp;
use crate::error::Result;

pub trait WebhookStore: Send + Sync {
    fn create_webhook(&self, webhook: NewWebhook, now: Timestamp) -> Result<Webhook>;

    /// Every endpoint, by id.
    fn webhooks(&self) -> Result<Vec<Webhook>>;

    /// Removes an endpoint and every delivery still queued for it. False if there is none.
    fn delete_webhook(&self, id: WebhookId) -> Result<bool>;

    /// Queues `message` for every endpoint subscribed to its kind; how many deliveries.
    fn enqueue(&self, message: &Message) -> Result<u64>;

    /// Up to `limit` deliveries due at `now` (oldest first), each kept from other claims until
    /// `lease_until`, atomically: two workers (nodes) never claim one delivery at once.
    fn claim_deliveries(
        &self,
        now: Timestamp,
        limit: u32,
        lease_until: Timestamp,
    ) -> Result<Vec<Delivery>>;

    /// Removes a delivery: delivered, or given up on.
    fn remove_delivery(&self, id: DeliveryId) -> Result<()>;

    /// Counts a failed attempt and makes the delivery due again at `next_attempt`.
    fn reschedule_delivery(
        &self,
        id: DeliveryId,
        next_attempt: Timestamp,
        error: &str,
    ) -> Result<()>;

    /// Deliveries queued, due or not.
    fn pending_deliveries(&self) -> Result<u64>;
}
