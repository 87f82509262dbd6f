//! Tokens: [`TokenStore`] for [`SqliteStore`](super::SqliteStore).

use super::*;
use crate::session::CloseReason;
use crate::token::TokenStore;
use crate::webhook::{Message, MessageKind};

impl TokenStore for SqliteStore {
    fn create_token(&self, new: NewToken, now: Timestamp) -> Result<Token> {
        self.writer.run(move |conn| insert_token(conn, new, now))
    }

    fn upsert_token(&self, new: NewToken, now: Timestamp) -> Result<(Token, Upsert)> {
        self.writer.run(move |conn| {
            Ok(
                match select_token(conn, "token_hash = ?1", &new.digest.0)? {
                    None => (insert_token(conn, new, now)?, Upsert::Created),
                    Some(existing) if new.matches(&existing) => (existing, Upsert::Unchanged),
                    Some(existing) => {
                        let token = new.into_token(existing.id, existing.created_at, now);
                        write_settings(conn, &token)?;
                        token_changed(conn, MessageKind::TokenUpdated, &token, now)?;
                        (token, Upsert::Updated)
                    }
                },
            )
        })
    }

    fn token(&self, id: TokenId) -> Result<Option<Token>> {
        select_token(&*self.reader()?, "id = ?1", &id)
    }

    fn token_by_digest(&self, digest: &SecretDigest) -> Result<Option<Arc<Token>>> {
        Ok(select_token(&*self.reader()?, "token_hash = ?1", &digest.0)?.map(Arc::new))
    }

    fn token_generation(&self) -> Result<u64> {
        let conn = self.reader()?;
        let value: i64 = conn
            .prepare_cached("SELECT value FROM token_generation WHERE id = 1")?
            .query_row([], |row| row.get(0))?;
        Ok(u64::try_from(value).unwrap_or_default())
    }

    fn token_digests(&self) -> Result<Vec<SecretDigest>> {
        let conn = self.reader()?;
        let mut select = conn.prepare_cached("SELECT token_hash FROM tokens")?;
        let digests = select.query_map([], |row| row.get::<_, [u8; 32]>(0))?;
        Ok(digests
            .map(|digest| digest.map(SecretDigest))
            .collect::<rusqlite::Result<_>>()?)
    }

    fn list_tokens(&self, filter: &TokenFilter) -> Result<Page<Token>> {
        let mut filters = Where::default();
        filters.text("status = ?", filter.status.map(TokenStatus::as_str));
        filters.text("user_id = ?", filter.user_id.as_deref());
        if let Some(prefix) = &filter.user_id_prefix {
            // Not LIKE: it is case-insensitive and treats `%`/`_` in the prefix as wildcards.
            filters.add(
                "substr(user_id, 1, ?) = ?",
                [
                    SqlValue::Integer(prefix.chars().count() as i64),
                    SqlValue::Text(prefix.clone()),
                ],
            );
        }
        let conn = self.reader()?;
        filters.page(
            &conn,
            "tokens",
            TOKEN_COLUMNS,
            "id",
            (filter.limit, filter.offset),
            token_from_row,
        )
    }

    fn update_token(&self, id: TokenId, patch: TokenPatch, now: Timestamp) -> Result<Token> {
        self.writer.run(move |conn| {
            let mut token =
                select_token(conn, "id = ?1", &id)?.ok_or(Error::NotFound { what: "token" })?;
            patch.apply(&mut token)?;
            token.updated_at = now;
            write_settings(conn, &token)?;
            token_changed(conn, MessageKind::TokenUpdated, &token, now)?;
            Ok(token)
        })
    }

    fn delete_token(&self, id: TokenId, now: Timestamp) -> Result<bool> {
        let live = Arc::clone(&self.live);
        self.writer.run_then(
            move |conn| {
                // Its sessions go with it through ON DELETE CASCADE; tell of the live ones.
                if outbox::wanted(conn, MessageKind::SessionClosed)? {
                    let ids: Vec<SessionId> = conn
                        .prepare_cached(
                            "SELECT id FROM sessions WHERE token_id = ?1 AND expires_at > ?2 \
                             AND terminated_at IS NULL",
                        )?
                        .query_map(params![id, now.unix_micros()], |row| row.get(0))?
                        .collect::<rusqlite::Result<_>>()?;
                    for session in ids {
                        sessions::closed(conn, session, CloseReason::Terminated, now)?;
                    }
                }
                let deleted = conn
                    .prepare_cached("DELETE FROM tokens WHERE id = ?1")?
                    .execute([id])?;
                if deleted > 0 {
                    outbox::queue_if_wanted(conn, MessageKind::TokenDeleted, || {
                        Message::token_deleted(id, now)
                    })?;
                }
                Ok(deleted > 0)
            },
            move |&deleted| {
                if deleted {
                    lock_live(&live).remove_token(id);
                }
            },
        )
    }
}

const TOKEN_COLUMNS: &str = "id, token_hash, user_id, status, max_sessions, allowed_ips, \
     allowed_streams, valid_from, valid_until, meta, created_at, updated_at, token_prefix, \
     allowed_actions, on_limit";

