//! Events and rosters: [`EventStore`] for [`PostgresStore`](super::PostgresStore).

use super::ticketing::corrupt;
use super::*;
use crate::account::{AccountId, EventStanding};
use crate::event::store::full;
use crate::event::{
    Event, EventFilter, EventId, EventPatch, EventStore, NewEvent, RosterEntry, RosterRole,
};

impl EventStore for PostgresStore {
    fn create_event(&self, event: NewEvent, now: Timestamp) -> Result<Event> {
        create_event(&mut *self.conn()?, event, now)
    }

    fn event(&self, id: EventId) -> Result<Option<Event>> {
        event(&mut *self.conn()?, id, false)
    }

    fn list_events(&self, filter: &EventFilter) -> Result<Page<Event>> {
        list_events(&mut *self.conn()?, filter)
    }

    fn update_event(&self, id: EventId, patch: &EventPatch, now: Timestamp) -> Result<Event> {
        update_event(&mut *self.conn()?, id, patch, now)
    }

    fn add_to_roster(
        &self,
        event: EventId,
        account: AccountId,
        roster: RosterRole,
        now: Timestamp,
    ) -> Result<bool> {
        add_to_roster(&mut *self.conn()?, event, account, roster, now)
    }

    fn roster(
        &self,
        event: EventId,
        roster: RosterRole,
        limit: u32,
        offset: u32,
    ) -> Result<Page<RosterEntry>> {
        roster_page(&mut *self.conn()?, event, roster, limit, offset)
    }

    fn roster_standing(&self, event: EventId, account: AccountId) -> Result<EventStanding> {
        roster_standing(&mut *self.conn()?, event, account)
    }

    fn standings_of(&self, account: AccountId) -> Result<Vec<(EventId, EventStanding)>> {
        let mut standings: Vec<(EventId, EventStanding)> = Vec::new();
        for row in self.conn()?.query(
            "SELECT event_id, roster FROM rosters WHERE account_id = $1 ORDER BY event_id",
            &[&account],
        )? {
            let event: EventId = row.try_get(0)?;
            if standings.last().map(|(e, _)| *e) != Some(event) {
                standings.push((event, EventStanding::default()));
            }
            if let Some((_, standing)) = standings.last_mut() {
                match row.try_get::<_, String>(1)?.as_str() {
                    "users" => standing.attendee = true,
                    "agents" => standing.agent = true,
                    "admins" => standing.admin = true,
                    _ => {}
                }
            }
        }
        Ok(standings)
    }
}

fn streams_json(streams: &[String]) -> Result<String> {
    serde_json::to_string(streams).map_err(|e| Error::storage(format!("encoding JSON: {e}")))
}

fn create_event(client: &mut impl GenericClient, new: NewEvent, now: Timestamp) -> Result<Event> {
    let row = client.query_one(
        "INSERT INTO events (title, title_key, starts_at, ends_at, capacity, streams, \
         single_entry, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
         RETURNING id",
        &[
            &new.title,
            &new.title_key(),
            &new.starts_at.unix_micros(),
            &new.ends_at.unix_micros(),
            &i64::from(new.capacity),
            &streams_json(&new.streams)?,
            &new.single_entry,
            &now.unix_micros(),
        ],
    )?;
    Ok(new.into_event(row.try_get(0)?, now))
}

fn list_events(client: &mut impl GenericClient, filter: &EventFilter) -> Result<Page<Event>> {
    let needle = filter.title.as_deref().unwrap_or_default().to_lowercase();
    let total: i64 = client
        .query_one(
            "SELECT COUNT(*) FROM events WHERE strpos(title_key, $1) > 0",
            &[&needle],
        )?
        .try_get(0)?;
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events e WHERE strpos(e.title_key, $1) > 0 \
         ORDER BY e.starts_at, e.id LIMIT $2 OFFSET $3"
    );
    let items = client
        .query(
            &sql,
            &[
                &needle,
                &i64::from(clamp_limit(filter.limit)),
                &i64::from(filter.offset),
            ],
        )?
        .iter()
        .map(event_from_row)
        .collect::<Result<Vec<_>>>()?;
    Ok(Page {
        items,
        total: u64::try_from(total).unwrap_or_default(),
    })
}

fn update_event(
    client: &mut ::postgres::Client,
    id: EventId,
    patch: &EventPatch,
    now: Timestamp,
) -> Result<Event> {
    let mut tx = read_committed(client)?;
    let current = event(&mut tx, id, true)?.ok_or(Error::NotFound { what: "event" })?;
    let next = patch.apply(&current, now)?;
    tx.execute(
        "UPDATE events SET title = $1, title_key = $2, starts_at = $3, ends_at = $4, \
         capacity = $5, streams = $6, single_entry = $7, updated_at = $8 WHERE id = $9",
        &[
            &next.title,
            &next.title.to_lowercase(),
            &next.starts_at.unix_micros(),
            &next.ends_at.unix_micros(),
            &i64::from(next.capacity),
            &streams_json(&next.streams)?,
            &next.single_entry,
            &now.unix_micros(),
            &id,
        ],
    )?;
    tx.commit()?;
    Ok(next)
}

