//! The command line: `serve` (the default), `token create|list|show|update|delete`, `seed FILE`,
//! `migrate`, `export`, `import`, for signed tokens `sign`, `verify` and
//! `keys generate|list|retire`, and for event tickets `user create` and
//! `ticket issue|verify|revoke` ([`tickets`]); token commands and `seed` in [`tokens`].
//!
//! Token commands work on the store directly, so they run with or without a server (SQLite's WAL
//! lets both write the same file). Their output is JSON on stdout; errors are one line on stderr.
//! A token's secret is printed once, by `token create`; listings show only its prefix.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use auth_core::{Backend, Stores, SystemClock, TokenHasher};
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use crate::config::{Config, ConfigError, Overrides};

mod signing;
mod tickets;
mod tokens;
mod transfer;
use crate::app::{load_token_hasher, open_store, App, KeySource};
use crate::serve::RunningServer;

#[derive(Debug, Parser)]
#[command(
    name = "auth-server",
    version,
    about = "Stream and ticket authorization backend",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Database: sqlite://PATH, sqlite:///ABS/PATH, a bare path, or memory: [env: DATABASE_URL]
    #[arg(long, global = true)]
    pub database_url: Option<String>,

    #[command(flatten)]
    pub serve: ServeArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default when no command is given).
    Serve(ServeArgs),
    /// Create, list, show, update and delete tokens.
    #[command(subcommand)]
    Token(tokens::TokenCommand),
    /// Create or update tokens from a JSON array in the API's shape; matched by `token`, so
    /// running it twice changes nothing.
    Seed {
        /// Path to the JSON file (e.g. data/tokens.example.json).
        file: PathBuf,
    },
    /// Create the database or bring its schema up to date, then exit (what `serve` also does
    /// at start); for deployments that migrate before starting nodes.
    Migrate,
    /// Write the database's tokens, sessions and access logs as JSON lines, ids included: to
    /// move to another database with `import` (e.g. SQLite to PostgreSQL).
    Export {
        /// Write here (created owner-only) instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Load an `export` into this database, which must be empty and use the same token hashing
    /// key (TOKEN_HASH_KEY); all or nothing. Stop servers on an SQLite target first.
    Import {
        /// The export file, or `-` for stdin.
        file: PathBuf,
    },
    /// Mint a signed playback token (as POST /api/playback-tokens); prints it as JSON.
    Sign(signing::SignArgs),
    /// Check a signed token with this deployment's keys; prints its claims, or the refusal
    /// reason (exit status 1).
    Verify(signing::VerifyArgs),
    /// Manage the keys that sign tokens.
    #[command(subcommand)]
    Keys(signing::KeysCommand),
    /// Sign a URL for nginx secure_link or an Akamai EdgeAuth token (as POST /api/edge-urls);
    /// prints it as JSON.
    EdgeUrl(signing::EdgeUrlArgs),
    /// Event-ticket accounts: `user create` (the password is read from standard input).
    #[command(subcommand)]
    User(tickets::UserCommand),
    /// Event tickets for staff without the HTTP API: issue, verify at the door, revoke.
    #[command(subcommand)]
    Ticket(tickets::TicketCommand),
}