fn token_from_row(row: &Row<'_>) -> rusqlite::Result<Token> {
    let status: String = row.get(3)?;
    let ips: String = row.get(5)?;
    let streams: String = row.get(6)?;
    let meta: String = row.get(9)?;
    let actions: String = row.get(13)?;
    let actions: Vec<Action> =
        serde_json::from_str(&actions).map_err(|e| corrupt("allowed_actions", e))?;
    let ips: Vec<String> = serde_json::from_str(&ips).map_err(|e| corrupt("allowed_ips", e))?;
    let streams: Vec<String> =
        serde_json::from_str(&streams).map_err(|e| corrupt("allowed_streams", e))?;
    Ok(Token {
        id: row.get(0)?,
        digest: SecretDigest(row.get(1)?),
        token_prefix: row.get(12)?,
        user_id: row.get(2)?,
        status: status
            .parse::<TokenStatus>()
            .map_err(|e| corrupt("status", e))?,
        max_sessions: row.get(4)?,
        allowed_ips: IpAllowList::parse(&ips).map_err(|e| corrupt("allowed_ips", e))?,
        allowed_streams: StreamAllowList::stored(&streams)
            .map_err(|e| corrupt("allowed_streams", e))?,
        allowed_actions: ActionSet::parse(&actions).map_err(|e| corrupt("allowed_actions", e))?,
        on_limit: row
            .get::<_, String>(14)?
            .parse::<OnLimit>()
            .map_err(|e| corrupt("on_limit", e))?,
        valid_from: row
            .get::<_, Option<i64>>(7)?
            .map(Timestamp::from_unix_micros),
        valid_until: row
            .get::<_, Option<i64>>(8)?
            .map(Timestamp::from_unix_micros),
        meta: serde_json::from_str::<Map<String, Value>>(&meta).map_err(|e| corrupt("meta", e))?,
        created_at: Timestamp::from_unix_micros(row.get(10)?),
        updated_at: Timestamp::from_unix_micros(row.get(11)?),
    })
}

/// A token's settings as SQL values, in `SETTINGS_ASSIGNMENTS` order.
fn settings_values(token: &Token) -> Result<[SqlValue; 10]> {
    let json = |v: serde_json::Result<String>| {
        v.map_err(|e| Error::storage(format!("encoding JSON: {e}")))
    };
    Ok([
        SqlValue::Text(token.user_id.clone()),
        SqlValue::Text(token.status.as_str().to_owned()),
        SqlValue::Integer(i64::from(token.max_sessions)),
        SqlValue::Text(json(serde_json::to_string(&token.allowed_ips))?),
        SqlValue::Text(json(serde_json::to_string(&token.allowed_streams))?),
        token
            .valid_from
            .map_or(SqlValue::Null, |t| SqlValue::Integer(t.unix_micros())),
        token
            .valid_until
            .map_or(SqlValue::Null, |t| SqlValue::Integer(t.unix_micros())),
        SqlValue::Text(json(serde_json::to_string(&token.meta))?),
        SqlValue::Text(json(serde_json::to_string(&token.allowed_actions))?),
        SqlValue::Text(token.on_limit.as_str().to_owned()),
    ])
}

const SETTINGS_ASSIGNMENTS: &str =
    "user_id = ?1, status = ?2, max_sessions = ?3, allowed_ips = ?4, \
     allowed_streams = ?5, valid_from = ?6, valid_until = ?7, meta = ?8, allowed_actions = ?9, \
     on_limit = ?10";

fn select_token(
    conn: &Connection,
    clause: &str,
    param: &dyn rusqlite::ToSql,
) -> Result<Option<Token>> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE {clause}");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([param], token_from_row)
        .optional()?)
}

fn insert_token(conn: &Connection, new: NewToken, now: Timestamp) -> Result<Token> {
    let mut token = new.into_token(0, now, now);
    let values = settings_values(&token)?;
    let result = conn
        .prepare_cached(
            "INSERT INTO tokens (user_id, status, max_sessions, allowed_ips, allowed_streams, \
             valid_from, valid_until, meta, allowed_actions, on_limit, token_hash, token_prefix, \
             created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)",
        )?
        .execute(params_from_iter(values.iter().chain([
            &SqlValue::Blob(token.digest.0.to_vec()),
            &SqlValue::Text(token.token_prefix.clone()),
            &SqlValue::Integer(now.unix_micros()),
        ])));
    match result {
        Ok(_) => {
            token.id = conn.last_insert_rowid();
            token_changed(conn, MessageKind::TokenCreated, &token, now)?;
            Ok(token)
        }
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Err(Error::Conflict {
                field: "token",
                message: "a token with this value already exists".into(),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Queues `token.created` or `token.updated`.
fn token_changed(
    conn: &Connection,
    kind: MessageKind,
    token: &Token,
    now: Timestamp,
) -> Result<()> {
    outbox::queue_if_wanted(conn, kind, || Message::token_changed(kind, token, now))
}

fn write_settings(conn: &Connection, token: &Token) -> Result<()> {
    let values = settings_values(token)?;
    let sql = format!("UPDATE tokens SET {SETTINGS_ASSIGNMENTS}, updated_at = ?11 WHERE id = ?12");
    conn.prepare_cached(&sql)?
        .execute(params_from_iter(values.iter().chain([
            &SqlValue::Integer(token.updated_at.unix_micros()),
            &SqlValue::Integer(token.id),
        ])))?;
    Ok(())
}
