//! End to end with real software: nginx with the RTMP module calls our hooks, ffmpeg publishes a
//! generated test stream, ffmpeg/ffprobe play it over RTMP and over HLS behind nginx's
//! `auth_request`.
//!
//! Needs `nginx`, the RTMP module and `ffmpeg`/`ffprobe` (Debian:
//! `apt-get install -y nginx libnginx-mod-rtmp ffmpeg`). Missing tools fail the tests, naming
//! that command, unless `AUTH_TEST_E2E=skip` says to skip them. Every port is on 127.0.0.1 and
//! chosen free at start; every process is killed when its test ends, pass or fail.
//!
//! The auth server's clock is frozen: no lease ever runs out here, so a slot that comes free
//! was freed by a done call, and a stream that is cut was cut by a refused update.

mod common;

use std::io::Read as _;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use auth_core::access_log::AccessLogFilter;
use auth_core::session::SessionFilter;
use auth_core::{
    AccessResult, Action, Clock as _, Session, Token, TokenPatch, TokenSpec, TokenStatus,
};
use common::programs::{find, free_port, rtmp_module};
use common::{temp_db, TestServer};

const INSTALL: &str = "apt-get install -y nginx libnginx-mod-rtmp ffmpeg";
const PUBLISH_KEY: &str = "publisher-key-0001";
const VIEWER: &str = "viewer-token-0001";

struct Tools {
    nginx: PathBuf,
    ffmpeg: PathBuf,
    ffprobe: PathBuf,
    rtmp_module: PathBuf,
}

/// The tools, or `None` when they are missing and `AUTH_TEST_E2E=skip`; otherwise a missing
/// tool fails the test.
fn tools() -> Option<Tools> {
    let found = (
        find("nginx"),
        find("ffmpeg"),
        find("ffprobe"),
        rtmp_module(),
    );
    if let (Some(nginx), Some(ffmpeg), Some(ffprobe), Some(rtmp_module)) = found {
        return Some(Tools {
            nginx,
            ffmpeg,
            ffprobe,
            rtmp_module,
        });
    }
    let missing: Vec<&str> = [
        ("nginx", found.0.is_none()),
        ("ffmpeg", found.1.is_none()),
        ("ffprobe", found.2.is_none()),
        ("the nginx RTMP module", found.3.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, missing)| missing.then_some(name))
    .collect();
    if std::env::var("AUTH_TEST_E2E").as_deref() == Ok("skip") {
        eprintln!(
            "SKIPPED (AUTH_TEST_E2E=skip): missing {}",
            missing.join(", ")
        );
        return None;
    }
    panic!(
        "end-to-end tests need {} (install: `{INSTALL}`), or set AUTH_TEST_E2E=skip to skip them",
        missing.join(", ")
    );
}

/// A child process killed (and reaped) when dropped.
struct Proc {
    name: &'static str,
    child: Child,
}

