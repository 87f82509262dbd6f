//! [`Transfer`] for SQLite: reads and writes the files through connections of its own, so an
//! export or import never queues behind (or holds up) the store's writer threads.

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OpenFlags};

use super::{configure, SqliteStore};
use crate::error::{Error, Result};
use crate::store::transfer::{
    check_identifier, not_empty, Cell, ExportSink, Import, Transfer, TABLES,
};

/// A connection to the main file with the access log file attached as `log`, as the readers have.
fn connect(store: &SqliteStore, flags: OpenFlags) -> Result<Connection> {
    let conn = Connection::open_with_flags(store.path(), flags)?;
    configure(&conn)?;
    let log = SqliteStore::access_log_path(store.path());
    conn.execute("ATTACH DATABASE ?1 AS log", [log.to_string_lossy()])?;
    Ok(conn)
}

/// `main` or `log`: the file holding `table`, or `None` if neither does.
fn schema_of(conn: &Connection, table: &str) -> Result<Option<&'static str>> {
    for schema in ["main", "log"] {
        let found: bool = conn.query_row(
            &format!("SELECT EXISTS (SELECT 1 FROM {schema}.sqlite_master WHERE type = 'table' AND name = ?1)"),
            [table],
            |row| row.get(0),
        )?;
        if found {
            return Ok(Some(schema));
        }
    }
    Ok(None)
}

/// Every table in both files, for the schema tests.
#[cfg(all(test, feature = "postgres"))]
pub(crate) fn table_columns(path: &std::path::Path) -> Result<Vec<(String, Vec<String>)>> {
    let store_path = path;
    let conn = Connection::open(store_path)?;
    let log = SqliteStore::access_log_path(store_path);
    conn.execute("ATTACH DATABASE ?1 AS log", [log.to_string_lossy()])?;
    let mut tables = Vec::new();
    for schema in ["main", "log"] {
        let mut names = conn.prepare(&format!(
            "SELECT name FROM {schema}.sqlite_master WHERE type = 'table' ORDER BY name"
        ))?;
        let names: Vec<String> = names
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for name in names {
            let mut columns =
                conn.prepare(&format!("SELECT name FROM {schema}.pragma_table_info(?1)"))?;
            let columns = columns
                .query_map([&name], |row| row.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            tables.push((name, columns));
        }
    }
    Ok(tables)
}

impl Transfer for SqliteStore {
    fn export(&self, sink: &mut dyn ExportSink) -> Result<()> {
        let conn = connect(self, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        // One read transaction over both files: a snapshot even while a server writes.
        conn.execute_batch("BEGIN")?;
        for table in TABLES {
            let Some(schema) = schema_of(&conn, table)? else {
                continue;
            };
            let count = conn
                .prepare(&format!("SELECT * FROM {schema}.{table}"))?
                .column_count();
            // Every column, left to right: the same order PostgreSQL gives (see its export),
            // also for tables without a rowid.
            let order = (1..=count)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            let mut select =
                conn.prepare(&format!("SELECT * FROM {schema}.{table} ORDER BY {order}"))?;
            let columns: Vec<String> = select
                .column_names()
                .iter()
                .map(|c| c.to_string())
                .collect();
            sink.table(table, &columns)?;
            let mut rows = select.query([])?;
            let mut cells = Vec::with_capacity(columns.len());
            while let Some(row) = rows.next()? {
                cells.clear();
                for (index, column) in columns.iter().enumerate() {
                    cells.push(match row.get_ref(index)? {
                        ValueRef::Null => Cell::Null,
                        ValueRef::Integer(i) => Cell::Integer(i),
                        ValueRef::Real(f) => Cell::Real(f),
                        ValueRef::Text(t) => Cell::Text(
                            std::str::from_utf8(t)
                                .map_err(|e| {
                                    Error::storage(format!("{table}.{}: not UTF-8: {e}", column))
                                })?
                                .to_owned(),
                        ),
                        ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
                    });
                }
                sink.row(&cells)?;
            }
        }
        conn.execute_batch("COMMIT")?;
        Ok(())
    }

    fn begin_import(&self) -> Result<Box<dyn Import + '_>> {
        let conn = connect(
            self,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // IMMEDIATE: the write locks of both files are taken now, so the emptiness checked below
        // still holds at commit.
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let import = SqliteImport {
            conn,
            finished: false,
        };
        for table in TABLES {
            let Some(schema) = schema_of(&import.conn, table)? else {
                return Err(Error::storage(format!("the database has no {table} table")));
            };
            let any: bool = import.conn.query_row(
                &format!("SELECT EXISTS (SELECT 1 FROM {schema}.{table})"),
                [],
                |row| row.get(0),
            )?;
            if any {
                return Err(not_empty(table));
            }
        }
        Ok(Box::new(import))
    }
}

struct SqliteImport {
    conn: Connection,
    finished: bool,
}

impl Import for SqliteImport {
    fn insert(&mut self, table: &str, columns: &[String], rows: &[Vec<Cell>]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let schema = schema_of(&self.conn, table)?
            .ok_or_else(|| Error::storage(format!("the database has no {table} table")))?;
        let names = columns
            .iter()
            .map(|c| check_identifier(c))
            .collect::<Result<Vec<_>>>()?
            .join(", ");
        let marks = vec!["?"; columns.len()].join(", ");
        let mut insert = self.conn.prepare_cached(&format!(
            "INSERT INTO {schema}.{table} ({names}) VALUES ({marks})"
        ))?;
        for row in rows {
            let values = row.iter().map(|cell| match cell {
                Cell::Null => SqlValue::Null,
                Cell::Integer(i) => SqlValue::Integer(*i),
                Cell::Real(f) => SqlValue::Real(*f),
                Cell::Text(t) => SqlValue::Text(t.clone()),
                Cell::Blob(b) => SqlValue::Blob(b.clone()),
            });
            insert
                .execute(rusqlite::params_from_iter(values))
                .map_err(|e| Error::storage(format!("{table}: {e}")))?;
        }
        Ok(())
    }

    /// AUTOINCREMENT tables move their counters past inserted ids by themselves.
    fn commit(mut self: Box<Self>) -> Result<()> {
        self.conn.execute_batch("COMMIT")?;
        self.finished = true;
        Ok(())
    }
}

impl Drop for SqliteImport {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}
