//! Calls to the media servers' control APIs: plain `http://` base URLs (every media server's
//! control API is on a trusted network), one request each, the status code as the answer.
//! URLs are built with the `url` crate and sent with `ureq` on the blocking pool: both were
//! already in the tree (ureq for the tests), and neither is this server's job to write.

use std::fmt;
use std::io;
use std::time::Duration;

use base64::Engine as _;

/// A base URL: `http://host[:port][/path]`, no credentials, no query.
#[derive(Clone, PartialEq, Eq)]
pub struct Url(url::Url);

impl fmt::Debug for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Url {
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = url::Url::parse(text).map_err(|e| e.to_string())?;
        if url.scheme() != "http" {
            return Err("expected an http:// URL".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("credentials do not belong in the URL".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("expected a base URL, without a query".into());
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("no host".into());
        }
        Ok(Url(url))
    }

    /// This base with `segments` appended (each percent-encoded as one segment) and `query`
    /// pairs.
    pub fn join(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.0.clone();
        // An http URL always has a path to extend.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Url(url)
    }

    pub fn path_and_query(&self) -> String {
        match self.0.query() {
            Some(query) => format!("{}?{query}", self.0.path()),
            None => self.0.path().to_owned(),
        }
    }

    /// For logs: the whole URL (it holds no secret: credentials never go in it).
    pub fn redacted(&self) -> String {
        self.0.to_string()
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

/// Sends `target` and answers its status code (a 4xx or 5xx is an answer, not an error). Runs
/// on the blocking pool, bounded by `timeout` there too, so an abandoned call does not linger.
pub async fn send(target: &Target, timeout: Duration) -> io::Result<u16> {
    let target = target.clone();
    let call = move || {
        let agent = ureq::AgentBuilder::new()
            .timeout(timeout)
            .redirects(0)
            .user_agent("auth-server")
            .build();
        let mut request = agent.request(target.method, target.url.0.as_str());
        if let Some(credentials) = &target.basic_auth {
            let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
            request = request.set("Authorization", &format!("Basic {encoded}"));
        }
        let answer = if target.method == "GET" {
            request.call()
        } else {
            // An empty body, announced: some servers want a Content-Length on POST and DELETE.
            request.send_bytes(&[])
        };
        match answer {
            Ok(response) => Ok(response.status()),
            Err(ureq::Error::Status(status, _)) => Ok(status),
            Err(ureq::Error::Transport(err)) => Err(io::Error::other(err.to_string())),
        }
    };
    tokio::task::spawn_blocking(call)
        .await
        .map_err(io::Error::other)?
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
        assert_eq!(root.redacted(), "http://srs/");
        assert_eq!(
            root.join(&["api", "v1", "clients", "x/y"], &[])
                .path_and_query(),
            "/api/v1/clients/x%2Fy"
        );
        assert_eq!(
            Url::parse("http://[::1]:9997").unwrap().redacted(),
            "http://[::1]:9997/"
        );
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