/// Flags of `serve`; each overrides its environment variable.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Address to bind [env: API_HOST, default 127.0.0.1]
    #[arg(long)]
    pub host: Option<String>,
    /// Port to bind; 0 picks a free one [env: API_PORT, default 8080]
    #[arg(long)]
    pub port: Option<String>,
    /// Seconds Flussonic may cache an answer, 30-3600 [env: AUTH_DURATION, default 180]
    #[arg(long)]
    pub auth_duration: Option<String>,
    /// Extra seconds a session lives past AUTH_DURATION, 0-3600 [env: SESSION_GRACE, default 30]
    #[arg(long)]
    pub session_grace: Option<String>,
    /// Seconds between purges of expired sessions, 10-600 [env: SESSION_CLEANUP_INTERVAL, default 60]
    #[arg(long)]
    pub session_cleanup_interval: Option<String>,
    /// Answer budget in seconds [env: MAX_RESPONSE_TIME, default 2.5]
    #[arg(long)]
    pub max_response_time: Option<String>,
    /// deny, allow_updates or allow when the store fails [env: AUTH_FAIL_MODE, default deny]
    #[arg(long)]
    pub fail_mode: Option<String>,
    /// TRACE, DEBUG, INFO, WARNING, ERROR, CRITICAL or OFF [env: LOG_LEVEL, default INFO]
    #[arg(long)]
    pub log_level: Option<String>,
    /// true or false [env: ENABLE_ACCESS_LOGS, default true]
    #[arg(long)]
    pub access_logs: Option<String>,
    /// Seconds a segment token from /hooks/nginx-auth lasts, 0 (off) to 3600
    /// [env: SEGMENT_TOKEN_TTL, default 0]
    #[arg(long)]
    pub segment_token_ttl: Option<String>,
}

/// A command's failure: a one-line message and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl From<auth_core::Error> for Failure {
    fn from(err: auth_core::Error) -> Self {
        let code = if matches!(err, auth_core::Error::Storage(_)) {
            1
        } else {
            2
        };
        Failure {
            message: format!("{}: {err}", err.code()),
            code,
        }
    }
}

impl From<ConfigError> for Failure {
    fn from(err: ConfigError) -> Self {
        Failure {
            message: err.0,
            code: 2,
        }
    }
}

pub(crate) fn usage(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        code: 2,
    }
}

pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        None => serve(cli.database_url, cli.serve),
        Some(Command::Serve(args)) => serve(cli.database_url, args),
        Some(Command::Token(command)) => with_store(cli.database_url, |store, hasher| {
            tokens::token(store, hasher, command)
        }),
        Some(Command::Seed { file }) => with_store(cli.database_url, |store, hasher| {
            tokens::seed(store, hasher, &file)
        }),
        // Opening a store applies its migrations; checking it answers proves they committed.
        Some(Command::Migrate) => with_store(cli.database_url, |store, _| {
            store.ping()?;
            print(&json!({ "migrated": true }));
            Ok(())
        }),
        Some(Command::Export { output }) => transfer::export(cli.database_url, output),
        Some(Command::Import { file }) => transfer::import(cli.database_url, &file),
        Some(Command::Sign(args)) => with_setup(cli.database_url, |config, store, hasher| {
            signing::sign(config, store, hasher, args)
        }),
        Some(Command::Verify(args)) => with_setup(cli.database_url, |config, store, hasher| {
            signing::verify(config, store, hasher, args)
        }),
        Some(Command::Keys(command)) => with_setup(cli.database_url, |_, store, hasher| {
            signing::keys(store, hasher, command)
        }),
        Some(Command::EdgeUrl(args)) => Config::from_env(&Overrides {
            database_url: cli.database_url,
            ..Default::default()
        })
        .map_err(Failure::from)
        .and_then(|config| signing::edge_url(&config, args)),
        Some(Command::User(command)) => tickets::user(cli.database_url, command),
        Some(Command::Ticket(command)) => tickets::ticket(cli.database_url, command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn overrides(database_url: Option<String>, args: ServeArgs) -> Overrides {
    Overrides {
        database_url,
        auth_duration: args.auth_duration,
        session_grace: args.session_grace,
        session_cleanup_interval: args.session_cleanup_interval,
        max_response_time: args.max_response_time,
        fail_mode: args.fail_mode,
        log_level: args.log_level,
        enable_access_logs: args.access_logs,
        api_host: args.host,
        api_port: args.port,
        segment_token_ttl: args.segment_token_ttl,
    }
}

fn init_logging(level: log::LevelFilter) {
    // Ignored when a logger is already installed (tests call into this module repeatedly).
    let _ = env_logger::Builder::new()
        .filter_level(level)
        .format_timestamp_millis()
        .try_init();
}

fn serve(database_url: Option<String>, args: ServeArgs) -> Result<(), Failure> {
    let config = Config::from_env(&overrides(database_url, args))?;
    init_logging(config.log_level);
    let store = open_store(&config.database).map_err(|message| Failure { message, code: 1 })?;
    let (hasher, key_source) =
        load_token_hasher(&config).map_err(|message| Failure { message, code: 1 })?;
    match &key_source {
        KeySource::File {
            path,
            created: true,
        } => {
            log::info!(
                "created the token hashing key {} (back it up with the database)",
                path.display()
            )
        }
        KeySource::File {
            path,
            created: false,
        } => log::info!("token hashing key: {}", path.display()),
        KeySource::Environment => log::info!("token hashing key: from TOKEN_HASH_KEY"),
        KeySource::Ephemeral => {
            log::info!("token hashing key: random, for this in-memory database")
        }
    }
    if config.api_keys.is_empty() {
        log::warn!("no API_KEY is set: the management API answers loopback clients only");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure {
            message: format!("cannot start the runtime: {e}"),
            code: 1,
        })?;
    // Before the runtime runs: building the app reads the store (the signing keys), and a
    // blocking store call must not run on a reactor thread.
    let app = App::new(&config, Stores::of(store), Arc::new(SystemClock), hasher).map_err(|e| {
        Failure {
            message: format!("cannot start: {e}"),
            code: 1,
        }
    })?;
    runtime.block_on(async {
        let stop = crate::shutdown::signal();
        let addr = SocketAddr::new(config.api_host, config.api_port);
        let server = RunningServer::start(addr, Arc::new(app), config.session_cleanup_interval)
            .await
            .map_err(|e| Failure { message: format!("cannot listen on {addr}: {e}"), code: 1 })?;
        log::info!(
            "listening on http://{} (database {}, AUTH_DURATION {}s, access logs {}, fail mode {}, management API keys: {})",
            server.local_addr(),
            config.database.describe(),
            config.auth_duration.as_secs(),
            if config.enable_access_logs { "on" } else { "off" },
            config.fail_mode.as_str(),
            match config.api_keys.len() {
                0 => "none (loopback only)".to_owned(),
                n => format!("{n} key(s)"),
            },
        );
        if !config.api_host.is_loopback() && config.hook_secret.is_none() {
            log::warn!(
                "API_HOST {} is not loopback and HOOK_SECRET is not set: anyone who can reach \
                 this port can call the media-server hooks (a forged done call ends another \
                 viewer's session); set HOOK_SECRET (docs/media-servers.md#hook-secret)",
                config.api_host
            );
        }
        stop.await;
        log::info!("stopping: finishing open requests and writing the access log");
        server.shutdown().await;
        log::info!("stopped");
        Ok(())
    })
}

fn with_store(
    database_url: Option<String>,
    work: impl FnOnce(&dyn Backend, &TokenHasher) -> Result<(), Failure>,
) -> Result<(), Failure> {
    with_setup(database_url, |_, store, hasher| work(store, hasher))
}

/// Runs `work` on the configured store, with the configuration and the token hashing key.
pub(crate) fn with_setup(
    database_url: Option<String>,
    work: impl FnOnce(&Config, &dyn Backend, &TokenHasher) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let config = Config::from_env(&Overrides {
        database_url,
        ..Default::default()
    })?;
    init_logging(log::LevelFilter::Warn);
    let store = open_store(&config.database).map_err(|message| Failure { message, code: 1 })?;
    let (hasher, _) = load_token_hasher(&config).map_err(|message| Failure { message, code: 1 })?;
    work(&config, store.as_ref(), &hasher)
}

pub(crate) fn print(value: &Value) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(err) => eprintln!("error: cannot encode the output: {err}"),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, Failure> {
    serde_json::to_value(value).map_err(|e| Failure {
        message: format!("cannot encode the output: {e}"),
        code: 1,
    })
}
