//! Edge URL signatures: links a CDN or nginx checks by itself, with no call to us.
//!
//! Where a playback token needs our `/auth` (or our JWKS), these need only a secret the edge
//! was configured with: nginx's `secure_link` ([`secure_link`], MD5 over an expression the
//! operator writes) and Akamai EdgeAuth 2.0 ([`akamai`], HMAC-SHA256 with a hex key). What they
//! cannot do follows: no session limits, no revocation before the expiry, no stream allow-list
//! beyond the signed path. They suit segments and files behind a CDN; playback tokens suit the
//! admission of a viewer.
//!
//! [`EdgeUrlSpec`] is the request (the API's body and the CLI's flags); [`EdgeSecrets`] holds
//! what the server was configured with. Time comes in as a [`Timestamp`]; nothing here reads a
//! clock or the environment.

pub mod akamai;
pub mod secure_link;

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::{Error, Result};

/// Which edge checks the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeFormat {
    /// nginx `secure_link` / `secure_link_md5`.
    NginxSecureLink,
    /// Akamai EdgeAuth 2.0 (`__token__`).
    AkamaiEdgeauth,
}

impl EdgeFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeFormat::NginxSecureLink => "nginx_secure_link",
            EdgeFormat::AkamaiEdgeauth => "akamai_edgeauth",
        }
    }
}

/// One ACL path or several (joined with `!`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Acl {
    One(String),
    Many(Vec<String>),
}

impl Acl {
    fn paths(&self) -> &[String] {
        match self {
            Acl::One(path) => std::slice::from_ref(path),
            Acl::Many(paths) => paths,
        }
    }
}

/// A request for an edge signature.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeUrlSpec {
    pub format: EdgeFormat,
    /// nginx: the path to sign, as nginx's `$uri` will read it.
    #[serde(default)]
    pub path: Option<String>,
    /// Akamai: the ACL (a path with `*` wildcards, or several); or `url`.
    #[serde(default)]
    pub acl: Option<Acl>,
    /// Akamai: sign one URL path instead of an ACL (hashed, not carried in the token).
    #[serde(default)]
    pub url: Option<String>,
    pub ttl_seconds: u64,
    /// Akamai: when the token starts to be valid (unix seconds); now when absent.
    #[serde(default)]
    pub start_time: Option<i64>,
    /// Bind the signature to one client address.
    #[serde(default)]
    pub ip: Option<IpAddr>,
    /// Akamai: `id=`.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Akamai: `data=`.
    #[serde(default)]
    pub payload: Option<String>,
}

/// A signed edge URL or token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EdgeUrl {
    pub format: EdgeFormat,
    /// nginx: the path with `md5` and `expires` appended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Akamai: the token (for `__token__=` in a query string or cookie).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub expires_at: Timestamp,
}

/// 9999-12-31T23:59:59Z: the last second RFC 3339 (four-digit years) can write.
pub const LAST_RFC3339_SECOND: i64 = 253_402_300_799;

/// The secrets the edges were configured with; either may be absent (that format is then
/// refused).
#[derive(Debug, Default)]
pub struct EdgeSecrets {
    pub secure_link: Option<secure_link::SecureLinkSecret>,
    pub akamai: Option<akamai::EdgeAuthKey>,
}

