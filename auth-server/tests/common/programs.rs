//! Finding the outside programs the end-to-end tests drive (nginx and its RTMP module, ffmpeg,
//! Prometheus, ...) and the loopback ports they listen on.

use std::net::TcpListener;
use std::path::PathBuf;

/// A port free on 127.0.0.1 now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// `program` on the PATH, or in the sbin folders a root-less PATH may lack (Debian's nginx).
pub fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Where Debian's libnginx-mod-rtmp puts the module, or `AUTH_TEST_NGINX_RTMP_MODULE`.
pub fn rtmp_module() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("AUTH_TEST_NGINX_RTMP_MODULE") {
        return Some(PathBuf::from(path));
    }
    [
        "/usr/lib/nginx/modules/ngx_rtmp_module.so",
        "/usr/lib64/nginx/modules/ngx_rtmp_module.so",
        "/usr/share/nginx/modules/ngx_rtmp_module.so",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}
