//! Tokens: [`TokenStore`] for [`SqliteStore`](super::SqliteStore).

use super::*;
use crate::token::TokenStore;

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
            Ok(token)
        })
    }

    fn delete_token(&self, id: TokenId) -> Result<bool> {
        let live = Arc::clone(&self.live);
        // Sessions go with it through ON DELETE CASCADE.
        self.writer.run_then(
            move |conn| {
                let deleted = conn
                    .prepare_cached("DELETE FROM tokens WHERE id = ?1")?
                    .execute([id])?;
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
