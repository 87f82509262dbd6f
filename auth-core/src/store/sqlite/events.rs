//! Events and rosters: [`EventStore`] for [`SqliteStore`](super::SqliteStore).

use super::ticketing::{event, event_from_row, exists, EVENT_COLUMNS};
use super::*;
use crate::account::{AccountId, EventStanding};
use crate::event::store::full;
use crate::event::{
    Event, EventFilter, EventId, EventPatch, EventStore, NewEvent, RosterEntry, RosterRole,
};

impl EventStore for SqliteStore {
    fn create_event(&self, event: NewEvent, now: Timestamp) -> Result<Event> {
        self.writer.run(move |conn| create_event(conn, event, now))
    }

    fn event(&self, id: EventId) -> Result<Option<Event>> {
        ticketing::event(&*self.reader()?, id)
    }

    fn list_events(&self, filter: &EventFilter) -> Result<Page<Event>> {
        list_events(&*self.reader()?, filter)
    }

    fn update_event(&self, id: EventId, patch: &EventPatch, now: Timestamp) -> Result<Event> {
        let patch = patch.clone();
        self.writer
            .run(move |conn| update_event(conn, id, &patch, now))
    }

    fn add_to_roster(
        &self,
        event: EventId,
        account: AccountId,
        roster: RosterRole,
        now: Timestamp,
    ) -> Result<bool> {
        self.writer
            .run(move |conn| add_to_roster(conn, event, account, roster, now))
    }

    fn roster(
        &self,
        event: EventId,
        roster: RosterRole,
        limit: u32,
        offset: u32,
    ) -> Result<Page<RosterEntry>> {
        roster_page(&*self.reader()?, event, roster, limit, offset)
    }

    fn roster_standing(&self, event: EventId, account: AccountId) -> Result<EventStanding> {
        roster_standing(&*self.reader()?, event, account)
    }

