//! [`Transfer`] for PostgreSQL. The export reads one REPEATABLE READ snapshot through a cursor
//! (a large access log never sits in memory whole); the import is one transaction on one pooled
//! connection, so other nodes see all of it or none.

use ::postgres::types::{ToSql, Type};
use r2d2::PooledConnection;

use super::{nul_free, Manager, PostgresStore};
use crate::error::{Error, Result};
use crate::store::transfer::{
    check_identifier, not_empty, Cell, ExportSink, Import, Transfer, TABLES,
};

/// Rows fetched from the cursor at a time.
const FETCH: i32 = 1000;

/// Column names of `table` in the connection's current schema, in table order; empty if there
/// is no such table.
pub(crate) fn columns_of(
    client: &mut impl ::postgres::GenericClient,
    table: &str,
) -> Result<Vec<String>> {
    let rows = client.query(
        "SELECT column_name::TEXT FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        &[&table],
    )?;
    rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
}

/// Every table of the current schema with its columns, for the schema tests.
#[cfg(test)]
pub(crate) fn table_columns(client: &mut ::postgres::Client) -> Result<Vec<(String, Vec<String>)>> {
    let names: Vec<String> = client
        .query(
            "SELECT table_name::TEXT FROM information_schema.tables \
             WHERE table_schema = current_schema() ORDER BY table_name",
            &[],
        )?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<std::result::Result<_, _>>()?;
    names
        .into_iter()
        .map(|name| {
            let columns = columns_of(client, &name)?;
            Ok((name, columns))
        })
        .collect()
}

fn cell(row: &::postgres::Row, index: usize, what: &dyn Fn() -> String) -> Result<Cell> {
    let ty = row.columns()[index].type_();
    let cell = match *ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(index)?.map(Cell::Integer),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(index)?
            .map(|i| Cell::Integer(i.into())),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(index)?
            .map(|i| Cell::Integer(i.into())),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(index)?
            .map(|b| Cell::Integer(b.into())),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(index)?.map(Cell::Real),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(index)?
            .map(|f| Cell::Real(f.into())),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
            row.try_get::<_, Option<String>>(index)?.map(Cell::Text)
        }
        Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(index)?.map(Cell::Blob),
        _ => {
            return Err(Error::storage(format!(
                "{}: type {ty} has no export form; add it to the transfer module",
                what()
            )))
        }
    };
    Ok(cell.unwrap_or(Cell::Null))
}

/// `ORDER BY` terms for `columns` of `table`: `COLLATE "C"` only where the column is text (other
/// types refuse a collation).
fn text_order(
    client: &mut impl ::postgres::GenericClient,
    table: &str,
    columns: &[String],
) -> Result<String> {
    let rows = client.query(
        "SELECT column_name::TEXT, data_type::TEXT FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1",
        &[&table],
    )?;
    let mut text = std::collections::HashSet::new();
    for row in rows {
        let (name, ty): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        if matches!(ty.as_str(), "text" | "character varying" | "character") {
            text.insert(name);
        }
    }
    Ok(columns
        .iter()
        .map(|c| {
            if text.contains(c) {
                format!("{c} COLLATE \"C\" NULLS FIRST")
            } else {
                format!("{c} NULLS FIRST")
            }
        })
        .collect::<Vec<_>>()
        .join(", "))
}

