//! A real server on an ephemeral port, a temporary SQLite file, a clock the test moves, and a
//! small blocking HTTP client.

#![allow(dead_code)]

pub mod programs;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use auth_core::page::Page;
use auth_core::session::SessionFilter;
use auth_core::token::{TokenFilter, Upsert};
use auth_core::{
    Admission, Backend, Health, ManualClock, NewToken, SecretDigest, Session, SessionClaim,
    SessionId, SessionOwner, SessionStore, SqliteStore, Stores, Timestamp, Token, TokenHasher,
    TokenId, TokenPatch, TokenSpec, TokenStore,
};
use auth_server::config::{Config, Overrides};
use auth_server::{App, RunningServer};

pub const T0: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);

/// The token hashing key every test server uses.
pub const TEST_HASH_KEY: [u8; 32] = [42; 32];

pub fn hasher() -> TokenHasher {
    TokenHasher::new(&TEST_HASH_KEY).unwrap()
}

pub struct TestServer {
    pub base: String,
    pub clock: Arc<ManualClock>,
    /// The server's own stores (tokens behind its token cache): writes through them are what
    /// the management API does.
    pub stores: Stores,
    /// The cache in front of `stores.tokens`.
    pub token_cache: Arc<auth_core::store::CachedTokens>,
    runtime: tokio::runtime::Runtime,
    server: Option<RunningServer>,
}

/// The client address test viewers play from.
pub const IP: &str = "10.0.0.7";

/// `/auth` fields of a new session of `stream` from [`IP`].
pub fn play<'a>(token: &'a str, stream: &'a str, session: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", stream),
        ("proto", "hls"),
        ("ip", IP),
        ("token", token),
        ("session_id", session),
    ]
}

/// Management API keys of keyed test servers.
pub const RW: &str = "writer-key-0123456789";
pub const RO: &str = "reader-key-0123456789";

/// `config` with one read-write ([`RW`]) and one read-only ([`RO`]) API key.
pub fn keyed_config(db: &Path) -> Config {
    let mut config = config(db);
    config.api_keys = vec![
        auth_server::config::ApiKey {
            key: RW.into(),
            write: true,
        },
        auth_server::config::ApiKey {
            key: RO.into(),
            write: false,
        },
    ];
    config
}

pub fn config(db: &Path) -> Config {
    let overrides = Overrides {
        database_url: Some(format!("sqlite://{}", db.display())),
        api_port: Some("0".into()),
        ..Default::default()
    };
    Config::load(|_| None, &overrides).expect("test config")
}

impl TestServer {
    /// Serves `store` with `config`; the clock starts at [`T0`].
    pub fn with_store(config: Config, stores: impl Into<Stores>, clock: Arc<ManualClock>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let hasher = TokenHasher::new(&TEST_HASH_KEY).unwrap();
        let app = App::new(&config, stores.into(), clock.clone(), hasher).unwrap();
        let stores = app.stores.clone();
        let token_cache = app.token_cache.clone();
        let addr = std::net::SocketAddr::new(config.api_host, config.api_port);
        let server = runtime
            .block_on(RunningServer::start(
                addr,
                Arc::new(app),
                config.session_cleanup_interval,
            ))
            .unwrap();
        TestServer {
            base: format!("http://{}", server.local_addr()),
            clock,
            stores,
            token_cache,
            runtime,
            server: Some(server),
        }
    }

    /// A server on a fresh SQLite file at `db`. `store` writes as the server's own API does.
    pub fn sqlite(db: &Path) -> Self {
        let store: Arc<dyn Backend> = Arc::new(SqliteStore::open(db).unwrap());
        Self::with_store(config(db), store, Arc::new(ManualClock::new(T0)))
    }

    /// Stops the server the way SIGTERM does: drain, then flush the access log.
    pub fn stop(mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
    }

    pub fn token(&self, spec: TokenSpec) -> Token {
        let (new, _secret) = spec.validate(&hasher()).unwrap();
        self.stores
            .tokens
            .create_token(new, self.clock.now())
            .unwrap()
    }

    pub fn advance(&self, seconds: u64) {
        self.clock.advance(Duration::from_secs(seconds));
    }

    pub fn get(&self, path: &str) -> Reply {
        Reply::from(agent().get(&format!("{}{}", self.base, path)).call())
    }

    pub fn post(&self, path: &str, content_type: &str, body: &str) -> Reply {
        Reply::from(
            agent()
                .post(&format!("{}{}", self.base, path))
                .set("Content-Type", content_type)
                .send_string(body),
        )
    }

    pub fn request(&self, method: &str, path: &str) -> Reply {
        Reply::from(
            agent()
                .request(method, &format!("{}{}", self.base, path))
                .call(),
        )
    }

    /// Any request, with headers and an optional body of a given content type.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &str)>,
    ) -> Reply {
        call_at(&self.base, method, path, headers, body)
    }

    /// `GET /auth` with these query fields.
    pub fn auth(&self, fields: &[(&str, &str)]) -> Reply {
        self.get(&auth_path(fields))
    }
}

