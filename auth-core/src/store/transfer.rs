//! Moving a deployment's data between stores: SQLite to PostgreSQL when one node grows into
//! several, and back (`auth-server export` / `import`).
//!
//! The copy is table by table and row by row, every column, ids included, so sessions still
//! point at their tokens and nothing is re-derived. Both SQL stores use the same table and column
//! names (a test holds them to it, and another fails when a migration adds a table that is
//! missing from [`TABLES`]), so nothing here knows what a token is.
//!
//! # Format
//! JSON lines:
//! 1. a header `{"format": "auth-server-export", "version": 1, "key_check": "<hex>"}`;
//! 2. for each table, `{"table": NAME, "columns": [..]}` and then one JSON array per row, in
//!    column order (integers, floats, strings, `null`, and `{"hex": ".."}` for bytes);
//! 3. a trailer `{"end": {"rows": {NAME: COUNT, ..}}}`.
//!
//! An import checks the trailer's counts, so a truncated file fails instead of loading half a
//! deployment; it runs in one transaction per file (SQLite: per database file), and only into an
//! empty database. `key_check` fingerprints the token hashing key: stored tokens are HMACs under
//! it, and a target with another key would hold tokens nobody can present.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

pub const FORMAT: &str = "auth-server-export";
pub const VERSION: u64 = 1;

/// The tables an export carries, parents before children (foreign keys point backwards).
pub const TABLES: &[&str] = &[
    "tokens",
    "sessions",
    "session_bans",
    "access_logs",
    "signing_keys",
    "signed_revocations",
    "accounts",
    "events",
    "rosters",
    "tickets",
    "ticket_uses",
    "revoked_access_tokens",
    "webhooks",
    "webhook_deliveries",
];

/// Tables that hold a store's own bookkeeping, rebuilt by the target: never copied.
pub const BOOKKEEPING: &[&str] = &["schema_migrations", "token_generation", "sqlite_sequence"];

/// One value of one column, in the types both stores share.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Cell {
    fn to_json(&self) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Integer(i) => json!(i),
            Cell::Real(f) => json!(f),
            Cell::Text(s) => json!(s),
            Cell::Blob(b) => json!({ "hex": hex::encode(b) }),
        }
    }

    fn from_json(value: Value) -> std::result::Result<Cell, String> {
        Ok(match value {
            Value::Null => Cell::Null,
            Value::Bool(b) => Cell::Integer(i64::from(b)),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Cell::Integer(i),
                None => Cell::Real(n.as_f64().ok_or("a number out of range")?),
            },
            Value::String(s) => Cell::Text(s),
            Value::Object(mut o) => match o.remove("hex") {
                Some(Value::String(h)) if o.is_empty() => {
                    Cell::Blob(hex::decode(h).map_err(|e| format!("bad hex bytes: {e}"))?)
                }
                _ => return Err("an object that is not {\"hex\": ...}".into()),
            },
            Value::Array(_) => return Err("a nested array".into()),
        })
    }
}

/// Receives an export, table by table.
pub trait ExportSink {
    /// A table starts; its rows follow, with values in `columns` order.
    fn table(&mut self, name: &str, columns: &[String]) -> Result<()>;
    fn row(&mut self, row: &[Cell]) -> Result<()>;
}

/// A store whose data can be copied out and into another.
pub trait Transfer {
    /// Every table of [`TABLES`] present in the store, in that order, from one consistent
    /// snapshot.
    fn export(&self, sink: &mut dyn ExportSink) -> Result<()>;

    /// Starts an import; fails with [`Error::Conflict`] unless every table of [`TABLES`] is
    /// empty. Nothing is visible to other connections until [`Import::commit`]; dropping the
    /// import unfinished rolls it back.
    fn begin_import(&self) -> Result<Box<dyn Import + '_>>;
}

/// An import in progress.
pub trait Import {
    /// Inserts rows of `table` (one of [`TABLES`]) with their values in `columns` order.
    fn insert(&mut self, table: &str, columns: &[String], rows: &[Vec<Cell>]) -> Result<()>;

    /// Makes everything inserted visible, and sets each table's id generator past the ids that
    /// came in.
    fn commit(self: Box<Self>) -> Result<()>;
}

/// Rows per table, as written or read.
pub type Counts = BTreeMap<String, u64>;

/// A column name as it may appear in SQL unquoted: a file read back is input like any other, and
/// its names reach statement text.
pub fn check_identifier(name: &str) -> Result<&str> {
    let mut chars = name.chars();
    let valid = matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && name.len() <= 63;
    if valid {
        Ok(name)
    } else {
        Err(Error::invalid(
            "input",
            format!("{name:?} is not a column name"),
        ))
    }
}

