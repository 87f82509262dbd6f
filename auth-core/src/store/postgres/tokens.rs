//! Tokens: [`TokenStore`] for [`PostgresStore`](super::PostgresStore).

use super::*;
use crate::token::TokenStore;
use crate::webhook::{Message, MessageKind};

impl TokenStore for PostgresStore {
    fn create_token(&self, new: NewToken, now: Timestamp) -> Result<Token> {
        let mut conn = self.conn()?;
        let mut tx = read_committed(&mut conn)?;
        let token = insert_token(&mut tx, new, now, false)?.ok_or_else(conflict)?;
        tx.commit()?;
        Ok(token)
    }

    fn upsert_token(&self, new: NewToken, now: Timestamp) -> Result<(Token, Upsert)> {
        let mut conn = self.conn()?;
        let mut tx = read_committed(&mut conn)?;
        // Another node may insert the same digest between our read and our insert: the insert
        // then does nothing, and the next read (a fresh snapshot) finds and locks its row.
        for _ in 0..3 {
            let existing = select_token(
                &mut tx,
                "token_hash = $1 FOR UPDATE",
                (&&new.digest.0[..], Type::BYTEA),
            )?;
            let outcome = match existing {
                None => match insert_token(&mut tx, new.clone(), now, true)? {
                    Some(token) => (token, Upsert::Created),
                    None => continue,
                },
                Some(existing) if new.matches(&existing) => (existing, Upsert::Unchanged),
                Some(existing) => {
                    let token = new.into_token(existing.id, existing.created_at, now);
                    write_settings(&mut tx, &token)?;
                    token_changed(&mut tx, MessageKind::TokenUpdated, &token, now)?;
                    (token, Upsert::Updated)
                }
            };
            tx.commit()?;
            return Ok(outcome);
        }
        Err(Error::storage(
            "upsert: the token kept appearing and disappearing under concurrent writes",
        ))
    }

    fn token(&self, id: TokenId) -> Result<Option<Token>> {
        select_token(&mut *self.conn()?, "id = $1", (&id, Type::INT8))
    }

    fn token_by_digest(&self, digest: &SecretDigest) -> Result<Option<std::sync::Arc<Token>>> {
        Ok(select_token(
            &mut *self.conn()?,
            "token_hash = $1",
            (&&digest.0[..], Type::BYTEA),
        )?
        .map(std::sync::Arc::new))
    }

    fn token_generation(&self) -> Result<u64> {
        let row = self
            .conn()?
            .query_typed_one("SELECT value FROM token_generation WHERE id = 1", &[])?;
        count(&row, 0)
    }

    fn token_digests(&self) -> Result<Vec<SecretDigest>> {
        self.conn()?
            .query_typed("SELECT token_hash FROM tokens", &[])?
            .iter()
            .map(|row| {
                let bytes: &[u8] = row.try_get(0)?;
                <[u8; 32]>::try_from(bytes)
                    .map(SecretDigest)
                    .map_err(|_| Error::storage("a token digest is not 32 bytes"))
            })
            .collect()
    }

    /// Counted by this node's listener from `auth_tokens` notifications (see `node_sessions`).
    fn token_writes_heard(&self) -> Option<u64> {
        self.node.token_writes_heard()
    }

    fn list_tokens(&self, filter: &TokenFilter) -> Result<Page<Token>> {
        let mut filters = Where::default();
        filters.text("status = $?", filter.status.map(TokenStatus::as_str));
        filters.text("user_id = $?", filter.user_id.as_deref());
        // Not LIKE: it treats `%`/`_` in the prefix as wildcards. `starts_with` compares the
        // characters themselves, case-sensitively.
        filters.text("starts_with(user_id, $?)", filter.user_id_prefix.as_deref());
        filters.page(
            &mut *self.conn()?,
            "tokens",
            TOKEN_COLUMNS,
            "id",
            (filter.limit, filter.offset),
            token_from_row,
        )
    }

    fn update_token(&self, id: TokenId, patch: TokenPatch, now: Timestamp) -> Result<Token> {
        let mut conn = self.conn()?;
        let mut tx = read_committed(&mut conn)?;
        let mut token = select_token(&mut tx, "id = $1 FOR UPDATE", (&id, Type::INT8))?
            .ok_or(Error::NotFound { what: "token" })?;
        patch.apply(&mut token)?;
        token.updated_at = now;
        write_settings(&mut tx, &token)?;
        token_changed(&mut tx, MessageKind::TokenUpdated, &token, now)?;
        tx.commit()?;
        Ok(token)
    }

