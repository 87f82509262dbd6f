//! How the other files queue webhook messages inside their own write transactions.

use super::*;
use crate::webhook::{Message, MessageKind};

/// Endpoints subscribed to kind `?1` (the rule of [`crate::webhook::Webhook::receives`]).
const SUBSCRIBED: &str =
    "(events = '' AND ?1 <> 'access.denied') OR instr(events, ',' || ?1 || ',') > 0";

/// Whether any endpoint receives `kind`: when none does, a change builds no message.
pub(super) fn wanted(conn: &Connection, kind: MessageKind) -> Result<bool> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT EXISTS (SELECT 1 FROM webhooks WHERE {SUBSCRIBED})"
        ))?
        .query_row([kind.as_str()], |row| row.get(0))?)
}

/// Queues `message` for every endpoint that receives its kind; how many deliveries.
pub(super) fn queue(conn: &Connection, message: &Message) -> Result<u64> {
    let queued = conn
        .prepare_cached(&format!(
            "INSERT INTO webhook_deliveries \
             (webhook_id, message_id, body, created_at, next_attempt_at, attempts) \
             SELECT id, ?2, ?3, ?4, ?4, 0 FROM webhooks WHERE {SUBSCRIBED}"
        ))?
        .execute(params![
            message.kind.as_str(),
            message.id,
            message.body(),
            message.timestamp.unix_micros()
        ])?;
    Ok(queued as u64)
}

/// Queues the message `build` makes, if any endpoint receives `kind`.
pub(super) fn queue_if_wanted(
    conn: &Connection,
    kind: MessageKind,
    build: impl FnOnce() -> Result<Message>,
) -> Result<()> {
    if wanted(conn, kind)? {
        queue(conn, &build()?)?;
    }
    Ok(())
}