impl Proc {
    fn spawn(name: &'static str, command: &mut Command) -> Proc {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc { name, child }
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `limit` for the process to exit; kills it past that.
    fn wait(mut self, limit: Duration) -> Finished {
        let deadline = Instant::now() + limit;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => break None,
            }
        };
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let mut stdout = String::new();
        let mut stderr = String::new();
        if let Some(out) = self.child.stdout.as_mut() {
            let _ = out.read_to_string(&mut stdout);
        }
        if let Some(err) = self.child.stderr.as_mut() {
            let _ = err.read_to_string(&mut stderr);
        }
        Finished {
            name: self.name,
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Finished {
    name: &'static str,
    /// `None`: it did not exit in time and was killed.
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
}

impl Finished {
    fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    fn describe(&self) -> String {
        let tail: String = self
            .stderr
            .lines()
            .rev()
            .take(8)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n  ");
        format!(
            "{} exited with {:?}; stdout: {:?}; stderr tail:\n  {tail}",
            self.name,
            self.status,
            self.stdout.trim()
        )
    }
}

fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("waited {limit:?} for {what}, in vain");
    false
}

/// The auth server, nginx (RTMP + HTTP with `auth_request`), all on free local ports.
struct Stack {
    tools: Tools,
    dir: tempfile::TempDir,
    server: TestServer,
    rtmp_port: u16,
    http_port: u16,
    nginx: Option<Proc>,
    /// More directives for nginx's `location /hls/`.
    hls_directives: &'static str,
    /// nginx-rtmp's `notify_update_timeout`.
    update_every: &'static str,
    /// `HOOK_SECRET`, written into nginx's hook URLs and `/_auth` headers as the media-server
    /// guide shows.
    hook_secret: Option<&'static str>,
    _db: tempfile::TempDir,
}

/// An auth server on the database file it is given, with the test configuration `adjust`ed.
fn configured(
    adjust: impl FnOnce(&mut auth_server::config::Config),
) -> impl FnOnce(&Path) -> TestServer {
    move |db: &Path| {
        let mut config = common::config(db);
        adjust(&mut config);
        let store: std::sync::Arc<dyn auth_core::Backend> =
            std::sync::Arc::new(auth_core::SqliteStore::open(db).unwrap());
        TestServer::with_store(
            config,
            store,
            std::sync::Arc::new(auth_core::ManualClock::new(common::T0)),
        )
    }
}

impl Stack {
    fn start() -> Option<Stack> {
        Self::start_with(TestServer::sqlite, "")
    }

    /// `server` makes the auth server on the database file it is given; `hls_directives` go into
    /// nginx's `location /hls/`.
    fn start_with(
        server: impl FnOnce(&Path) -> TestServer,
        hls_directives: &'static str,
    ) -> Option<Stack> {
        Self::build(server, hls_directives, free_port(), "1s")
    }

    /// nginx with an `rtmp_control` location at `/control`, where the auth server pushes its
    /// cuts (`NGINX_RTMP_CONTROL_URL`), and `on_update` only every 60 s: a player cut within
    /// seconds was cut by the push, not by a refused update.
    fn start_controlled() -> Option<Stack> {
        let http_port = free_port();
        let control = format!("http://127.0.0.1:{http_port}/control");
        let server = configured(move |config| {
            config.control.nginx_rtmp = Some(auth_server::control::Url::parse(&control).unwrap());
        });
        Self::build(server, "", http_port, "60s")
    }

    /// An auth server with `HOOK_SECRET` set, and nginx configured to send it.
    fn start_guarded(secret: &'static str) -> Option<Stack> {
        let server = configured(move |config| {
            config.hook_secret = Some(auth_server::config::HookSecret::parse(secret).unwrap());
        });
        Self::build_with(server, "", free_port(), "1s", Some(secret))
    }

    fn build(
        server: impl FnOnce(&Path) -> TestServer,
        hls_directives: &'static str,
        http_port: u16,
        update_every: &'static str,
    ) -> Option<Stack> {
        Self::build_with(server, hls_directives, http_port, update_every, None)
    }

    fn build_with(
        server: impl FnOnce(&Path) -> TestServer,
        hls_directives: &'static str,
        http_port: u16,
        update_every: &'static str,
        hook_secret: Option<&'static str>,
    ) -> Option<Stack> {
        let tools = tools()?;
        let (db_dir, db) = temp_db();
        let server = server(&db);
        let dir = tempfile::tempdir().unwrap();
        let mut stack = Stack {
            tools,
            dir,
            server,
            rtmp_port: free_port(),
            http_port,
            nginx: None,
            hls_directives,
            update_every,
            hook_secret,
            _db: db_dir,
        };
        stack.start_nginx();
        Some(stack)
    }

    fn auth_addr(&self) -> &str {
        self.server.base.trim_start_matches("http://")
    }