    fn delete_token(&self, id: TokenId, now: Timestamp) -> Result<bool> {
        let mut conn = self.conn()?;
        let mut tx = read_committed(&mut conn)?;
        // Sessions go with it through ON DELETE CASCADE. The row lock waits for any admission
        // to this token in flight on another node; taken first, so that the sessions told of
        // below are the ones that go.
        let locked = tx
            .query_typed_opt(
                "SELECT id FROM tokens WHERE id = $1 FOR UPDATE",
                &[(&id, Type::INT8)],
            )?
            .is_some();
        if locked && outbox::wanted(&mut tx, MessageKind::SessionClosed)? {
            let live: Vec<SessionId> = tx
                .query_typed(
                    "SELECT id FROM sessions WHERE token_id = $1 AND expires_at > $2 \
                     AND terminated_at IS NULL",
                    &[(&id, Type::INT8), (&now.unix_micros(), Type::INT8)],
                )?
                .iter()
                .map(|row| row.try_get(0))
                .collect::<std::result::Result<_, _>>()?;
            for session in live {
                sessions::closed(&mut tx, session, CloseReason::Terminated, now)?;
            }
        }
        let deleted = tx.execute_typed("DELETE FROM tokens WHERE id = $1", &[(&id, Type::INT8)])?;
        if deleted > 0 {
            outbox::queue_if_wanted(&mut tx, MessageKind::TokenDeleted, |_| {
                Message::token_deleted(id, now)
            })?;
        }
        tx.commit()?;
        self.node.forget_owner(id);
        Ok(deleted > 0)
    }
}

const TOKEN_COLUMNS: &str = "id, token_hash, user_id, status, max_sessions, allowed_ips, \
     allowed_streams, valid_from, valid_until, meta, created_at, updated_at, token_prefix, \
     allowed_actions, on_limit";

fn token_from_row(row: &Row) -> Result<Token> {
    let digest: Vec<u8> = row.try_get(1)?;
    let status: String = row.try_get(3)?;
    let max_sessions: i64 = row.try_get(4)?;
    let ips: String = row.try_get(5)?;
    let streams: String = row.try_get(6)?;
    let meta: String = row.try_get(9)?;
    let actions: String = row.try_get(13)?;
    let actions: Vec<Action> =
        serde_json::from_str(&actions).map_err(|e| corrupt("allowed_actions", e))?;
    let ips: Vec<String> = serde_json::from_str(&ips).map_err(|e| corrupt("allowed_ips", e))?;
    let streams: Vec<String> =
        serde_json::from_str(&streams).map_err(|e| corrupt("allowed_streams", e))?;
    Ok(Token {
        id: row.try_get(0)?,
        digest: SecretDigest(
            digest
                .try_into()
                .map_err(|d: Vec<u8>| corrupt("token_hash", format!("{} bytes", d.len())))?,
        ),
        token_prefix: row.try_get(12)?,
        user_id: row.try_get(2)?,
        status: status
            .parse::<TokenStatus>()
            .map_err(|e| corrupt("status", e))?,
        max_sessions: u32::try_from(max_sessions).map_err(|e| corrupt("max_sessions", e))?,
        allowed_ips: IpAllowList::parse(&ips).map_err(|e| corrupt("allowed_ips", e))?,
        allowed_streams: StreamAllowList::stored(&streams)
            .map_err(|e| corrupt("allowed_streams", e))?,
        allowed_actions: ActionSet::parse(&actions).map_err(|e| corrupt("allowed_actions", e))?,
        on_limit: row
            .try_get::<_, String>(14)?
            .parse::<OnLimit>()
            .map_err(|e| corrupt("on_limit", e))?,
        valid_from: row
            .try_get::<_, Option<i64>>(7)?
            .map(Timestamp::from_unix_micros),
        valid_until: row
            .try_get::<_, Option<i64>>(8)?
            .map(Timestamp::from_unix_micros),
        meta: serde_json::from_str::<Map<String, Value>>(&meta).map_err(|e| corrupt("meta", e))?,
        created_at: Timestamp::from_unix_micros(row.try_get(10)?),
        updated_at: Timestamp::from_unix_micros(row.try_get(11)?),
    })
}

/// A token's settings as SQL values, numbered `$1`..`$10` in [`SETTINGS_ASSIGNMENTS`] order.
struct Settings {
    user_id: String,
    status: &'static str,
    max_sessions: i64,
    allowed_ips: String,
    allowed_streams: String,
    valid_from: Option<i64>,
    valid_until: Option<i64>,
    meta: String,
    allowed_actions: String,
    on_limit: &'static str,
}