impl Transfer for PostgresStore {
    fn export(&self, sink: &mut dyn ExportSink) -> Result<()> {
        let mut conn = self.conn()?;
        let mut tx = conn
            .build_transaction()
            .isolation_level(::postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        for table in TABLES {
            let columns = columns_of(&mut tx, table)?;
            if columns.is_empty() {
                continue;
            }
            sink.table(table, &columns)?;
            let list = columns
                .iter()
                .map(|c| check_identifier(c))
                .collect::<Result<Vec<_>>>()?
                .join(", ");
            // The order SQLite's export gives: every column left to right, text by bytes
            // (SQLite's BINARY collation is "C"), NULLs first.
            let order = text_order(&mut tx, table, &columns)?;
            let portal = tx.bind(&format!("SELECT {list} FROM {table} ORDER BY {order}"), &[])?;
            let mut cells = Vec::with_capacity(columns.len());
            loop {
                let rows = tx.query_portal(&portal, FETCH)?;
                for row in &rows {
                    cells.clear();
                    for (index, column) in columns.iter().enumerate() {
                        cells.push(cell(row, index, &|| format!("{table}.{}", column))?);
                    }
                    sink.row(&cells)?;
                }
                if rows.len() < FETCH as usize {
                    break;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn begin_import(&self) -> Result<Box<dyn Import + '_>> {
        let mut conn = self.conn()?;
        conn.batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED")?;
        let mut import = PostgresImport {
            conn,
            finished: false,
        };
        for table in TABLES {
            // The lock keeps another importer (or a node's first write) from slipping in between
            // this check and the commit.
            import
                .conn
                .batch_execute(&format!("LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"))?;
            let any: bool = import
                .conn
                .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {table})"), &[])?
                .try_get(0)?;
            if any {
                return Err(not_empty(table));
            }
        }
        Ok(Box::new(import))
    }
}

struct PostgresImport {
    conn: PooledConnection<Manager>,
    finished: bool,
}

/// `cell` as a parameter of type `ty`, or why it cannot be one.
fn param(cell: &Cell, ty: &Type) -> std::result::Result<Box<dyn ToSql + Sync>, String> {
    let mismatch = || format!("{cell:?} cannot be stored as {ty}");
    Ok(match (cell, ty) {
        (Cell::Null, &Type::INT8) => Box::new(None::<i64>),
        (Cell::Null, &Type::INT4) => Box::new(None::<i32>),
        (Cell::Null, &Type::INT2) => Box::new(None::<i16>),
        (Cell::Null, &Type::BOOL) => Box::new(None::<bool>),
        (Cell::Null, &Type::FLOAT8) => Box::new(None::<f64>),
        (Cell::Null, &Type::BYTEA) => Box::new(None::<Vec<u8>>),
        (Cell::Null, _) => Box::new(None::<String>),
        (Cell::Integer(i), &Type::INT8) => Box::new(*i),
        (Cell::Integer(i), &Type::INT4) => Box::new(i32::try_from(*i).map_err(|_| mismatch())?),
        (Cell::Integer(i), &Type::INT2) => Box::new(i16::try_from(*i).map_err(|_| mismatch())?),
        (Cell::Integer(i), &Type::BOOL) => Box::new(*i != 0),
        #[allow(clippy::cast_precision_loss)]
        (Cell::Integer(i), &Type::FLOAT8) => Box::new(*i as f64),
        (Cell::Real(f), &Type::FLOAT8) => Box::new(*f),
        (Cell::Text(t), &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR) => {
            Box::new(nul_free(t).into_owned())
        }
        (Cell::Blob(b), &Type::BYTEA) => Box::new(b.clone()),
        _ => return Err(mismatch()),
    })
}

impl Import for PostgresImport {
    fn insert(&mut self, table: &str, columns: &[String], rows: &[Vec<Cell>]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let names = columns
            .iter()
            .map(|c| check_identifier(c))
            .collect::<Result<Vec<_>>>()?
            .join(", ");
        let marks = (1..=columns.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        // Prepared once per batch: the server infers each parameter's type from the column.
        let insert = self
            .conn
            .prepare(&format!("INSERT INTO {table} ({names}) VALUES ({marks})"))?;
        let types = insert.params().to_vec();
        for row in rows {
            let params = row
                .iter()
                .zip(&types)
                .zip(columns)
                .map(|((cell, ty), column)| {
                    param(cell, ty)
                        .map_err(|why| Error::invalid("input", format!("{table}.{column}: {why}")))
                })
                .collect::<Result<Vec<_>>>()?;
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
            self.conn
                .execute(&insert, &refs)
                .map_err(|e| Error::storage(format!("{table}: {}", Error::from(e))))?;
        }
        Ok(())
    }

    /// Identity columns do not follow explicit ids: each is moved past the largest id imported,
    /// or the next node-created row would collide with an imported one.
    fn commit(mut self: Box<Self>) -> Result<()> {
        let identities = self.conn.query(
            "SELECT table_name::TEXT, column_name::TEXT FROM information_schema.columns \
             WHERE table_schema = current_schema() AND is_identity = 'YES'",
            &[],
        )?;
        for row in identities {
            let (table, column): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            if !TABLES.contains(&table.as_str()) {
                continue;
            }
            let column = check_identifier(&column)?;
            self.conn.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence($1, $2), m, true) \
                     FROM (SELECT MAX({column}) AS m FROM {table}) AS t WHERE m IS NOT NULL"
                ),
                &[&table, &column],
            )?;
        }
        self.conn.batch_execute("COMMIT")?;
        self.finished = true;
        Ok(())
    }
}

impl Drop for PostgresImport {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.conn.batch_execute("ROLLBACK");
        }
    }
}