    fn start_nginx(&mut self) {
        let root = self.dir.path();
        std::fs::create_dir_all(root.join("hls")).unwrap();
        std::fs::create_dir_all(root.join("logs")).unwrap();
        let (query, header) = match self.hook_secret {
            Some(secret) => (
                format!("?hook_secret={secret}"),
                format!("proxy_set_header X-Hook-Secret {secret};"),
            ),
            None => (String::new(), String::new()),
        };
        let hook = format!("http://{}/hooks/nginx-rtmp{query}", self.auth_addr());
        let config = format!(
            r#"load_module {module};
# One process: the test kills it, and nothing outlives the test.
master_process off;
error_log {root}/logs/error.log info;
pid {root}/nginx.pid;
events {{ worker_connections 256; }}
rtmp {{
    server {{
        listen 127.0.0.1:{rtmp};
        notify_method post;
        # on_connect belongs to the server: the application is not chosen yet.
        on_connect {hook};
        application live {{
            live on;
            on_publish {hook};
            on_play {hook};
            on_play_done {hook};
            on_publish_done {hook};
            on_done {hook};
            on_update {hook};
            notify_update_timeout {update_every};
            hls on;
            hls_path {root}/hls;
            hls_fragment 1s;
            hls_playlist_length 6s;
        }}
    }}
}}
http {{
    access_log {root}/logs/access.log;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    types {{
        application/vnd.apple.mpegurl m3u8;
        video/mp2t ts;
    }}
    server {{
        listen 127.0.0.1:{http};
        location /hls/ {{
            auth_request /_auth;
            {hls_directives}
            alias {root}/hls/;
            add_header Cache-Control no-cache;
        }}
        # Where the auth server drops a cut client (NGINX_RTMP_CONTROL_URL).
        location /control {{
            rtmp_control all;
        }}
        location = /_auth {{
            internal;
            proxy_pass http://{auth}/hooks/nginx-auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Real-IP $remote_addr;
            {header}
        }}
    }}
}}
"#,
            module = self.tools.rtmp_module.display(),
            root = root.display(),
            rtmp = self.rtmp_port,
            http = self.http_port,
            auth = self.auth_addr(),
            hls_directives = self.hls_directives,
            update_every = self.update_every,
        );
        let conf = root.join("nginx.conf");
        std::fs::write(&conf, config).unwrap();
        let mut nginx = Proc::spawn(
            "nginx",
            Command::new(&self.tools.nginx)
                .arg("-p")
                .arg(root)
                .arg("-c")
                .arg(&conf)
                .args(["-g", "daemon off;"]),
        );
        let up = |port: u16| {
            TcpStream::connect_timeout(
                &SocketAddr::from(([127, 0, 0, 1], port)),
                Duration::from_millis(200),
            )
            .is_ok()
        };
        let ready = eventually("nginx to listen", Duration::from_secs(10), || {
            !nginx.running() || (up(self.rtmp_port) && up(self.http_port))
        });
        if !ready || !nginx.running() {
            let log = std::fs::read_to_string(root.join("logs/error.log")).unwrap_or_default();
            let finished = nginx.wait(Duration::from_secs(1));
            panic!(
                "nginx did not start: {}\nerror.log:\n{log}",
                finished.describe()
            );
        }
        self.nginx = Some(nginx);
    }

    fn rtmp_url(&self, stream: &str, token: &str) -> String {
        format!(
            "rtmp://127.0.0.1:{}/live/{stream}?token={token}",
            self.rtmp_port
        )
    }

    fn token(&self, spec: TokenSpec) -> Token {
        self.server.token(spec)
    }

    fn sessions(&self, token: &Token) -> Vec<Session> {
        let filter = SessionFilter {
            token_id: Some(token.id),
            ..Default::default()
        };
        self.server
            .stores
            .sessions
            .sessions(&filter, self.server.clock.now())
            .unwrap()
    }

    /// Whether the access log recorded a refusal of `token` for `reason` (the log is written in
    /// batches, off the request path: wait for it).
    fn refused_for(&self, token: &Token, reason: &str) -> bool {
        eventually(
            &format!("an access log record of `{reason}`"),
            Duration::from_secs(10),
            || {
                let filter = AccessLogFilter {
                    token_id: Some(token.id),
                    reason: Some(reason.to_owned()),
                    ..Default::default()
                };
                self.server
                    .stores
                    .access_log
                    .access_logs(&filter)
                    .is_ok_and(|page| page.total > 0)
            },
        )
    }

    fn allowed_count(&self, token: &Token) -> u64 {
        let filter = AccessLogFilter {
            token_id: Some(token.id),
            result: Some(AccessResult::Allowed),
            ..Default::default()
        };
        self.server
            .stores
            .access_log
            .access_logs(&filter)
            .unwrap()
            .total
    }