fn add_to_roster(
    client: &mut ::postgres::Client,
    event_id: EventId,
    account_id: AccountId,
    roster: RosterRole,
    now: Timestamp,
) -> Result<bool> {
    let mut tx = read_committed(client)?;
    // The lock queues every addition to this event; the count below then sees them all.
    let event = event(&mut tx, event_id, true)?.ok_or(Error::NotFound { what: "event" })?;
    if tx
        .query_opt("SELECT 1 FROM accounts WHERE id = $1", &[&account_id])?
        .is_none()
    {
        return Err(Error::NotFound { what: "account" });
    }
    let already = tx
        .query_opt(
            "SELECT 1 FROM rosters WHERE event_id = $1 AND roster = $2 AND account_id = $3",
            &[&event_id, &roster.as_str(), &account_id],
        )?
        .is_some();
    if already {
        return Ok(false);
    }
    if roster == RosterRole::Users && event.registered >= u64::from(event.capacity) {
        return Err(full());
    }
    tx.execute(
        "INSERT INTO rosters (event_id, account_id, roster, added_at) VALUES ($1, $2, $3, $4)",
        &[&event_id, &account_id, &roster.as_str(), &now.unix_micros()],
    )?;
    tx.commit()?;
    Ok(true)
}

fn roster_standing(
    client: &mut impl GenericClient,
    event_id: EventId,
    account_id: AccountId,
) -> Result<EventStanding> {
    let mut standing = EventStanding::default();
    for row in client.query(
        "SELECT roster FROM rosters WHERE event_id = $1 AND account_id = $2",
        &[&event_id, &account_id],
    )? {
        match row.try_get::<_, String>(0)?.as_str() {
            "users" => standing.attendee = true,
            "agents" => standing.agent = true,
            "admins" => standing.admin = true,
            _ => {}
        }
    }
    Ok(standing)
}

const EVENT_COLUMNS: &str = "e.id, e.title, e.starts_at, e.ends_at, e.capacity, e.streams, \
     e.single_entry, e.created_at, e.updated_at, \
     (SELECT COUNT(*) FROM rosters r WHERE r.event_id = e.id AND r.roster = 'users')";

fn event_from_row(row: &Row) -> Result<Event> {
    let streams: String = row.try_get(5)?;
    Ok(Event {
        id: row.try_get(0)?,
        title: row.try_get(1)?,
        starts_at: Timestamp::from_unix_micros(row.try_get(2)?),
        ends_at: Timestamp::from_unix_micros(row.try_get(3)?),
        capacity: u32::try_from(row.try_get::<_, i64>(4)?).map_err(|e| corrupt("capacity", e))?,
        streams: serde_json::from_str(&streams).map_err(|e| corrupt("streams", e))?,
        single_entry: row.try_get(6)?,
        created_at: Timestamp::from_unix_micros(row.try_get(7)?),
        updated_at: Timestamp::from_unix_micros(row.try_get(8)?),
        registered: u64::try_from(row.try_get::<_, i64>(9)?).unwrap_or_default(),
    })
}

/// The event; with `lock`, its row stays locked until the caller's transaction ends.
///
/// The lock is its own statement: under READ COMMITTED a statement that waited for a lock still
/// evaluates its subqueries (the registered count) in the snapshot it started with, which would
/// miss the registration it waited for. The read after it takes a fresh snapshot.
fn event(client: &mut impl GenericClient, id: EventId, lock: bool) -> Result<Option<Event>> {
    if lock
        && client
            .query_opt("SELECT id FROM events WHERE id = $1 FOR UPDATE", &[&id])?
            .is_none()
    {
        return Ok(None);
    }
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events e WHERE e.id = $1");
    client
        .query_opt(&sql, &[&id])?
        .map(|row| event_from_row(&row))
        .transpose()
}

fn roster_page(
    client: &mut impl GenericClient,
    event_id: EventId,
    roster: RosterRole,
    limit: u32,
    offset: u32,
) -> Result<Page<RosterEntry>> {
    if client
        .query_opt("SELECT 1 FROM events WHERE id = $1", &[&event_id])?
        .is_none()
    {
        return Err(Error::NotFound { what: "event" });
    }
    let total: i64 = client
        .query_one(
            "SELECT COUNT(*) FROM rosters WHERE event_id = $1 AND roster = $2",
            &[&event_id, &roster.as_str()],
        )?
        .try_get(0)?;
    let items = client
        .query(
            "SELECT a.id, a.username, a.first_name, a.last_name, r.added_at \
             FROM rosters r JOIN accounts a ON a.id = r.account_id \
             WHERE r.event_id = $1 AND r.roster = $2 ORDER BY r.id LIMIT $3 OFFSET $4",
            &[
                &event_id,
                &roster.as_str(),
                &i64::from(clamp_limit(limit)),
                &i64::from(offset),
            ],
        )?
        .iter()
        .map(|row| {
            Ok(RosterEntry {
                account_id: row.try_get(0)?,
                username: row.try_get(1)?,
                first_name: row.try_get(2)?,
                last_name: row.try_get(3)?,
                added_at: Timestamp::from_unix_micros(row.try_get(4)?),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Page {
        items,
        total: u64::try_from(total).unwrap_or_default(),
    })
}
