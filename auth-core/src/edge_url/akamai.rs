//! Akamai EdgeAuth 2.0 tokens (the Property Manager "Auth Token 2.0 Verification" behavior), as
//! Akamai's reference generators make them (PyPI `akamai-edgeauth`, `EdgeAuth-Token-*`):
//!
//! `[ip=IP~]st=START~exp=END~acl=PATH[!PATH...][~id=ID][~data=DATA]~hmac=HEX`
//!
//! The HMAC (SHA-256, the default algorithm) is keyed with the hex-decoded key and covers the
//! token text before `~hmac=`; a URL token carries no `acl=`, and its hash covers `~url=PATH`
//! instead, appended after the other fields. Fields are joined with `~`, ACL paths with `!`, so
//! neither may appear inside a value (refused, since the reference generator would silently
//! make a token that cannot verify). No value is escaped ("escape early" off, the default).

use std::fmt;

use ring::hmac;

use crate::error::{Error, Result};

/// Shortest key accepted, in bytes (32 hex characters).
pub const MIN_KEY_LEN: usize = 16;

/// The key configured in the Akamai property (hex there, bytes here). [`fmt::Debug`] does not
/// show it.
#[derive(Clone)]
pub struct EdgeAuthKey(hmac::Key);

impl fmt::Debug for EdgeAuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EdgeAuthKey(..)")
    }
}

impl EdgeAuthKey {
    /// From its hex form, at least [`MIN_KEY_LEN`] bytes. Errors never repeat it.
    pub fn from_hex(key: &str) -> Result<Self> {
        match hex::decode(key.trim()) {
            Ok(bytes) if bytes.len() >= MIN_KEY_LEN => {
                Ok(EdgeAuthKey(hmac::Key::new(hmac::HMAC_SHA256, &bytes)))
            }
            _ => Err(Error::invalid(
                "key",
                format!(
                    "expected an even number of hex characters, at least {}",
                    MIN_KEY_LEN * 2
                ),
            )),
        }
    }
}

/// What the token grants.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// Paths with `*` wildcards; carried in the token.
    Acl(&'a [String]),
    /// One URL path; only hashed.
    Url(&'a str),
}

/// A token's fields.
#[derive(Debug, Clone, Copy)]
pub struct Token<'a> {
    /// `st`, unix seconds.
    pub start: i64,
    /// `exp`, unix seconds.
    pub end: i64,
    pub target: Target<'a>,
    pub ip: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub payload: Option<&'a str>,
}

/// A value must be non-empty printable ASCII without the field delimiter (nor, in an ACL, the
/// ACL delimiter).
fn check(field: &'static str, value: &str, acl: bool) -> Result<()> {
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'~' && !(acl && b == b'!'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            if acl {
                "printable characters without spaces, `~` or `!`"
            } else {
                "printable characters without spaces or `~`"
            },
        ))
    }
}

impl Token<'_> {
    /// The token text, signed with `key`.
    pub fn sign(&self, key: &EdgeAuthKey) -> Result<String> {
        if self.end <= self.start {
            return Err(Error::invalid(
                "ttl_seconds",
                "the token would already be over",
            ));
        }
        let mut fields: Vec<String> = Vec::with_capacity(7);
        if let Some(ip) = self.ip {
            check("ip", ip, false)?;
            fields.push(format!("ip={ip}"));
        }
        fields.push(format!("st={}", self.start));
        fields.push(format!("exp={}", self.end));
        if let Target::Acl(paths) = self.target {
            if paths.is_empty() {
                return Err(Error::invalid("acl", "at least one path"));
            }
            for path in paths {
                check("acl", path, true)?;
            }
            fields.push(format!("acl={}", paths.join("!")));
        }
        if let Some(id) = self.session_id {
            check("session_id", id, false)?;
            fields.push(format!("id={id}"));
        }
        if let Some(data) = self.payload {
            check("payload", data, false)?;
            fields.push(format!("data={data}"));
        }
        let mut hashed = fields.join("~");
        if let Target::Url(url) = self.target {
            check("url", url, false)?;
            hashed.push_str("~url=");
            hashed.push_str(url);
        }
        let tag = hmac::sign(&key.0, hashed.as_bytes());
        fields.push(format!("hmac={}", hex::encode(tag.as_ref())));
        Ok(fields.join("~"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> EdgeAuthKey {
        EdgeAuthKey::from_hex("0123456789abcdef0123456789abcdef").unwrap()
    }

    #[test]
    fn tokens_have_the_reference_shape() {
        let acl = ["/live/*".to_owned(), "/vod/*".to_owned()];
        let token = Token {
            start: 1_800_000_000,
            end: 1_800_000_300,
            target: Target::Acl(&acl),
            ip: Some("203.0.113.7"),
            session_id: Some("s-1"),
            payload: Some("hello"),
        }
        .sign(&key())
        .unwrap();
        let (text, hmac) = token.rsplit_once("~hmac=").unwrap();
        assert_eq!(
            text,
            "ip=203.0.113.7~st=1800000000~exp=1800000300~acl=/live/*!/vod/*~id=s-1~data=hello"
        );
        assert_eq!(hmac.len(), 64);
        // A URL token carries no path; the path is in the hash only.
        let url = |path| {
            Token {
                start: 1,
                end: 2,
                target: Target::Url(path),
                ip: None,
                session_id: None,
                payload: None,
            }
            .sign(&key())
            .unwrap()
        };
        assert!(url("/a.m3u8").starts_with("st=1~exp=2~hmac="));
        assert_ne!(url("/a.m3u8"), url("/b.m3u8"));
    }

    #[test]
    fn the_key_is_checked_and_never_shown() {
        for bad in [
            "",
            "abc",
            "zz".repeat(16).as_str(),
            "ab".repeat(15).as_str(),
        ] {
            let err = EdgeAuthKey::from_hex(bad).unwrap_err().to_string();
            assert!(bad.is_empty() || !err.contains(bad), "{err}");
        }
        assert_eq!(format!("{:?}", key()), "EdgeAuthKey(..)");
    }
}
