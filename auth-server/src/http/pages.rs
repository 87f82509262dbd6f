//! The web pages (`/`, `/docs`, `/wallet`, `/door`, `/console`) and their assets
//! (`/assets/...`), embedded in the binary: `cargo build` needs no npm, and no request leaves
//! for the internet at run time.
//!
//! Sources live in `auth-server/web/` (hand-written HTML, CSS and JS modules, no bundler);
//! third-party files are in `web/vendor/`, copied from npm at pinned versions by
//! `web/vendor.sh`. Every answer carries a strict Content-Security-Policy (no inline script),
//! an ETag (a 304 to a matching `If-None-Match`) and a Cache-Control fitting its kind.
//!
//! Pages are not API endpoints: they are not in [`super::ROUTES`] (which the OpenAPI document
//! describes) and are tried only after no route matched.

use std::sync::LazyLock;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{
    HeaderValue, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
};
use hyper::{Method, Request, Response, StatusCode};

use super::Body;

/// The pages' Content-Security-Policy. Scripts and styles only from this server; no inline
/// script anywhere. Inline *styles* are allowed because Swagger UI sets `style` attributes;
/// images may be `data:` URLs (the QR codes the API answers with) and media `blob:` URLs (hls.js
/// feeds the video element through Media Source Extensions). The pages fetch from this origin
/// only, and from the origin of `PLAYER_URL_TEMPLATE` when it names one (the HLS server the
/// wallet's player reads from: `http(s)://host[:port]`).
pub fn policy(player_url_template: &str) -> HeaderValue {
    let media = player_origin(player_url_template)
        .map(|origin| format!(" {origin}"))
        .unwrap_or_default();
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: blob:; media-src 'self' blob:{media}; connect-src 'self'{media}; \
         font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    HeaderValue::from_str(&csp).unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
}

/// `scheme://host[:port]` of an absolute http(s) URL template, if it is one whose origin is
/// plain (no placeholder, quote or space could widen the policy).
fn player_origin(template: &str) -> Option<String> {
    let (scheme, rest) = template.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split('/').next()?;
    let plain = !authority.is_empty()
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    plain.then(|| format!("{scheme}://{authority}"))
}

struct Asset {
    path: &'static str,
    content_type: &'static str,
    /// Vendored files change only with a new binary: they may be kept an hour without asking.
    /// Our own files are revalidated every time (cheap: an ETag match is a bodiless 304).
    vendored: bool,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $file:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            vendored: false,
            bytes: include_bytes!(concat!("../../web/", $file)),
        }
    };
    (vendor $path:literal, $file:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            vendored: true,
            bytes: include_bytes!(concat!("../../web/vendor/", $file)),
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("/", "index.html", HTML),
    asset!("/docs", "docs.html", HTML),
    asset!("/wallet", "wallet.html", HTML),
    asset!("/door", "door.html", HTML),
    asset!("/console", "console.html", HTML),
    asset!("/assets/app.css", "app.css", CSS),
    asset!("/assets/api.js", "api.js", JS),
    asset!("/assets/totp.js", "totp.js", JS),
    asset!("/assets/docs.js", "docs.js", JS),
    asset!("/assets/wallet.js", "wallet.js", JS),
    asset!("/assets/door.js", "door.js", JS),
    asset!("/assets/console.js", "console.js", JS),
    asset!(vendor "/assets/vendor/swagger-ui-bundle.js", "swagger-ui-bundle.js", JS),
    asset!(vendor "/assets/vendor/swagger-ui.css", "swagger-ui.css", CSS),
    asset!(vendor "/assets/vendor/qrcode.js", "qrcode.js", JS),
    asset!(vendor "/assets/vendor/jsQR.js", "jsQR.js", JS),
    asset!(vendor "/assets/vendor/hls.min.js", "hls.min.js", JS),
];

/// One strong ETag per asset, computed once (FNV-1a 64 of the bytes: a change detector, not a
/// security boundary).
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
            for byte in asset.bytes {
                hash ^= u64::from(*byte);
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
            HeaderValue::from_str(&format!("\"{hash:016x}\""))
                .unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
        })
        .collect()
});

