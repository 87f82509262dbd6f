//! nginx `secure_link` (ngx_http_secure_link_module), in its MD5 form:
//!
//! ```nginx
//! secure_link     $arg_md5,$arg_expires;
//! secure_link_md5 "$secure_link_expires$uri$remote_addr SECRET";   # with an address
//! secure_link_md5 "$secure_link_expires$uri SECRET";                # without
//! ```
//!
//! `md5` is the unpadded base64url of the binary MD5 of that string, `expires` unix seconds.
//! The strings here are those of nginx's documentation example; an operator's
//! `secure_link_md5` must be the same expression, character for character.
//!
//! MD5 is what the module offers (no HMAC); the secret at the end of the string is what makes
//! the hash unforgeable for now. Links are short-lived, which is the module's own advice.

use std::fmt;
use std::net::IpAddr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use md5::{Digest, Md5};

use crate::error::{Error, Result};

/// Shortest secret accepted.
pub const MIN_SECRET_LEN: usize = 16;

/// The secret written into the operator's `secure_link_md5`. [`fmt::Debug`] does not show it.
#[derive(Clone)]
pub struct SecureLinkSecret(String);

impl fmt::Debug for SecureLinkSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecureLinkSecret(..)")
    }
}

impl SecureLinkSecret {
    /// At least [`MIN_SECRET_LEN`] printable ASCII characters, without spaces or quotes (it sits
    /// inside a quoted nginx string, after a space). Errors never repeat it.
    pub fn new(secret: &str) -> Result<Self> {
        let printable = secret
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\'' && b != b'$' && b != b'\\');
        if secret.len() < MIN_SECRET_LEN || !printable {
            return Err(Error::invalid(
                "secret",
                format!(
                    "expected at least {MIN_SECRET_LEN} printable characters, without spaces, \
                     quotes, `$` or `\\`"
                ),
            ));
        }
        Ok(SecureLinkSecret(secret.to_owned()))
    }
}

/// The `md5` argument for `text` (`$secure_link_expires$uri[$remote_addr]` or any expression the
/// operator configured, without the secret), the secret appended after a space as in nginx's
/// example.
pub fn md5_arg(secret: &SecureLinkSecret, text: &str) -> String {
    let mut hasher = Md5::new();
    hasher.update(text.as_bytes());
    hasher.update(b" ");
    hasher.update(secret.0.as_bytes());
    URL_SAFE_NO_PAD.encode(hasher.finalize())
}

/// What nginx's `$uri` will read for `path`: it decodes `%XX` and resolves dot segments and
/// double slashes before the module sees it. Only paths that read the same to nginx and here are
/// signed: a leading `/`, then unreserved characters and `/`, no empty or dot segment.
pub fn check_path(path: &str) -> Result<()> {
    let refused = |why: &str| Err(Error::invalid("path", why.to_owned()));
    if !path.starts_with('/') || path.len() > 2048 {
        return refused("must start with `/` (at most 2048 characters)");
    }
    let plain = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b));
    if !plain {
        return refused(
            "only A-Z a-z 0-9 - . _ ~ and / (no query string, no `%` escapes: nginx signs the \
             decoded $uri)",
        );
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    // A trailing `/` (an empty last segment) is a directory, which nginx reads as it is.
    let odd = |(i, s): (usize, &&str)| *s == "." || *s == ".." || (s.is_empty() && i < last);
    if segments.iter().enumerate().any(odd) {
        return refused("no empty, `.` or `..` segment");
    }
    Ok(())
}

/// `<path>?md5=..&expires=..` for `path` until `expires`, bound to `ip` when given.
pub fn signed_url(
    secret: &SecureLinkSecret,
    path: &str,
    expires: i64,
    ip: Option<IpAddr>,
) -> Result<String> {
    check_path(path)?;
    let text = match ip {
        Some(ip) => format!("{expires}{path}{ip}"),
        None => format!("{expires}{path}"),
    };
    Ok(format!(
        "{path}?md5={}&expires={expires}",
        md5_arg(secret, &text)
    ))
}

/// The query arguments (`md5=..&expires=..`) of a segment signature for `stream`, for nginx
/// `auth_request` playlist answers (`SEGMENT_TOKEN_FORMAT=nginx_secure_link`). nginx checks it
/// with
///
/// ```nginx
/// secure_link_md5 "$secure_link_expires|$hls_stream|$remote_addr SECRET";
/// ```
///
/// where `$hls_stream` is the stream the segment's path belongs to (a `map` on `$uri`). The `|`
/// keep the parts apart (a stream cannot end where an address begins) and keep these strings
/// from ever equalling a path's (a `$uri` starts with `/`). `None` when the stream holds a `|`.
pub fn segment_args(
    secret: &SecureLinkSecret,
    stream: &str,
    ip: IpAddr,
    expires: i64,
) -> Option<String> {
    if stream.contains('|') || stream.is_empty() {
        return None;
    }
    let md5 = md5_arg(secret, &format!("{expires}|{stream}|{ip}"));
    Some(format!("md5={md5}&expires={expires}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> SecureLinkSecret {
        SecureLinkSecret::new("secret-of-sixteen").unwrap()
    }

    #[test]
    fn the_documentation_example() {
        // nginx.org's example, computed independently with
        // `echo -n '2147483647/s/link127.0.0.1 secret-of-sixteen' | openssl md5 -binary |
        //  openssl base64 | tr +/ -_ | tr -d =`.
        let url = signed_url(
            &secret(),
            "/s/link",
            2147483647,
            Some("127.0.0.1".parse().unwrap()),
        )
        .unwrap();
        assert_eq!(
            url,
            format!("/s/link?md5={}&expires=2147483647", EXAMPLE_MD5)
        );
        let without_ip = signed_url(&secret(), "/s/link", 2147483647, None).unwrap();
        assert_ne!(without_ip, url);
    }

    /// See `the_documentation_example`.
    const EXAMPLE_MD5: &str = "Tw01gPv_0gOTTtJwK4CfBA";

    #[test]
    fn paths_nginx_could_read_otherwise_are_refused() {
        for path in [
            "a", "/a b", "/a%2e", "/a?x", "/a/../b", "/./a", "/a//b", "/a#b", "/é",
        ] {
            assert_eq!(
                signed_url(&secret(), path, 1, None).unwrap_err().field(),
                Some("path"),
                "{path}"
            );
        }
        for path in ["/", "/a", "/a/b.m3u8", "/dir/", "/v-1_2.~x"] {
            assert!(signed_url(&secret(), path, 1, None).is_ok(), "{path}");
        }
    }

    #[test]
    fn secrets_are_checked_and_never_shown() {
        for bad in [
            "short",
            "has a space inside it",
            "quote\"inside-the-secret",
            "$var-inside-the-secret",
        ] {
            let err = SecureLinkSecret::new(bad).unwrap_err().to_string();
            assert!(!err.contains(bad), "{err}");
        }
        assert_eq!(format!("{:?}", secret()), "SecureLinkSecret(..)");
    }

    #[test]
    fn segment_args_bind_stream_address_and_expiry() {
        let ip = "10.0.0.1".parse().unwrap();
        let a = segment_args(&secret(), "cam1", ip, 100).unwrap();
        assert!(a.starts_with("md5=") && a.ends_with("&expires=100"), "{a}");
        assert_ne!(a, segment_args(&secret(), "cam2", ip, 100).unwrap());
        assert_ne!(
            a,
            segment_args(&secret(), "cam1", "10.0.0.2".parse().unwrap(), 100).unwrap()
        );
        assert_eq!(segment_args(&secret(), "a|b", ip, 100), None);
    }
}