    /// A test stream, published with `key`, for up to `seconds`.
    fn publish(&self, stream: &str, key: &str, seconds: u32) -> Proc {
        Proc::spawn(
            "ffmpeg (publisher)",
            Command::new(&self.tools.ffmpeg)
                .args(["-hide_banner", "-loglevel", "warning", "-nostdin", "-re"])
                .args(["-f", "lavfi", "-i", "testsrc=size=160x120:rate=15"])
                .args(["-t", &seconds.to_string()])
                .args([
                    "-c:v",
                    "libx264",
                    "-preset",
                    "ultrafast",
                    "-tune",
                    "zerolatency",
                ])
                .args(["-g", "15", "-pix_fmt", "yuv420p", "-f", "flv"])
                .arg(self.rtmp_url(stream, key)),
        )
    }

    /// A publish that is live: its session is admitted and ffmpeg keeps sending.
    fn publish_live(&self, stream: &str, key: &Token, secret: &str) -> Proc {
        let mut publisher = self.publish(stream, secret, 120);
        let admitted = eventually("the publisher's session", Duration::from_secs(15), || {
            !self.sessions(key).is_empty()
        });
        assert!(
            admitted && publisher.running(),
            "a valid stream key must be accepted: {}",
            publisher.wait(Duration::ZERO).describe()
        );
        publisher
    }

    /// ffprobe on `url`: the codec of its first stream, or the failure.
    fn probe(&self, url: &str, extra: &[&str]) -> Finished {
        Proc::spawn(
            "ffprobe",
            Command::new(&self.tools.ffprobe)
                .args(["-hide_banner", "-loglevel", "error"])
                .args(["-rw_timeout", "8000000"])
                .args(extra)
                .args([
                    "-select_streams",
                    "v:0",
                    "-show_entries",
                    "stream=codec_name",
                ])
                .args(["-of", "default=noprint_wrappers=1:nokey=1"])
                .arg(url),
        )
        .wait(Duration::from_secs(25))
    }

    /// A player that keeps reading `url` until it is cut or killed.
    fn player(&self, url: &str) -> Proc {
        Proc::spawn(
            "ffmpeg (player)",
            Command::new(&self.tools.ffmpeg)
                .args(["-hide_banner", "-loglevel", "warning", "-nostdin"])
                .args(["-rw_timeout", "8000000", "-i"])
                .arg(url)
                .args(["-t", "120", "-f", "null", "-"]),
        )
    }

    fn http_get(&self, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let url = format!("http://127.0.0.1:{}{path}", self.http_port);
        let mut request = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(10))
            .build()
            .get(&url);
        for (name, value) in headers {
            request = request.set(name, value);
        }
        match request.call() {
            Ok(response) | Err(ureq::Error::Status(_, response)) => {
                let status = response.status();
                (status, response.into_string().unwrap_or_default())
            }
            Err(err) => panic!("GET {url} failed: {err}"),
        }
    }

    /// A segment nginx-rtmp has listed in `stream`'s playlist on disk, once there is one.
    fn first_segment(&self, stream: &str) -> String {
        let playlist = self.dir.path().join(format!("hls/{stream}.m3u8"));
        let segment = || {
            std::fs::read_to_string(&playlist)
                .ok()
                .and_then(|text| text.lines().find(|l| l.ends_with(".ts")).map(str::to_owned))
        };
        assert!(
            eventually("nginx-rtmp's HLS playlist", Duration::from_secs(20), || {
                segment().is_some()
            }),
            "no HLS playlist; nginx log:\n{}",
            self.nginx_log()
        );
        segment().unwrap()
    }