/// The page or asset at the request's path, for `GET` and `HEAD`; `None` when there is none
/// (the caller answers its JSON 404 or 405).
pub fn serve<B>(request: &Request<B>, policy: &HeaderValue) -> Option<Response<Body>> {
    let path = request.uri().path();
    // `/wallet/` and `/wallet` are the same page.
    let path = match path.strip_suffix('/') {
        Some(stripped) if !stripped.is_empty() => stripped,
        _ => path,
    };
    let index = ASSETS.iter().position(|asset| asset.path == path)?;
    let head = match *request.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => return None,
    };
    let asset = &ASSETS[index];
    let etag = &ETAGS[index];
    let not_modified = request
        .headers()
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == "*" || tag.trim().as_bytes() == etag.as_bytes());
    let body = if not_modified || head {
        Bytes::new()
    } else {
        Bytes::from_static(asset.bytes)
    };
    let mut response = Response::new(Full::new(body));
    if not_modified {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
    }
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    if head && !not_modified {
        // What a GET would send, as HEAD promises; the empty body would otherwise say 0.
        headers.insert(CONTENT_LENGTH, HeaderValue::from(asset.bytes.len()));
    }
    headers.insert(ETAG, etag.clone());
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static(if asset.vendored {
            "public, max-age=3600"
        } else {
            "no-cache"
        }),
    );
    headers.insert("content-security-policy", policy.clone());
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, etag: Option<&str>) -> Option<Response<Body>> {
        let mut request = Request::builder().method("GET").uri(path);
        if let Some(etag) = etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        serve(
            &request.body(()).unwrap(),
            &policy("/{stream}.m3u8?token={token}"),
        )
    }

    #[test]
    fn the_player_origin_joins_the_policy_when_plain() {
        let csp = policy("https://cdn.example.org:8443/hls/{stream}.m3u8?token={token}");
        let csp = csp.to_str().unwrap();
        assert!(
            csp.contains("connect-src 'self' https://cdn.example.org:8443;"),
            "{csp}"
        );
        assert!(
            csp.contains("media-src 'self' blob: https://cdn.example.org:8443;"),
            "{csp}"
        );
        for odd in [
            "/{stream}/index.m3u8?token={token}",
            "https://{stream}.cdn/x?t={token}",
            "https://a b/{token}",
            "ftp://x/{token}",
            "https://x';/{token}",
        ] {
            let csp = policy(odd);
            assert!(
                csp.to_str().unwrap().contains("connect-src 'self';"),
                "{odd}: {csp:?}"
            );
        }
    }

    #[test]
    fn pages_have_types_policies_and_etags() {
        let page = get("/wallet", None).unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()[CONTENT_TYPE], HTML);
        assert_eq!(page.headers()[CACHE_CONTROL], "no-cache");
        let csp = page.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self';"), "{csp}");
        let etag = page.headers()[ETAG].to_str().unwrap().to_owned();
        let again = get("/wallet/", Some(&etag)).unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        let vendored = get("/assets/vendor/jsQR.js", Some("\"other\"")).unwrap();
        assert_eq!(vendored.status(), StatusCode::OK);
        assert_eq!(vendored.headers()[CONTENT_TYPE], JS);
        assert_eq!(vendored.headers()[CACHE_CONTROL], "public, max-age=3600");
        assert!(get("/nothing", None).is_none());
        assert!(get("/assets/", None).is_none());
    }

    #[test]
    fn no_page_has_an_inline_script() {
        for asset in ASSETS.iter().filter(|a| a.content_type == HTML) {
            let html = std::str::from_utf8(asset.bytes).unwrap();
            for tag in html.split("<script").skip(1) {
                let open = tag.split('>').next().unwrap();
                assert!(open.contains("src="), "{}: inline script", asset.path);
            }
            for handler in [
                "onclick=",
                "onload=",
                "onsubmit=",
                "oninput=",
                "onchange=",
                "onerror=",
            ] {
                assert!(!html.contains(handler), "{}: inline {handler}", asset.path);
            }
        }
    }
}
