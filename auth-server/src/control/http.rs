//! The smallest HTTP/1.1 client the pushes need: plain `http://` (every media server's control
//! API is on a trusted network), one request per connection, the status code as the answer.

use std::fmt;
use std::io;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a path segment escapes: everything but RFC 3986's unreserved characters.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A base URL: `http://host[:port][/path]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Url {
    host: String,
    port: u16,
    /// Without a trailing slash; empty for the root.
    path: String,
    query: String,
}

impl fmt::Debug for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Url {
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix("http://")
            .ok_or("expected an http:// URL")?;
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err("credentials do not belong in the URL".into());
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (host, rest) = v6.split_once(']').ok_or("an unclosed `[`")?;
                (host, rest.strip_prefix(':'))
            }
            None => match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        let port = match port {
            None => 80,
            Some(port) => port
                .parse::<u16>()
                .map_err(|_| format!("`{port}` is not a port"))?,
        };
        if host.is_empty() {
            return Err("no host".into());
        }
        if path.contains('?') || path.contains('#') {
            return Err("expected a base URL, without a query".into());
        }
        Ok(Url {
            host: host.to_owned(),
            port,
            path: path.trim_end_matches('/').to_owned(),
            query: String::new(),
        })
    }

    /// This base with `segments` appended (each percent-encoded) and `query` pairs.
    pub fn join(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut path = self.path.clone();
        for segment in segments {
            path.push('/');
            path.extend(percent_encoding::utf8_percent_encode(segment, SEGMENT));
        }
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        Url {
            host: self.host.clone(),
            port: self.port,
            path,
            query,
        }
    }

    pub fn path_and_query(&self) -> String {
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        if self.query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{}", self.query)
        }
    }

    /// For logs: the whole URL (it holds no secret: credentials never go in it).
    pub fn redacted(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("http://{host}:{}{}", self.port, self.path_and_query())
    }
}

/// One call: method, URL and optional Basic credentials (`user:password`).
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    pub method: &'static str,
    pub url: Url,
    pub basic_auth: Option<String>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("method", &self.method)
            .field("url", &self.url)
            .field(
                "basic_auth",
                &self.basic_auth.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Sends `target` and answers its status code.
pub async fn send(target: &Target) -> io::Result<u16> {
    let mut stream = TcpStream::connect((target.url.host.as_str(), target.url.port)).await?;
    let host = if target.url.host.contains(':') {
        format!("[{}]:{}", target.url.host, target.url.port)
    } else {
        format!("{}:{}", target.url.host, target.url.port)
    };
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: 0\r\nUser-Agent: auth-server\r\n",
        target.method,
        target.url.path_and_query()
    );
    if let Some(credentials) = &target.basic_auth {
        head.push_str("Authorization: Basic ");
        head.push_str(&base64::engine::general_purpose::STANDARD.encode(credentials));
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    let mut answer = Vec::with_capacity(256);
    let mut buf = [0u8; 512];
    // The status line is all this needs; read until it is complete.
    while !answer.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if answer.len() > 8192 {
            break;
        }
    }
    let line = answer.split(|&b| b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    match (parts.next(), parts.next().map(str::parse::<u16>)) {
        (Some(version), Some(Ok(status))) if version.starts_with("HTTP/1.") => Ok(status),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not an HTTP answer: `{line}`"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_join_and_refuse() {
        let base = Url::parse("http://127.0.0.1:8081/control/").unwrap();
        assert_eq!(
            base.join(&["drop", "client"], &[("app", "live"), ("name", "a b")])
                .path_and_query(),
            "/control/drop/client?app=live&name=a+b"
        );
        let root = Url::parse("http://srs").unwrap();
        assert_eq!(root.port, 80);
        assert_eq!(
            root.join(&["api", "v1", "clients", "x/y"], &[])
                .path_and_query(),
            "/api/v1/clients/x%2Fy"
        );
        assert_eq!(Url::parse("http://[::1]:9997").unwrap().host, "::1");
        for bad in [
            "https://x",
            "http://",
            "http://u:p@x",
            "http://x:99999",
            "http://x/?a=1",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }
}