    fn standings_of(&self, account: AccountId) -> Result<Vec<(EventId, EventStanding)>> {
        let conn = self.reader()?;
        let mut statement = conn.prepare_cached(
            "SELECT event_id, roster FROM rosters WHERE account_id = ?1 ORDER BY event_id",
        )?;
        let rows = statement.query_map([account], |row| {
            Ok((row.get::<_, EventId>(0)?, row.get::<_, String>(1)?))
        })?;
        let mut standings: Vec<(EventId, EventStanding)> = Vec::new();
        for row in rows {
            let (event, roster) = row?;
            if standings.last().map(|(e, _)| *e) != Some(event) {
                standings.push((event, EventStanding::default()));
            }
            if let Some((_, standing)) = standings.last_mut() {
                match roster.as_str() {
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

fn create_event(conn: &Connection, new: NewEvent, now: Timestamp) -> Result<Event> {
    let title_key = new.title_key();
    let streams = streams_json(&new.streams)?;
    conn.prepare_cached(
        "INSERT INTO events (title, title_key, starts_at, ends_at, capacity, streams, \
         single_entry, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
    )?
    .execute(params![
        new.title,
        title_key,
        new.starts_at.unix_micros(),
        new.ends_at.unix_micros(),
        new.capacity,
        streams,
        new.single_entry,
        now.unix_micros(),
    ])?;
    Ok(new.into_event(conn.last_insert_rowid(), now))
}

fn list_events(conn: &Connection, filter: &EventFilter) -> Result<Page<Event>> {
    let needle = filter.title.as_deref().unwrap_or_default().to_lowercase();
    let total: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM events WHERE instr(title_key, ?1) > 0")?
        .query_row([&needle], |row| row.get(0))?;
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events e WHERE instr(e.title_key, ?1) > 0 \
         ORDER BY e.starts_at, e.id LIMIT ?2 OFFSET ?3"
    );
    let items = conn
        .prepare_cached(&sql)?
        .query_map(
            params![needle, clamp_limit(filter.limit), filter.offset],
            event_from_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page {
        items,
        total: u64::try_from(total).unwrap_or_default(),
    })
}

fn update_event(
    conn: &Connection,
    id: EventId,
    patch: &EventPatch,
    now: Timestamp,
) -> Result<Event> {
    let current = event(conn, id)?.ok_or(Error::NotFound { what: "event" })?;
    let next = patch.apply(&current, now)?;
    conn.prepare_cached(
        "UPDATE events SET title = ?1, title_key = ?2, starts_at = ?3, ends_at = ?4, \
         capacity = ?5, streams = ?6, single_entry = ?7, updated_at = ?8 WHERE id = ?9",
    )?
    .execute(params![
        next.title,
        next.title.to_lowercase(),
        next.starts_at.unix_micros(),
        next.ends_at.unix_micros(),
        next.capacity,
        streams_json(&next.streams)?,
        next.single_entry,
        now.unix_micros(),
        id,
    ])?;
    Ok(next)
}

fn add_to_roster(
    conn: &Connection,
    event_id: EventId,
    account_id: AccountId,
    roster: RosterRole,
    now: Timestamp,
) -> Result<bool> {
    let event = event(conn, event_id)?.ok_or(Error::NotFound { what: "event" })?;
    if !exists(conn, "SELECT 1 FROM accounts WHERE id = ?1", &account_id)? {
        return Err(Error::NotFound { what: "account" });
    }
    let already = conn
        .prepare_cached(
            "SELECT 1 FROM rosters WHERE event_id = ?1 AND roster = ?2 AND account_id = ?3",
        )?
        .query_row(params![event_id, roster.as_str(), account_id], |_| Ok(()))
        .optional()?
        .is_some();
    if already {
        return Ok(false);
    }
    if roster == RosterRole::Users && event.registered >= u64::from(event.capacity) {
        return Err(full());
    }
    conn.prepare_cached(
        "INSERT INTO rosters (event_id, account_id, roster, added_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        event_id,
        account_id,
        roster.as_str(),
        now.unix_micros()
    ])?;
    Ok(true)
}

fn roster_standing(
    conn: &Connection,
    event_id: EventId,
    account_id: AccountId,
) -> Result<EventStanding> {
    let mut standing = EventStanding::default();
    let mut rows =
        conn.prepare_cached("SELECT roster FROM rosters WHERE event_id = ?1 AND account_id = ?2")?;
    let rosters = rows.query_map(params![event_id, account_id], |row| row.get::<_, String>(0))?;
    for roster in rosters {
        match roster?.as_str() {
            "users" => standing.attendee = true,
            "agents" => standing.agent = true,
            "admins" => standing.admin = true,
            _ => {}
        }
    }
    Ok(standing)
}

fn roster_page(
    conn: &Connection,
    event_id: EventId,
    roster: RosterRole,
    limit: u32,
    offset: u32,
) -> Result<Page<RosterEntry>> {
    if !exists(conn, "SELECT 1 FROM events WHERE id = ?1", &event_id)? {
        return Err(Error::NotFound { what: "event" });
    }
    let total: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM rosters WHERE event_id = ?1 AND roster = ?2")?
        .query_row(params![event_id, roster.as_str()], |row| row.get(0))?;
    let items = conn
        .prepare_cached(
            "SELECT a.id, a.username, a.first_name, a.last_name, r.added_at \
             FROM rosters r JOIN accounts a ON a.id = r.account_id \
             WHERE r.event_id = ?1 AND r.roster = ?2 ORDER BY r.id LIMIT ?3 OFFSET ?4",
        )?
        .query_map(
            params![event_id, roster.as_str(), clamp_limit(limit), offset],
            |row| {
                Ok(RosterEntry {
                    account_id: row.get(0)?,
                    username: row.get(1)?,
                    first_name: row.get(2)?,
                    last_name: row.get(3)?,
                    added_at: Timestamp::from_unix_micros(row.get(4)?),
                })
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page {
        items,
        total: u64::try_from(total).unwrap_or_default(),
    })
}
