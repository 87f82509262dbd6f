//! The web pages in a real browser: headless Chromium (Debian's `chromium`, driven by
//! `playwright-core` from `tests/web/`) against the real binary, on the system clock (the wallet
//! computes codes from the browser's clock). `tests/web/pages.mjs` walks the pages; this test
//! starts the server, runs it, and checks the wallet's code with an independent RFC 6238
//! implementation (`totp-rs`).
//!
//! Watch plays a real HLS stream: ffmpeg publishes a test pattern to nginx-rtmp, whose HLS files
//! nginx serves behind `auth_request` to our `/hooks/nginx-auth` (as in `e2e_nginx.rs`); the
//! wallet mints a playback token from the ticket and hls.js sends it with every request.
//!
//! Needs `chromium`, `node`, `ffmpeg`, `nginx` with its RTMP module and `npm ci` in
//! `tests/web/` (`.ci/test` sets them up); `AUTH_TEST_BROWSER=skip` skips it, and
//! `AUTH_TEST_E2E=skip` skips only the Watch part. `AUTH_WEB_SCREENSHOTS=<dir>` also writes
//! screenshots of every page (see `auth-server/web/screenshots.sh`).

mod common;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::programs::{find, free_port, rtmp_module};
use common::{bin, ServerProcess};
use serde_json::Value;
use totp_rs::{Algorithm, Secret, TOTP};

const KEY: &str = "web-test-writer-key-0123456789";

/// The stream Watch plays: nginx-rtmp's `live/conf`, served as `/hls/conf.m3u8`.
const STREAM: &str = "conf";

/// A child process killed when dropped, pass or fail.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nginx: RTMP in (no publish check: the viewer side is what is tested here), HLS out behind
/// `auth_request` to `auth`, with CORS so that the wallet, on the auth server's origin, may read
/// it. Returns nginx and ffmpeg publishing a test pattern, once the playlist exists.
fn media_stack(dir: &Path, auth: &str, rtmp: u16, http: u16) -> (Killed, Killed) {
    let module = rtmp_module().expect("the nginx RTMP module (apt-get install libnginx-mod-rtmp)");
    let nginx = find("nginx").expect("nginx (apt-get install nginx)");
    std::fs::create_dir_all(dir.join("hls")).unwrap();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let root = dir.display();
    let config = format!(
        r#"load_module {module};
master_process off;
error_log {root}/logs/error.log info;
pid {root}/nginx.pid;
events {{ worker_connections 256; }}
rtmp {{
    server {{
        listen 127.0.0.1:{rtmp};
        application live {{
            live on;
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
            alias {root}/hls/;
            add_header Cache-Control no-cache;
            add_header Access-Control-Allow-Origin * always;
        }}
        location = /_auth {{
            internal;
            proxy_pass http://{auth}/hooks/nginx-auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Real-IP $remote_addr;
        }}
    }}
}}
"#,
        module = module.display(),
    );
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, config).unwrap();
    let nginx = Killed(
        Command::new(nginx)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("nginx to listen", || {
        TcpStream::connect(("127.0.0.1", rtmp)).is_ok()
            && TcpStream::connect(("127.0.0.1", http)).is_ok()
    });
    let publisher = Killed(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
            .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=15"])
            .args([
                "-t",
                "300",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-tune",
                "zerolatency",
            ])
            .args(["-g", "15", "-pix_fmt", "yuv420p", "-f", "flv"])
            .arg(format!("rtmp://127.0.0.1:{rtmp}/live/{STREAM}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let playlist = dir.join(format!("hls/{STREAM}.m3u8"));
    wait_for("the HLS playlist", || {
        std::fs::read_to_string(&playlist).is_ok_and(|p| p.matches(".ts").count() >= 2)
    });
    (nginx, publisher)
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "waited 30 s for {what}, in vain");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn wallet_door_and_docs_in_chromium() {
    if std::env::var("AUTH_TEST_BROWSER").as_deref() == Ok("skip") {
        eprintln!("AUTH_TEST_BROWSER=skip: not running the browser tests");
        return;
    }
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web");
    assert!(
        scripts.join("node_modules/playwright-core").is_dir(),
        "run `npm ci` in {} first (.ci/test does), or set AUTH_TEST_BROWSER=skip",
        scripts.display()
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "the browser tests need Debian's chromium (apt-get install chromium), or set \
         AUTH_TEST_BROWSER=skip"
    );
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("web.db").display());
    // A signing key, for the wallet's e-tickets. Both commands run in `dir`, where the first
    // creates the token hashing key the second reads.
    let generated = bin()
        .current_dir(dir.path())
        .args(["keys", "generate", "--algorithm", "ed25519"])
        .env("DATABASE_URL", &database)
        .output()
        .unwrap();
    assert!(generated.status.success(), "{generated:?}");
    let watch = std::env::var("AUTH_TEST_E2E").as_deref() != Ok("skip");
    let (rtmp, http) = (free_port(), free_port());
    let mut command = bin();
    command
        .current_dir(dir.path())
        .arg("serve")
        .env("DATABASE_URL", &database)
        .env("API_KEYS", format!("rw:{KEY}"))
        .env("API_HOST", "127.0.0.1")
        .env(
            "PLAYER_URL_TEMPLATE",
            format!("http://127.0.0.1:{http}/hls/{{stream}}.m3u8?token={{token}}"),
        );
    let server = ServerProcess::spawn(command);
    let base = server.base.clone();
    let media = dir.path().join("media");
    let _media = watch.then(|| media_stack(&media, base.trim_start_matches("http://"), rtmp, http));

    let mut node = Command::new("node");
    node.arg(scripts.join("pages.mjs"))
        .current_dir(&scripts)
        .env("BASE", &base)
        .env("API_KEY", KEY)
        .env("WORK", dir.path())
        .env("WATCH", if watch { STREAM } else { "" });
    if let Ok(shots) = std::env::var("AUTH_WEB_SCREENSHOTS") {
        node.env("SHOTS", shots);
    }
    let output = node.output().expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let facts: Vec<Value> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let fact = |key: &str| {
        facts
            .iter()
            .find(|f| f.get(key).is_some())
            .unwrap_or_else(|| panic!("no {key} in:\n{stdout}"))
            .clone()
    };

    // The code the wallet showed is the RFC 6238 code of its secret at the step it showed it.
    let wallet = fact("wallet_code");
    let secret = Secret::Encoded(wallet["secret"].as_str().unwrap().to_owned())
        .to_bytes()
        .unwrap();
    let totp = TOTP::new_unchecked(Algorithm::SHA1, 6, 1, 30, secret, None, String::new());
    let step = wallet["step"].as_u64().unwrap();
    assert_eq!(
        wallet["wallet_code"].as_str().unwrap(),
        totp.generate(step * 30)
    );
    assert!(fact("docs_operations")["docs_operations"].as_u64().unwrap() > 20);
    fact("door_typed");
    fact("door_camera");
    fact("console_live_sessions");
    fact("console_kicked");
    if watch {
        let played = fact("watch_seconds");
        assert!(played["watch_seconds"].as_f64().unwrap() > 1.0, "{played}");
    }
    drop(server);
}