#[cfg(all(test, feature = "tickets"))]
mod tests {
    use crate::prelude::*;
    use std::collections::BTreeMap;

    use super::super::tests::fresh;
    use crate::store::testkit::{digest, spec, T0};
    use crate::store::transfer::tests::{export_body, fill, import_text};
    use crate::store::transfer::{BOOKKEEPING, TABLES};
    use crate::store::SqliteStore;

    fn sqlite() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("auth.db")).unwrap();
        (dir, store)
    }

    /// The copy is by column name, so both stores must have the same tables and columns; and
    /// every table must be either copied or declared bookkeeping, so that a migration adding a
    /// table cannot leave it out of exports unnoticed.
    #[test]
    fn both_stores_have_the_same_tables_and_every_table_is_exported() {
        let Some((scratch, _store)) = fresh() else {
            return;
        };
        let (dir, _sqlite) = sqlite();
        let keep = |tables: Vec<(String, Vec<String>)>| -> BTreeMap<String, Vec<String>> {
            tables
                .into_iter()
                .filter(|(name, _)| !BOOKKEEPING.contains(&name.as_str()))
                .map(|(name, mut columns)| {
                    columns.sort();
                    (name, columns)
                })
                .collect()
        };
        let lite = keep(crate::store::sqlite::table_columns(&dir.path().join("auth.db")).unwrap());
        let pg = keep(super::table_columns(&mut scratch.client()).unwrap());
        assert_eq!(lite, pg);
        let names: Vec<&str> = lite.keys().map(String::as_str).collect();
        let mut expected = TABLES.to_vec();
        expected.sort_unstable();
        assert_eq!(names, expected, "a table missing from transfer::TABLES?");
    }

    #[test]
    fn sqlite_to_postgres_and_back_loses_nothing() {
        let Some((_scratch, pg)) = fresh() else {
            return;
        };
        let (_a_dir, a) = sqlite();
        fill(&a);
        let original = export_body(&a);
        assert!(original.contains("\"access_logs\""));

        let counts = import_text(&pg, &format!("{{\"format\":\"auth-server-export\",\"version\":1,\"key_check\":\"k\"}}\n{original}")).unwrap();
        assert_eq!(counts["tokens"], 2);
        assert_eq!(counts["sessions"], 4);
        assert_eq!(counts["access_logs"], 2500);
        assert_eq!(export_body(&pg), original);

        // The imported data is usable: tokens found by digest, ids continue past the imported.
        let found = pg.token_by_digest(&digest("transfer-a")).unwrap().unwrap();
        assert_eq!(found.user_id, "alice");
        let next = pg.create_token(spec("transfer-c", "carol", 0), T0).unwrap();
        assert!(
            next.id > found.id + 1,
            "identity not moved past the imported ids"
        );
        assert_eq!(pg.sessions(&Default::default(), T0).unwrap().len(), 4);

        let (_b_dir, b) = sqlite();
        let from_pg = export_body(&pg);
        import_text(&b, &format!("{{\"format\":\"auth-server-export\",\"version\":1,\"key_check\":\"k\"}}\n{from_pg}")).unwrap();
        assert_eq!(export_body(&b), from_pg);
    }

    #[test]
    fn a_failed_import_leaves_postgres_as_it_was() {
        let Some((_scratch, pg)) = fresh() else {
            return;
        };
        let (_dir, a) = sqlite();
        fill(&a);
        let body = export_body(&a);
        let header = "{\"format\":\"auth-server-export\",\"version\":1,\"key_check\":\"k\"}\n";
        // Cut before the end marker: everything before it was inserted, then rolled back.
        let truncated = &body[..body.rfind("{\"end\"").unwrap()];
        let err = import_text(&pg, &format!("{header}{truncated}")).unwrap_err();
        assert!(err.to_string().contains("end marker"), "{err}");
        assert_eq!(
            export_body(&pg).lines().count(),
            TABLES.len() + 1,
            "{}",
            export_body(&pg)
        );

        import_text(&pg, &format!("{header}{body}")).unwrap();
        let err = import_text(&pg, &format!("{header}{body}")).unwrap_err();
        assert_eq!(err.code(), "conflict");
    }
}
