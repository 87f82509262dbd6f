//! Tokens: [`TokenStore`] for [`PostgresStore`](super::PostgresStore).

use super::*;
use crate::token::TokenStore;

impl TokenStore for PostgresStore {
    fn create_token(&self, new: NewToken, now: Timestamp) -> Result<Token> {
        insert_token(&mut *self.conn()?, new, now, false)?.ok_or_else(conflict)
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
        tx.commit()?;
        Ok(token)
    }

    fn delete_token(&self, id: TokenId) -> Result<bool> {
        // Sessions go with it through ON DELETE CASCADE. The row lock waits for any admission
        // to this token in flight on another node.
        let deleted = self
            .conn()?
            .execute_typed("DELETE FROM tokens WHERE id = $1", &[(&id, Type::INT8)])?;
        self.node.forget_owner(id);
        Ok(deleted > 0)
    }
}
