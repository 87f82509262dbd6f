//! How the other files queue webhook messages inside their own transactions.

use super::*;
use crate::webhook::{Message, MessageKind};

/// Endpoints subscribed to kind `$1` (the rule of [`crate::webhook::Webhook::receives`]).
const SUBSCRIBED: &str =
    "(events = '' AND $1 <> 'access.denied') OR strpos(events, ',' || $1 || ',') > 0";

/// Whether any endpoint receives `kind`: when none does, a change builds no message.
pub(super) fn wanted(client: &mut impl GenericClient, kind: MessageKind) -> Result<bool> {
    Ok(client
        .query_typed_one(
            &format!("SELECT EXISTS (SELECT 1 FROM webhooks WHERE {SUBSCRIBED})"),
            &[(&kind.as_str(), Type::TEXT)],
        )?
        .try_get(0)?)
}

/// Queues `message` for every endpoint that receives its kind; how many deliveries.
pub(super) fn queue(client: &mut impl GenericClient, message: &Message) -> Result<u64> {
    Ok(client.execute_typed(
        &format!(
            "INSERT INTO webhook_deliveries \
             (webhook_id, message_id, body, created_at, next_attempt_at, attempts) \
             SELECT id, $2, $3, $4, $4, 0 FROM webhooks WHERE {SUBSCRIBED}"
        ),
        &[
            (&message.kind.as_str(), Type::TEXT),
            (&message.id, Type::TEXT),
            (&nul_free(&message.body()).as_ref(), Type::TEXT),
            (&message.timestamp.unix_micros(), Type::INT8),
        ],
    )?)
}

/// Queues the message `build` makes (it may read through the same client), if any endpoint
/// receives `kind`.
pub(super) fn queue_if_wanted<C: GenericClient>(
    client: &mut C,
    kind: MessageKind,
    build: impl FnOnce(&mut C) -> Result<Message>,
) -> Result<()> {
    if wanted(client, kind)? {
        let message = build(client)?;
        queue(client, &message)?;
    }
    Ok(())
}