const SETTINGS_ASSIGNMENTS: &str =
    "user_id = $1, status = $2, max_sessions = $3, allowed_ips = $4, \
     allowed_streams = $5, valid_from = $6, valid_until = $7, meta = $8, allowed_actions = $9, \
     on_limit = $10";

fn select_token(
    client: &mut impl GenericClient,
    clause: &str,
    param: (&(dyn ToSql + Sync), Type),
) -> Result<Option<Token>> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE {clause}");
    client
        .query_typed_opt(&sql, &[param])?
        .as_ref()
        .map(token_from_row)
        .transpose()
}

fn is_token_conflict(err: &::postgres::Error) -> bool {
    err.as_db_error().is_some_and(|db| {
        *db.code() == SqlState::UNIQUE_VIOLATION && db.constraint() == Some("tokens_token_hash_key")
    })
}

/// Inserts the token; `Ok(None)` when `on_conflict_do_nothing` and a token with its digest
/// exists, `Conflict` when not.
fn insert_token(
    client: &mut impl GenericClient,
    new: NewToken,
    now: Timestamp,
    on_conflict_do_nothing: bool,
) -> Result<Option<Token>> {
    let mut token = new.into_token(0, now, now);
    let settings = Settings::of(&token)?;
    let digest = &token.digest.0[..];
    let now_us = now.unix_micros();
    let mut params = settings.params().to_vec();
    params.extend([
        (&digest as &(dyn ToSql + Sync), Type::BYTEA),
        (&token.token_prefix, Type::TEXT),
        (&now_us, Type::INT8),
    ]);
    let sql = format!(
        "INSERT INTO tokens (user_id, status, max_sessions, allowed_ips, allowed_streams, \
         valid_from, valid_until, meta, allowed_actions, on_limit, token_hash, token_prefix, created_at, \
         updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) {} RETURNING id",
        if on_conflict_do_nothing {
            "ON CONFLICT (token_hash) DO NOTHING"
        } else {
            ""
        }
    );
    match client.query_typed_opt(&sql, &params) {
        Ok(Some(row)) => {
            token.id = row.try_get(0)?;
            token_changed(client, MessageKind::TokenCreated, &token, now)?;
            Ok(Some(token))
        }
        Ok(None) => Ok(None),
        Err(e) if is_token_conflict(&e) => Err(conflict()),
        Err(e) => Err(e.into()),
    }
}

/// Queues `token.created` or `token.updated`.
fn token_changed(
    client: &mut impl GenericClient,
    kind: MessageKind,
    token: &Token,
    now: Timestamp,
) -> Result<()> {
    outbox::queue_if_wanted(client, kind, |_| Message::token_changed(kind, token, now))
}

fn write_settings(client: &mut impl GenericClient, token: &Token) -> Result<()> {
    let settings = Settings::of(token)?;
    let updated_at = token.updated_at.unix_micros();
    let mut params = settings.params().to_vec();
    params.extend([
        (&updated_at as &(dyn ToSql + Sync), Type::INT8),
        (&token.id, Type::INT8),
    ]);
    let sql = format!("UPDATE tokens SET {SETTINGS_ASSIGNMENTS}, updated_at = $11 WHERE id = $12");
    client.execute_typed(&sql, &params)?;
    Ok(())
}

impl Settings {
    fn of(token: &Token) -> Result<Self> {
        let json = |v: serde_json::Result<String>| {
            v.map_err(|e| Error::storage(format!("encoding JSON: {e}")))
        };
        Ok(Settings {
            user_id: token.user_id.clone(),
            status: token.status.as_str(),
            max_sessions: i64::from(token.max_sessions),
            allowed_ips: json(serde_json::to_string(&token.allowed_ips))?,
            allowed_streams: json(serde_json::to_string(&token.allowed_streams))?,
            valid_from: token.valid_from.map(Timestamp::unix_micros),
            valid_until: token.valid_until.map(Timestamp::unix_micros),
            meta: json(serde_json::to_string(&token.meta))?,
            allowed_actions: json(serde_json::to_string(&token.allowed_actions))?,
            on_limit: token.on_limit.as_str(),
        })
    }

    fn params(&self) -> [(&(dyn ToSql + Sync), Type); 10] {
        [
            (&self.user_id, Type::TEXT),
            (&self.status, Type::TEXT),
            (&self.max_sessions, Type::INT8),
            (&self.allowed_ips, Type::TEXT),
            (&self.allowed_streams, Type::TEXT),
            (&self.valid_from, Type::INT8),
            (&self.valid_until, Type::INT8),
            (&self.meta, Type::TEXT),
            (&self.allowed_actions, Type::TEXT),
            (&self.on_limit, Type::TEXT),
        ]
    }
}