/// Any request to the server at `base`, with headers and an optional body of a given content
/// type.
pub fn call_at(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &str)>,
) -> Reply {
    let mut request = agent().request(method, &format!("{base}{path}"));
    for (name, value) in headers {
        request = request.set(name, value);
    }
    Reply::from(match body {
        Some((content_type, body)) => request.set("Content-Type", content_type).send_string(body),
        None => request.call(),
    })
}

/// `/auth?` with these query fields.
pub fn auth_path(fields: &[(&str, &str)]) -> String {
    format!("/auth?{}", serde_urlencoded::to_string(fields).unwrap())
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
    }
}

use auth_core::Clock as _;

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build()
}

/// A response, whatever its status.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Reply {
    fn from(result: Result<ureq::Response, ureq::Error>) -> Self {
        let response = match result {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(err) => panic!("request failed: {err}"),
        };
        let headers = response
            .headers_names()
            .into_iter()
            .filter_map(|name| {
                response
                    .header(&name)
                    .map(|v| (name.to_ascii_lowercase(), v.to_owned()))
            })
            .collect();
        let status = response.status();
        let body = response.into_string().unwrap_or_default();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The deny reason of a 403, or "allowed" for a 200; panics on anything else.
    pub fn verdict(&self) -> String {
        match self.status {
            200 => "allowed".into(),
            403 => self.json()["reason"].as_str().unwrap().to_owned(),
            other => panic!("unexpected status {other}: {}", self.body),
        }
    }
}

/// A store that can be made slow or failing, for the response-budget and fail-mode paths.
pub struct FaultyStore {
    pub inner: Arc<dyn Backend>,
    pub delay_ms: AtomicU64,
    pub failing: AtomicBool,
    /// Admission calls that have returned, whatever their outcome.
    pub admissions_done: AtomicU64,
    /// Delayed or failing calls that have returned.
    pub faults_done: AtomicU64,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn Backend>) -> Self {
        FaultyStore {
            inner,
            delay_ms: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            admissions_done: AtomicU64::new(0),
            faults_done: AtomicU64::new(0),
        }
    }

    fn fault(&self) -> auth_core::Result<()> {
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        self.faults_done.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(auth_core::Error::storage("injected failure"));
        }
        Ok(())
    }
}

impl FaultyStore {
    /// The server's stores: tokens, sessions and health through the faults, the rest straight.
    pub fn stores(self: &Arc<Self>) -> Stores {
        Stores {
            tokens: self.clone(),
            sessions: self.clone(),
            health: self.clone(),
            ..Stores::of(Arc::clone(&self.inner))
        }
    }
}

impl TokenStore for FaultyStore {
    fn create_token(&self, token: NewToken, now: Timestamp) -> auth_core::Result<Token> {
        self.inner.create_token(token, now)
    }
    fn upsert_token(&self, token: NewToken, now: Timestamp) -> auth_core::Result<(Token, Upsert)> {
        self.inner.upsert_token(token, now)
    }
    fn token(&self, id: TokenId) -> auth_core::Result<Option<Token>> {
        self.inner.token(id)
    }
    fn token_by_digest(&self, digest: &SecretDigest) -> auth_core::Result<Option<Arc<Token>>> {
        self.fault()?;
        self.inner.token_by_digest(digest)
    }
    fn token_generation(&self) -> auth_core::Result<u64> {
        self.inner.token_generation()
    }
    fn list_tokens(&self, filter: &TokenFilter) -> auth_core::Result<Page<Token>> {
        self.inner.list_tokens(filter)
    }
    fn update_token(
        &self,
        id: TokenId,
        patch: TokenPatch,
        now: Timestamp,
    ) -> auth_core::Result<Token> {
        self.inner.update_token(id, patch, now)
    }
    fn delete_token(&self, id: TokenId, now: Timestamp) -> auth_core::Result<bool> {
        self.inner.delete_token(id, now)
    }
}

impl SessionStore for FaultyStore {
    fn admit_session(
        &self,
        claim: &SessionClaim<'_>,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> auth_core::Result<Admission> {
        // Tokens may come from the server's cache; admission always reaches the store.
        let result = self
            .fault()
            .and_then(|()| self.inner.admit_session(claim, now, lease_until));
        self.admissions_done.fetch_add(1, Ordering::SeqCst);
        result
    }
    fn sessions(&self, filter: &SessionFilter, now: Timestamp) -> auth_core::Result<Vec<Session>> {
        self.inner.sessions(filter, now)
    }
    fn terminate_session(
        &self,
        id: SessionId,
        reason: auth_core::CloseReason,
        now: Timestamp,
    ) -> auth_core::Result<bool> {
        self.inner.terminate_session(id, reason, now)
    }
    fn end_session(&self, id: SessionId, now: Timestamp) -> auth_core::Result<bool> {
        self.inner.end_session(id, now)
    }
    fn end_session_by_key(
        &self,
        owner: SessionOwner,
        key: &str,
        now: Timestamp,
    ) -> auth_core::Result<bool> {
        self.inner.end_session_by_key(owner, key, now)
    }
    fn purge_expired_sessions(&self, now: Timestamp) -> auth_core::Result<u64> {
        self.inner.purge_expired_sessions(now)
    }
    fn ban(&self, owner: SessionOwner, stream: &str, until: Timestamp) -> auth_core::Result<()> {
        self.inner.ban(owner, stream, until)
    }
}

