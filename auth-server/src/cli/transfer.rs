//! `export` and `import`: a deployment's data as JSON lines, to move between SQLite and
//! PostgreSQL (format: `auth_core::store::transfer`).

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use auth_core::store::transfer;
use serde_json::json;

use super::{print, Failure};
use crate::app::{load_token_hasher, open_transfer};
use crate::config::{Config, Overrides};

fn open(database_url: Option<String>) -> Result<(Box<dyn transfer::Transfer>, String), Failure> {
    let config = Config::from_env(&Overrides {
        database_url,
        ..Default::default()
    })?;
    super::init_logging(log::LevelFilter::Warn);
    let store = open_transfer(&config.database).map_err(|message| Failure { message, code: 1 })?;
    let (hasher, _) = load_token_hasher(&config).map_err(|message| Failure { message, code: 1 })?;
    Ok((store, hasher.key_check()))
}

fn io_failure(what: &str, path: &Path, err: std::io::Error) -> Failure {
    Failure {
        message: format!("cannot {what} {}: {err}", path.display()),
        code: 1,
    }
}

/// Writes to `output` (stdout when `None`). A file is written beside its final name and renamed
/// when complete, so an interrupted export never leaves a plausible half file; it is created
/// owner-only, as it holds token digests and whatever else the database holds.
pub fn export(database_url: Option<String>, output: Option<PathBuf>) -> Result<(), Failure> {
    let (store, key_check) = open(database_url)?;
    let counts = match output {
        None => {
            let stdout = std::io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            transfer::export(store.as_ref(), &key_check, &mut out)?
        }
        Some(path) => {
            let partial = path.with_extension("partial");
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let file = options
                .open(&partial)
                .map_err(|e| io_failure("create", &partial, e))?;
            let mut out = BufWriter::new(file);
            let counts = transfer::export(store.as_ref(), &key_check, &mut out)?;
            out.into_inner()
                .map_err(|e| io_failure("write", &partial, e.into_error()))?
                .sync_all()
                .map_err(|e| io_failure("write", &partial, e))?;
            std::fs::rename(&partial, &path).map_err(|e| io_failure("rename", &partial, e))?;
            counts
        }
    };
    // stdout may be the export itself: the summary goes to stderr.
    let _ = writeln!(std::io::stderr(), "{}", json!({ "exported": counts }));
    Ok(())
}

/// Reads `input` (`-` for stdin) into the configured database, which must be empty.
pub fn import(database_url: Option<String>, input: &Path) -> Result<(), Failure> {
    let (store, key_check) = open(database_url)?;
    let counts = if input == Path::new("-") {
        let stdin = std::io::stdin();
        transfer::import(store.as_ref(), &key_check, &mut stdin.lock())?
    } else {
        let file = File::open(input).map_err(|e| io_failure("open", input, e))?;
        transfer::import(store.as_ref(), &key_check, &mut BufReader::new(file))?
    };
    print(&json!({ "imported": counts }));
    Ok(())
}