    /// The end of nginx's error log, for failure messages.
    fn nginx_log(&self) -> String {
        let log =
            std::fs::read_to_string(self.dir.path().join("logs/error.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

fn spec(secret: &str, user: &str) -> TokenSpec {
    common::spec(secret, user)
}

fn publisher_key() -> TokenSpec {
    TokenSpec {
        allowed_actions: Some(vec![Action::Publish]),
        ..spec(PUBLISH_KEY, "studio")
    }
}

#[test]
fn rtmp_publish_and_play_through_nginx_rtmp() {
    let Some(stack) = Stack::start() else {
        return;
    };
    let key = stack.token(publisher_key());
    let viewer = stack.token(spec(VIEWER, "viewer"));
    let single = stack.token(TokenSpec {
        max_sessions: Some(1),
        ..spec("single-seat-0001", "single")
    });
    let elsewhere = stack.token(TokenSpec {
        allowed_ips: vec!["10.9.9.9".into()],
        ..spec("elsewhere-0001", "elsewhere")
    });
    let to_suspend = stack.token(spec("suspend-me-0001", "suspended"));

    // A wrong stream key, and a viewer's token used as one: refused, nothing admitted.
    let wrong = stack
        .publish("cam1", "wrong-key-00000", 30)
        .wait(Duration::from_secs(20));
    assert!(
        !wrong.succeeded() && wrong.status.is_some(),
        "a wrong stream key must be refused: {}",
        wrong.describe()
    );
    let as_key = stack
        .publish("cam1", VIEWER, 30)
        .wait(Duration::from_secs(20));
    assert!(
        !as_key.succeeded() && as_key.status.is_some(),
        "a play-only token must not publish: {}",
        as_key.describe()
    );
    assert!(stack.refused_for(&viewer, "action_not_allowed"));
    assert_eq!(
        stack.allowed_count(&viewer),
        0,
        "the play-only token must be refused at on_publish, not merely cut later"
    );
    assert!(stack.sessions(&viewer).is_empty());

    // The right key publishes.
    let _publisher = stack.publish_live("cam1", &key, PUBLISH_KEY);

    // A valid token plays; a wrong address is refused.
    let played = stack.probe(&stack.rtmp_url("cam1", VIEWER), &[]);
    assert!(
        played.succeeded() && played.stdout.contains("h264"),
        "a valid token must play: {}",
        played.describe()
    );
    let refused = stack.probe(&stack.rtmp_url("cam1", "elsewhere-0001"), &[]);
    assert!(
        !refused.succeeded(),
        "a token bound to another address must be refused: {}",
        refused.describe()
    );
    assert!(stack.refused_for(&elsewhere, "ip_not_allowed"));

    // max_sessions = 1: a second concurrent player is refused; when the first stops, nginx's
    // on_play_done frees the slot at once (the clock is frozen: no lease runs out).
    let mut first = stack.player(&stack.rtmp_url("cam1", "single-seat-0001"));
    assert!(
        eventually(
            "the first player's session",
            Duration::from_secs(15),
            || { stack.sessions(&single).len() == 1 }
        ),
        "the first player must be admitted"
    );
    let second = stack.probe(&stack.rtmp_url("cam1", "single-seat-0001"), &[]);
    assert!(
        !second.succeeded(),
        "a second concurrent player must be refused: {}",
        second.describe()
    );
    assert!(stack.refused_for(&single, "session_limit_reached"));
    assert!(first.running(), "the first player keeps playing");
    drop(first);
    assert!(
        eventually(
            "on_play_done to free the slot",
            Duration::from_secs(10),
            || { stack.sessions(&single).is_empty() }
        ),
        "on_play_done must end the session at once; nginx log:\n{}",
        stack.nginx_log()
    );
    let again = stack.probe(&stack.rtmp_url("cam1", "single-seat-0001"), &[]);
    assert!(
        again.succeeded(),
        "the freed slot must admit a new player: {}",
        again.describe()
    );

    // Suspending a token cuts its live player at the next on_update (every second here).
    let mut watching = stack.player(&stack.rtmp_url("cam1", "suspend-me-0001"));
    assert!(
        eventually("the player's session", Duration::from_secs(15), || {
            !stack.sessions(&to_suspend).is_empty()
        }),
        "the player must be admitted"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        watching.running(),
        "updates of a good token keep it playing"
    );
    let patch = TokenPatch {
        status: Some(TokenStatus::Suspended),
        ..Default::default()
    };
    stack
        .server
        .stores
        .tokens
        .update_token(to_suspend.id, patch, stack.server.clock.now())
        .unwrap();
    assert!(
        eventually(
            "nginx to cut the suspended player",
            Duration::from_secs(10),
            || { !watching.running() }
        ),
        "a refused on_update must cut the stream"
    );
    assert!(stack.refused_for(&to_suspend, "token_suspended"));
    let after = stack.probe(&stack.rtmp_url("cam1", "suspend-me-0001"), &[]);
    assert!(!after.succeeded(), "a suspended token must not play again");
}

#[test]
fn hls_through_nginx_auth_request() {
    let Some(stack) = Stack::start() else {
        return;
    };
    let key = stack.token(publisher_key());
    let _viewer = stack.token(spec(VIEWER, "viewer"));
    let elsewhere = stack.token(TokenSpec {
        allowed_ips: vec!["10.9.9.9".into()],
        ..spec("elsewhere-0001", "elsewhere")
    });
    let suspended = stack.token(TokenSpec {
        status: Some(TokenStatus::Suspended),
        ..spec("suspended-0001", "suspended")
    });

    let _publisher = stack.publish_live("cam2", &key, PUBLISH_KEY);
    let segment = stack.first_segment("cam2");

    // No token: 401, playlist and segments alike.
    assert_eq!(stack.http_get("/hls/cam2.m3u8", &[]).0, 401);
    assert_eq!(stack.http_get(&format!("/hls/{segment}"), &[]).0, 401);
    // A token in the query string opens the playlist.
    let (status, body) = stack.http_get(&format!("/hls/cam2.m3u8?token={VIEWER}"), &[]);
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("#EXTM3U"), "{body}");
    // Wrong address, suspended token: 403.
    assert_eq!(
        stack.http_get("/hls/cam2.m3u8?token=elsewhere-0001", &[]).0,
        403
    );
    assert!(stack.refused_for(&elsewhere, "ip_not_allowed"));
    assert_eq!(
        stack.http_get("/hls/cam2.m3u8?token=suspended-0001", &[]).0,
        403
    );
    assert!(stack.refused_for(&suspended, "token_suspended"));

    // A real HLS player: the token travels as a Bearer header, to the playlist and every segment.
    let url = format!("http://127.0.0.1:{}/hls/cam2.m3u8", stack.http_port);
    let bearer = |token: &str| format!("Authorization: Bearer {token}\r\n");
    let played = stack.probe(&url, &["-headers", &bearer(VIEWER)]);
    assert!(
        played.succeeded() && played.stdout.contains("h264"),
        "a valid token must play HLS: {}",
        played.describe()
    );
    let refused = stack.probe(&url, &["-headers", &bearer("suspended-0001")]);
    assert!(
        !refused.succeeded(),
        "a suspended token must not play HLS: {}",
        refused.describe()
    );
    let refused = stack.probe(&url, &["-headers", &bearer("elsewhere-0001")]);
    assert!(
        !refused.succeeded(),
        "a token bound to another address must not play HLS: {}",
        refused.describe()
    );
}

/// `HOOK_SECRET` as the media-server guide configures it: nginx-rtmp's hooks carry it in their
/// URL, nginx's `auth_request` as a header; the same calls without it are refused.
#[test]
fn hooks_through_nginx_carry_the_hook_secret() {
    const SECRET: &str = "e2e-hook-secret-0123456789";
    let Some(stack) = Stack::start_guarded(SECRET) else {
        return;
    };
    let key = stack.token(publisher_key());
    let _viewer = stack.token(spec(VIEWER, "viewer"));
    let _publisher = stack.publish_live("cam3", &key, PUBLISH_KEY);
    let segment = stack.first_segment("cam3");
    let (status, body) = stack.http_get(&format!("/hls/cam3.m3u8?token={VIEWER}"), &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        stack
            .http_get(&format!("/hls/{segment}?token={VIEWER}"), &[])
            .0,
        200
    );
    let direct = stack.server.call(
        "GET",
        "/hooks/nginx-auth",
        &[
            ("X-Original-URI", &format!("/hls/cam3.m3u8?token={VIEWER}")),
            ("X-Real-IP", "127.0.0.1"),
        ],
        None,
    );
    assert_eq!(direct.status, 403, "without the secret: {}", direct.body);
}

/// The media-server guide's directives for signed segment URLs: the playlist answer's `X-Segment-Token`
/// written into every segment URL of the playlist nginx serves.
const SEGMENT_URL_DIRECTIVES: &str = "
    auth_request_set $segment_token $upstream_http_x_segment_token;
    sub_filter_types application/vnd.apple.mpegurl;
    sub_filter_once off;
    sub_filter '.ts' '.ts?token=$segment_token';";

#[test]
fn hls_segments_play_with_the_playlist_segment_token() {
    let server = |db: &Path| {
        common::signing_server(db, |config| {
            config.segment_token_ttl = Duration::from_secs(60);
        })
        .0
    };
    let readme = include_str!("../../docs/media-servers.md");
    for line in SEGMENT_URL_DIRECTIVES
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        assert!(
            readme.contains(line),
            "docs/media-servers.md documents `{line}`"
        );
    }
    let Some(stack) = Stack::start_with(server, SEGMENT_URL_DIRECTIVES) else {
        return;
    };
    let key = stack.token(publisher_key());
    let viewer = stack.token(TokenSpec {
        max_sessions: Some(1),
        ..spec(VIEWER, "viewer")
    });
    let _publisher = stack.publish_live("cam3", &key, PUBLISH_KEY);
    let segment = stack.first_segment("cam3");

    // The playlist, opened with the viewer's token, lists its segments with a segment token.
    let (status, body) = stack.http_get(&format!("/hls/cam3.m3u8?token={VIEWER}"), &[]);
    assert_eq!(status, 200, "{body}");
    let listed: Vec<&str> = body.lines().filter(|l| l.contains(".ts")).collect();
    assert!(!listed.is_empty(), "{body}");
    for line in &listed {
        assert!(line.contains(".ts?token=v1.seg-1."), "{body}");
    }
    // Fetched as listed, a segment plays; the same segment without the token is refused.
    let (status, media) = stack.http_get(&format!("/hls/{}", listed[0]), &[]);
    assert_eq!(status, 200, "{media}; nginx log:\n{}", stack.nginx_log());
    assert!(!media.is_empty());
    assert_eq!(stack.http_get(&format!("/hls/{segment}"), &[]).0, 401);
    let bare = listed[0].split('?').next().unwrap();
    assert_eq!(stack.http_get(&format!("/hls/{bare}"), &[]).0, 401);

    // A real player given only the playlist URL plays it, and the segments it fetched took no
    // second slot of the viewer's one.
    let url = format!(
        "http://127.0.0.1:{}/hls/cam3.m3u8?token={VIEWER}",
        stack.http_port
    );
    let played = stack.probe(&url, &[]);
    assert!(
        played.succeeded() && played.stdout.contains("h264"),
        "the listed segment URLs must play: {}; nginx log:\n{}",
        played.describe(),
        stack.nginx_log()
    );
    assert_eq!(stack.sessions(&viewer).len(), 1);
}

/// Cuts reach a viewer playing through nginx-rtmp at once, through `rtmp_control`: suspending
/// its token through the API, and `DELETE /api/sessions/{id}?ban_seconds=60`, whose ban then
/// refuses the reconnect. `on_update` comes only every 60 s here, so the cut is the push's.
/// Run with `--nocapture` to see the measured cut times.
#[test]
fn cuts_reach_nginx_rtmp_players_within_seconds() {
    let Some(stack) = Stack::start_controlled() else {
        return;
    };
    let key = stack.token(publisher_key());
    let _publisher = stack.publish_live("cam2", &key, PUBLISH_KEY);
    let api = |method: &str, path: &str, body: Option<&str>| {
        stack
            .server
            .call(method, path, &[], body.map(|b| ("application/json", b)))
    };
    let watch = |token: &Token, secret: &str| {
        let mut player = stack.player(&stack.rtmp_url("cam2", secret));
        assert!(
            eventually("the player's session", Duration::from_secs(15), || {
                !stack.sessions(token).is_empty()
            }),
            "the player must be admitted: {}",
            player.wait(Duration::ZERO).describe()
        );
        std::thread::sleep(Duration::from_secs(1));
        assert!(player.running(), "the player keeps playing");
        player
    };
    // From `started` (just before the API request) to the player's exit, polled every 10 ms.
    let cut_within = |player: &mut Proc, started: Instant, what: &str| {
        let mut cut = false;
        while started.elapsed() < Duration::from_secs(3) {
            if !player.running() {
                cut = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let took = started.elapsed();
        eprintln!("{what}: cut after {took:?}");
        assert!(cut, "{what} within 3 s; nginx log:\n{}", stack.nginx_log());
        took
    };

    // Suspending the token through the API cuts its live player.
    let suspended = stack.token(spec("cut-suspend-0001", "suspended"));
    let mut player = watch(&suspended, "cut-suspend-0001");
    let started = Instant::now();
    let reply = api(
        "PATCH",
        &format!("/api/tokens/{}", suspended.id),
        Some(r#"{"status": "suspended"}"#),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    cut_within(&mut player, started, "suspended token");
    assert!(stack.refused_for(&suspended, "token_suspended"));

    // An operator's cut with a ban: the player is dropped, and its reconnect refused.
    let banned = stack.token(spec("cut-banned-0001", "banned"));
    let mut player = watch(&banned, "cut-banned-0001");
    let id = stack.sessions(&banned)[0].id;
    let started = Instant::now();
    let reply = api(
        "DELETE",
        &format!("/api/sessions/{id}?ban_seconds=60"),
        None,
    );
    assert_eq!(reply.status, 204, "{}", reply.body);
    cut_within(&mut player, started, "DELETE with ban_seconds=60");
    let again = stack.probe(&stack.rtmp_url("cam2", "cut-banned-0001"), &[]);
    assert!(
        !again.succeeded(),
        "the banned token must not play again at once: {}",
        again.describe()
    );
    assert!(stack.refused_for(&banned, "session_banned"));
    // Another token plays the same stream meanwhile.
    let other = stack.probe(&stack.rtmp_url("cam2", VIEWER), &[]);
    stack.token(spec(VIEWER, "viewer"));
    let other_now = stack.probe(&stack.rtmp_url("cam2", VIEWER), &[]);
    assert!(
        !other.succeeded() && other_now.succeeded(),
        "{}",
        other_now.describe()
    );
}

/// `on_limit: evict_oldest` on a max-1 token: a second player plays, and the first is cut at
/// once through `rtmp_control` (on_update comes only every 60 s here).
#[test]
fn evict_oldest_lets_the_second_player_play_and_cuts_the_first() {
    let Some(stack) = Stack::start_controlled() else {
        return;
    };
    let key = stack.token(publisher_key());
    let _publisher = stack.publish_live("cam3", &key, PUBLISH_KEY);
    let seat = stack.token(TokenSpec {
        max_sessions: Some(1),
        on_limit: Some(auth_core::OnLimit::EvictOldest),
        ..spec("evict-seat-0001", "seat")
    });
    let url = stack.rtmp_url("cam3", "evict-seat-0001");
    let mut first = stack.player(&url);
    assert!(
        eventually(
            "the first player's session",
            Duration::from_secs(15),
            || { stack.sessions(&seat).len() == 1 }
        ),
        "the first player must be admitted: {}",
        first.wait(Duration::ZERO).describe()
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(first.running(), "the first player plays");
    let started = Instant::now();
    let mut second = stack.player(&url);
    let mut cut = false;
    while started.elapsed() < Duration::from_secs(10) {
        if !first.running() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!(
        "evict_oldest: first player cut {:?} after the second started",
        started.elapsed()
    );
    assert!(
        cut,
        "the first player must be cut; nginx log:\n{}",
        stack.nginx_log()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        second.running(),
        "the second player plays: {}",
        second.wait(Duration::ZERO).describe()
    );
    let live: Vec<Session> = stack
        .sessions(&seat)
        .into_iter()
        .filter(|s| s.terminated_at.is_none())
        .collect();
    assert_eq!(live.len(), 1, "one seat, held by the second player");
}