struct LineWriter<'w> {
    out: &'w mut dyn Write,
    counts: Counts,
    current: Option<String>,
}

impl LineWriter<'_> {
    fn line(&mut self, value: &Value) -> Result<()> {
        serde_json::to_writer(&mut *self.out, value)
            .map_err(|e| Error::storage(format!("cannot write the export: {e}")))?;
        self.out
            .write_all(b"\n")
            .map_err(|e| Error::storage(format!("cannot write the export: {e}")))
    }
}

impl ExportSink for LineWriter<'_> {
    fn table(&mut self, name: &str, columns: &[String]) -> Result<()> {
        self.counts.insert(name.to_owned(), 0);
        self.current = Some(name.to_owned());
        self.line(&json!({ "table": name, "columns": columns }))
    }

    fn row(&mut self, row: &[Cell]) -> Result<()> {
        if let Some(count) = self.current.as_ref().and_then(|t| self.counts.get_mut(t)) {
            *count += 1;
        }
        self.line(&Value::Array(row.iter().map(Cell::to_json).collect()))
    }
}

/// Writes `store`'s data to `out` in the format above; returns the rows written per table.
pub fn export(store: &dyn Transfer, key_check: &str, out: &mut dyn Write) -> Result<Counts> {
    let mut writer = LineWriter {
        out,
        counts: Counts::new(),
        current: None,
    };
    writer.line(&json!({ "format": FORMAT, "version": VERSION, "key_check": key_check }))?;
    store.export(&mut writer)?;
    let counts = std::mem::take(&mut writer.counts);
    writer.line(&json!({ "end": { "rows": counts } }))?;
    writer
        .out
        .flush()
        .map_err(|e| Error::storage(format!("cannot write the export: {e}")))?;
    Ok(counts)
}

/// Rows handed to the store at once: bounds memory on large access logs.
const IMPORT_BATCH: usize = 1000;

/// Reads an export from `input` into `store`, which must be empty and hash tokens under the key
/// `key_check` fingerprints; returns the rows read per table. All or nothing: any error (a bad
/// line, a truncated file, a database error) leaves the store as it was.
pub fn import(store: &dyn Transfer, key_check: &str, input: &mut dyn BufRead) -> Result<Counts> {
    let mut lines = input.lines().enumerate().map(|(index, line)| {
        let line = line.map_err(|e| Error::storage(format!("cannot read the input: {e}")))?;
        serde_json::from_str::<Value>(&line)
            .map_err(|e| bad_line(index + 1, format!("not JSON: {e}")))
            .map(|value| (index + 1, value))
    });
    let (_, header) = lines
        .next()
        .ok_or_else(|| Error::invalid("input", "empty input: not an export"))??;
    if header.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Err(bad_line(1, format!("not an {FORMAT} file")));
    }
    let version = header.get("version").and_then(Value::as_u64);
    if version != Some(VERSION) {
        return Err(bad_line(
            1,
            format!("format version {version:?}; this build reads {VERSION}"),
        ));
    }
    if header.get("key_check").and_then(Value::as_str) != Some(key_check) {
        return Err(Error::invalid(
            "token_hash_key",
            "the export was made under another token hashing key: its tokens would be unknown \
             here. Set TOKEN_HASH_KEY to the source's key (for SQLite, the hex in the \
             token-hash.key file beside the database)",
        ));
    }

    let mut import = store.begin_import()?;
    let mut counts = Counts::new();
    let mut table: Option<(String, Vec<String>)> = None;
    let mut batch: Vec<Vec<Cell>> = Vec::new();
    let mut ended = None;
    for line in lines {
        let (number, value) = line?;
        if ended.is_some() {
            return Err(bad_line(number, "data after the end marker"));
        }
        match value {
            Value::Array(values) => {
                let Some((name, columns)) = &table else {
                    return Err(bad_line(number, "a row before any table"));
                };
                if values.len() != columns.len() {
                    return Err(bad_line(
                        number,
                        format!("{} values for {} columns", values.len(), columns.len()),
                    ));
                }
                let row = values
                    .into_iter()
                    .map(Cell::from_json)
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| bad_line(number, e))?;
                batch.push(row);
                *counts.entry(name.clone()).or_default() += 1;
                if batch.len() >= IMPORT_BATCH {
                    import.insert(name, columns, &batch)?;
                    batch.clear();
                }
            }
            Value::Object(object) => {
                if let Some((name, columns)) = &table {
                    import.insert(name, columns, &batch)?;
                    batch.clear();
                }
                if let Some(end) = object.get("end") {
                    ended = Some(end.clone());
                    table = None;
                } else {
                    table = Some(table_start(number, &object, &counts)?);
                    if let Some((name, _)) = &table {
                        counts.insert(name.clone(), 0);
                    }
                }
            }
            _ => {
                return Err(bad_line(
                    number,
                    "neither a table, a row nor the end marker",
                ))
            }
        }
    }
    let Some(end) = ended else {
        return Err(Error::invalid(
            "input",
            "the export ends without its end marker: truncated? Nothing was imported",
        ));
    };
    let expected: Counts = serde_json::from_value(end.get("rows").cloned().unwrap_or_default())
        .map_err(|e| Error::invalid("input", format!("bad end marker: {e}")))?;
    if expected != counts {
        return Err(Error::invalid(
            "input",
            format!("the end marker counts {expected:?} rows, the file holds {counts:?}"),
        ));
    }
    import.commit()?;
    Ok(counts)
}