impl Health for FaultyStore {
    fn ping(&self) -> auth_core::Result<()> {
        self.fault()?;
        self.inner.ping()
    }
}

pub fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    (dir, path)
}

/// A server on a fresh SQLite file at `db` whose store holds one HMAC signing key (the default
/// signer), with `adjust` applied to its configuration; also a ring holding the same key, to
/// read or make tokens as the server would.
pub fn signing_server(
    db: &Path,
    adjust: impl FnOnce(&mut Config),
) -> (TestServer, auth_core::signed_token::KeyRing) {
    let mut config = config(db);
    adjust(&mut config);
    signing_server_with(
        config,
        db,
        "seg-1",
        auth_core::signed_token::Algorithm::Hs256,
    )
}

/// A server with `config` on a fresh SQLite file at `db` whose store holds one signing key,
/// `kid` of `algorithm`; also a ring holding the same key.
pub fn signing_server_with(
    config: Config,
    db: &Path,
    kid: &str,
    algorithm: auth_core::signed_token::Algorithm,
) -> (TestServer, auth_core::signed_token::KeyRing) {
    let store: Arc<dyn Backend> = Arc::new(SqliteStore::open(db).unwrap());
    let vault = auth_core::signed_token::keys::KeyVault::new(&hasher()).unwrap();
    store
        .insert_signing_key(&vault.generate(kid, algorithm, T0).unwrap())
        .unwrap();
    let ring = vault.ring(&store.signing_keys().unwrap()).unwrap();
    let server = TestServer::with_store(config, store, Arc::new(ManualClock::new(T0)));
    (server, ring)
}

pub fn spec(secret: &str, user: &str) -> TokenSpec {
    TokenSpec {
        token: Some(secret.into()),
        user_id: user.into(),
        ..Default::default()
    }
}

/// The `auth-server` binary, with none of the developer's settings (environment or `.env`).
pub fn bin() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_auth-server"));
    for var in [
        "DATABASE_URL",
        "AUTH_DURATION",
        "SESSION_GRACE",
        "SESSION_CLEANUP_INTERVAL",
        "MAX_RESPONSE_TIME",
        "AUTH_FAIL_MODE",
        "LOG_LEVEL",
        "ENABLE_ACCESS_LOGS",
        "API_HOST",
        "API_PORT",
        "API_KEY",
        "API_KEYS",
        "TOKEN_HASH_KEY",
        "SIGNED_TOKEN_LEEWAY",
        "PLAYBACK_TOKEN_TTL",
        "PLAYER_URL_TEMPLATE",
    ] {
        command.env_remove(var);
    }
    command.current_dir(std::env::temp_dir());
    command
}

/// A server process on a free port; killed when dropped if still running.
/// The binary on the database `db`, with `input` on its standard input.
pub fn run_with_input(
    db: impl AsRef<std::ffi::OsStr>,
    args: &[&str],
    input: &str,
) -> std::process::Output {
    let mut command = bin();
    command.env("DATABASE_URL", db).args(args);
    output_with_input(command, input.as_bytes())
}

/// Runs `command` with `input` on its standard input; its outputs, captured.
pub fn output_with_input(mut command: std::process::Command, input: &[u8]) -> std::process::Output {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

pub struct ServerProcess {
    pub child: std::process::Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The rest of its stderr (the log).
    pub lines: std::io::Lines<std::io::BufReader<Box<dyn std::io::Read + Send + Sync>>>,
}

impl ServerProcess {
    /// Starts `command` as a server on a free port and waits for it to listen.
    pub fn spawn(mut command: std::process::Command) -> Self {
        use std::io::BufRead as _;
        let mut child = command
            .env("API_PORT", "0")
            .env("LOG_LEVEL", "info")
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stderr: Box<dyn std::io::Read + Send + Sync> = Box::new(child.stderr.take().unwrap());
        let mut lines = std::io::BufReader::new(stderr).lines();
        let base = loop {
            let Some(Ok(line)) = lines.next() else {
                let status = child.wait();
                panic!("the server stopped before listening: {status:?}");
            };
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        ServerProcess { child, base, lines }
    }

    /// Reads the rest of the log on a thread, for a test that does not read it: a server
    /// writing to a full pipe would stall.
    pub fn discard_log(&mut self) {
        let empty: Box<dyn std::io::Read + Send + Sync> = Box::new(std::io::empty());
        let lines = std::mem::replace(
            &mut self.lines,
            std::io::BufRead::lines(std::io::BufReader::new(empty)),
        );
        std::thread::spawn(move || lines.for_each(drop));
    }
}

impl ServerProcess {
    pub fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &str)>,
    ) -> Reply {
        call_at(&self.base, method, path, headers, body)
    }

    /// `GET /auth` with these query fields.
    pub fn auth(&self, fields: &[(&str, &str)]) -> Reply {
        self.call("GET", &auth_path(fields), &[], None)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