impl EdgeUrlSpec {
    /// Signs the spec at `now`; `ttl_seconds` must be from 1 to `max_ttl`. Every input error
    /// names its field.
    pub fn sign(
        &self,
        secrets: &EdgeSecrets,
        now: Timestamp,
        max_ttl: Duration,
    ) -> Result<EdgeUrl> {
        if self.ttl_seconds == 0 || self.ttl_seconds > max_ttl.as_secs() {
            return Err(Error::invalid(
                "ttl_seconds",
                format!("must be from 1 to {}", max_ttl.as_secs()),
            ));
        }
        let ttl = i64::try_from(self.ttl_seconds).unwrap_or(i64::MAX);
        let only = |field: &'static str, present: bool| {
            if present {
                Err(Error::invalid(
                    field,
                    format!("not used by `{}`", self.format.as_str()),
                ))
            } else {
                Ok(())
            }
        };
        match self.format {
            EdgeFormat::NginxSecureLink => {
                only("acl", self.acl.is_some())?;
                only("url", self.url.is_some())?;
                only("start_time", self.start_time.is_some())?;
                only("session_id", self.session_id.is_some())?;
                only("payload", self.payload.is_some())?;
                let secret = secrets.secure_link.as_ref().ok_or_else(|| {
                    Error::invalid(
                        "format",
                        "nginx_secure_link is not configured: set NGINX_SECURE_LINK_SECRET",
                    )
                })?;
                let path = self
                    .path
                    .as_deref()
                    .ok_or_else(|| Error::invalid("path", "required"))?;
                let expires = now.unix_seconds().saturating_add(ttl);
                Ok(EdgeUrl {
                    format: self.format,
                    url: Some(secure_link::signed_url(secret, path, expires, self.ip)?),
                    token: None,
                    expires_at: Timestamp::from_unix_seconds(expires),
                })
            }
            EdgeFormat::AkamaiEdgeauth => {
                only("path", self.path.is_some())?;
                let key = secrets.akamai.as_ref().ok_or_else(|| {
                    Error::invalid(
                        "format",
                        "akamai_edgeauth is not configured: set AKAMAI_EDGEAUTH_KEY",
                    )
                })?;
                let target = match (&self.acl, &self.url) {
                    (Some(acl), None) => akamai::Target::Acl(acl.paths()),
                    (None, Some(url)) => akamai::Target::Url(url),
                    _ => return Err(Error::invalid("acl", "give either `acl` or `url`")),
                };
                let start = self.start_time.unwrap_or(now.unix_seconds());
                // The token's end must be a time RFC 3339 can write, whatever its lifetime.
                let latest = LAST_RFC3339_SECOND
                    .saturating_sub(i64::try_from(max_ttl.as_secs()).unwrap_or(i64::MAX));
                if start <= 0 || start > latest {
                    return Err(Error::invalid(
                        "start_time",
                        format!("must be from 1 (after 1970) to {latest}"),
                    ));
                }
                let ip = self.ip.map(|ip| ip.to_string());
                let token = akamai::Token {
                    start,
                    end: start.saturating_add(ttl),
                    target,
                    ip: ip.as_deref(),
                    session_id: self.session_id.as_deref(),
                    payload: self.payload.as_deref(),
                };
                Ok(EdgeUrl {
                    format: self.format,
                    url: None,
                    token: Some(token.sign(key)?),
                    expires_at: Timestamp::from_unix_seconds(token.end),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);
    const DAY: Duration = Duration::from_secs(86400);

    fn secrets() -> EdgeSecrets {
        EdgeSecrets {
            secure_link: Some(secure_link::SecureLinkSecret::new("a-long-enough-secret").unwrap()),
            akamai: Some(
                akamai::EdgeAuthKey::from_hex("0123456789abcdef0123456789abcdef").unwrap(),
            ),
        }
    }

    fn spec(json: serde_json::Value) -> EdgeUrlSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn each_format_signs() {
        let nginx = spec(serde_json::json!({
            "format": "nginx_secure_link", "path": "/video/a.mp4", "ttl_seconds": 60}))
        .sign(&secrets(), NOW, DAY)
        .unwrap();
        let url = nginx.url.unwrap();
        assert!(url.starts_with("/video/a.mp4?md5="), "{url}");
        assert!(url.ends_with("&expires=1800000060"), "{url}");
        let akamai = spec(serde_json::json!({
            "format": "akamai_edgeauth", "acl": ["/live/*", "/vod/*"], "ttl_seconds": 60}))
        .sign(&secrets(), NOW, DAY)
        .unwrap();
        let token = akamai.token.unwrap();
        assert!(
            token.starts_with("st=1800000000~exp=1800000060~acl=/live/*!/vod/*~hmac="),
            "{token}"
        );
        assert_eq!(
            akamai.expires_at,
            NOW.saturating_add(Duration::from_secs(60))
        );
    }

    #[test]
    fn bad_input_names_its_field() {
        let field = |json: serde_json::Value| {
            spec(json)
                .sign(&secrets(), NOW, DAY)
                .unwrap_err()
                .field()
                .unwrap()
        };
        use serde_json::json;
        assert_eq!(
            field(json!({"format": "nginx_secure_link", "ttl_seconds": 60})),
            "path"
        );
        assert_eq!(
            field(json!({"format": "nginx_secure_link", "path": "/a", "ttl_seconds": 0})),
            "ttl_seconds"
        );
        assert_eq!(
            field(json!({"format": "nginx_secure_link", "path": "/a", "ttl_seconds": 86401})),
            "ttl_seconds"
        );
        assert_eq!(
            field(json!({"format": "nginx_secure_link", "path": "/a?x=1", "ttl_seconds": 6})),
            "path"
        );
        assert_eq!(
            field(
                json!({"format": "nginx_secure_link", "path": "/a", "acl": "/a", "ttl_seconds": 6})
            ),
            "acl"
        );
        assert_eq!(
            field(json!({"format": "akamai_edgeauth", "ttl_seconds": 6})),
            "acl"
        );
        assert_eq!(
            field(json!({"format": "akamai_edgeauth", "acl": "/a", "url": "/b", "ttl_seconds": 6})),
            "acl"
        );
        assert_eq!(
            field(json!({"format": "akamai_edgeauth", "acl": "/a~b", "ttl_seconds": 6})),
            "acl"
        );
        assert_eq!(
            field(
                json!({"format": "akamai_edgeauth", "acl": "/a", "ttl_seconds": 6, "payload": "x~y"})
            ),
            "payload"
        );
        let unconfigured =
            spec(json!({"format": "akamai_edgeauth", "acl": "/a", "ttl_seconds": 6}))
                .sign(&EdgeSecrets::default(), NOW, DAY)
                .unwrap_err();
        assert_eq!(unconfigured.field(), Some("format"));
        assert!(unconfigured.to_string().contains("AKAMAI_EDGEAUTH_KEY"));
    }
}