fn table_start(
    number: usize,
    object: &Map<String, Value>,
    seen: &Counts,
) -> Result<(String, Vec<String>)> {
    let name = object
        .get("table")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_line(number, "neither a table, a row nor the end marker"))?;
    if !TABLES.contains(&name) {
        return Err(bad_line(
            number,
            format!("table {name:?} is unknown to this build (a newer export?)"),
        ));
    }
    if seen.contains_key(name) {
        return Err(bad_line(number, format!("table {name:?} appears twice")));
    }
    let columns = object
        .get("columns")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_line(number, "a table without its columns"))?
        .iter()
        .map(|c| {
            c.as_str()
                .ok_or_else(|| bad_line(number, "a column name that is not a string"))
                .and_then(|c| check_identifier(c).map(str::to_owned))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((name.to_owned(), columns))
}

fn bad_line(number: usize, why: impl std::fmt::Display) -> Error {
    Error::invalid("input", format!("line {number}: {why}"))
}

/// Why an import target refuses: it already holds data.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn not_empty(table: &str) -> Error {
    Error::Conflict {
        field: "database",
        message: format!(
            "the target database already holds {table}; import only into an empty database"
        ),
    }
}

#[cfg(all(test, feature = "tickets", feature = "postgres"))]
pub(crate) mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::event::RosterRole;
    use crate::prelude::*;
    use crate::session::{Admission, SessionClaim, SessionOwner};
    use crate::signed_token::keys::KeyVault;
    use crate::signed_token::Algorithm;
    use crate::store::testkit::{hasher, new_account, new_event, spec, T0};
    use crate::ticket::NewTicket;
    use crate::{AccessLogEntry, AccessResult};
    use std::time::Duration;

    const LEASE: Duration = Duration::from_secs(210);

    /// A store with something in every table: tokens, live and terminated sessions, and access
    /// logs with awkward text (quotes, non-ASCII, a NUL-free control character).
    pub(crate) fn fill<S: Store + TicketingStore>(store: &S) {
        let now = T0;
        // Subscribed first, so that what follows queues deliveries too.
        let webhook = crate::webhook::NewWebhook::new(
            "http://127.0.0.1:9/hooks".into(),
            vec![],
            "transfer \"é\"".into(),
        )
        .unwrap();
        store.create_webhook(webhook, now).unwrap();
        let a = store
            .create_token(spec("transfer-a", "alice", 2), now)
            .unwrap();
        let b = store
            .create_token(spec("transfer-b", "bob \"q\"", 0), now)
            .unwrap();
        let lease = now.saturating_add(LEASE);
        for (token, key) in [(&a, "id:1"), (&a, "id:2"), (&b, "addr:10.0.0.1|hls|x")] {
            let claim = SessionClaim {
                owner: SessionOwner::token(token.id),
                key,
                max_sessions: token.max_sessions,
                user_id: &token.user_id,
                stream: "news \"é\" \u{1}",
                ip: "10.0.0.1".parse().unwrap(),
                proto: "hls",
                source: "nginx-rtmp",
                media_session_id: Some(key),
                evict_oldest: false,
            };
            let admission = store.admit_session(&claim, now, lease).unwrap();
            assert!(matches!(admission, Admission::Admitted { .. }));
        }
        let signed = SessionClaim {
            owner: SessionOwner::signed(b"transfer-tag"),
            key: "id:signed",
            max_sessions: 1,
            user_id: "carol",
            stream: "conf/main",
            ip: "10.0.0.2".parse().unwrap(),
            proto: "hls",
            source: "",
            media_session_id: None,
            evict_oldest: false,
        };
        let admission = store.admit_session(&signed, now, lease).unwrap();
        assert!(matches!(admission, Admission::Admitted { .. }));
        let vault = KeyVault::new(&crate::store::testkit::hasher()).unwrap();
        for (kid, algorithm) in [("t-ed", Algorithm::Ed25519), ("t-mac", Algorithm::Hs256)] {
            let key = vault.generate(kid, algorithm, now).unwrap();
            store.insert_signing_key(&key).unwrap();
        }
        assert!(store.retire_signing_key("t-mac", now).unwrap());
        let sessions = store.sessions(&Default::default(), now).unwrap();
        assert!(store
            .terminate_session(sessions[0].id, crate::session::CloseReason::Terminated, now)
            .unwrap());
        store
            .ban(SessionOwner::token(a.id), "news", now.saturating_add(LEASE))
            .unwrap();
        let entries: Vec<AccessLogEntry> = (0..2500)
            .map(|i| AccessLogEntry {
                at: Timestamp::from_unix_micros(now.unix_micros() + i),
                token_id: Some(a.id),
                token_prefix: Some("transf".into()),
                user_id: (i % 3 != 0).then(|| "alice".into()),
                stream: format!("stream-{i}"),
                ip: "10.0.0.1".into(),
                proto: "hls".into(),
                request_type: "new_session",
                session_id: None,
                result: if i % 2 == 0 {
                    AccessResult::Allowed
                } else {
                    AccessResult::Denied
                },
                reason: (i % 2 == 1).then_some("ip_not_allowed"),
                latency_us: 12,
            })
            .collect();
        store.append_access_logs(&entries).unwrap();

        // Every other table: a signing key, accounts, an event with its rosters, tickets, a
        // door check, a revoked access token.
        let vault = crate::signed_token::keys::KeyVault::new(&hasher()).unwrap();
        let key = vault
            .generate("transfer-1", crate::signed_token::Algorithm::Ed25519, now)
            .unwrap();
        store.insert_signing_key(&key).unwrap();
        let holder = store.create_account(new_account("holder"), now).unwrap();
        let agent = store.create_account(new_account("agent"), now).unwrap();
        let event = store
            .create_event(new_event("Transfer", 10, 0), now)
            .unwrap();
        store
            .add_to_roster(event.id, holder.id, RosterRole::Users, now)
            .unwrap();
        store
            .add_to_roster(event.id, agent.id, RosterRole::Agents, now)
            .unwrap();
        let ticket = store
            .create_ticket(
                NewTicket {
                    event_id: event.id,
                    holder_id: holder.id,
                    salt: [7; crate::ticket::SALT_LEN],
                },
                now,
            )
            .unwrap();
        store
            .use_ticket(ticket.id, 42, Some(agent.id), true, now)
            .unwrap();
        store
            .revoke_access_token("jti-Transfer-b", now.saturating_add(LEASE))
            .unwrap();
        store
            .revoke_access_token("jti-transfer-a", now.saturating_add(LEASE))
            .unwrap();
    }

    /// An export as text, without its header (which names the key, not the data).
    pub(crate) fn export_body(store: &dyn Transfer) -> String {
        let mut out = Vec::new();
        export(store, "k", &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        text.split_once('\n').unwrap().1.to_owned()
    }

    /// Imports `text` (an export made with key check "k").
    pub(crate) fn import_text(store: &dyn Transfer, text: &str) -> Result<Counts> {
        import(store, "k", &mut text.as_bytes())
    }

    #[test]
    fn cells_survive_json() {
        for cell in [
            Cell::Null,
            Cell::Integer(i64::MIN),
            Cell::Real(1.5),
            Cell::Text("{\"hex\":\"00\"}".into()),
            Cell::Blob(vec![0, 255]),
        ] {
            assert_eq!(Cell::from_json(cell.to_json()).unwrap(), cell);
        }
        assert!(Cell::from_json(json!({"hex": "zz"})).is_err());
        assert!(Cell::from_json(json!({"other": 1})).is_err());
    }

    #[test]
    fn identifiers_are_checked_before_they_reach_sql() {
        assert!(check_identifier("token_hash").is_ok());
        for bad in ["", "Id", "id; DROP TABLE tokens", "1id", "a\"b"] {
            assert!(check_identifier(bad).is_err(), "{bad:?}");
        }
    }
}
