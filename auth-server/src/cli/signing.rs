//! `sign`, `verify`, `keys generate|list|retire` and `edge-url`: signed tokens and edge URL
//! signatures from the shell, on the store directly (a running server picks up key changes
//! within its reload interval).
//!
//! Output is JSON on stdout. `keys` commands show ids, algorithms, status and public keys:
//! never a secret, which stays sealed in the store.

use std::net::IpAddr;

use auth_core::edge_url::{Acl, EdgeUrlSpec};
use auth_core::signed_token::jwt::{Profile, TokenFormat};
use auth_core::signed_token::keys::{KeyInfo, KeyVault, StoredSigningKey};
use auth_core::signed_token::{random_id, Algorithm, Kind, PlaybackSpec};
use auth_core::{Backend, Clock, SystemClock, TokenHasher};
use clap::{Args, Subcommand};
use serde_json::json;

use super::{print, to_json, usage, Failure};
use crate::config::Config;
use crate::signing::{edge_secrets, sign_edge_url, Signing};

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The viewer; the media server is told it as the user id.
    #[arg(long)]
    pub user_id: String,
    #[arg(long)]
    pub event: Option<String>,
    /// A stream name or `*` glob; repeat for more; none = every stream.
    #[arg(long = "stream")]
    pub streams: Vec<String>,
    /// Lifetime in seconds [default: PLAYBACK_TOKEN_TTL]
    #[arg(long)]
    pub ttl: Option<u64>,
    /// Bind the token to this client address.
    #[arg(long)]
    pub ip: Option<IpAddr>,
    /// Most concurrent sessions; 0 = unlimited.
    #[arg(long)]
    pub max_sessions: Option<u32>,
    /// The signing key [default: the newest active key]
    #[arg(long)]
    pub kid: Option<String>,
    /// `v1` (ours) or `jwt` (a JWT verifiable with the JWKS).
    #[arg(long, default_value = "v1")]
    pub format: String,
    /// JWT only: extra claims for one consumer (`mediamtx`).
    #[arg(long)]
    pub profile: Option<String>,
    /// JWT only: the audience [default: JWT_AUDIENCE]
    #[arg(long)]
    pub aud: Option<String>,
}

/// Flags of `edge-url` (as the body of POST /api/edge-urls).
#[derive(Debug, Args)]
pub struct EdgeUrlArgs {
    /// `nginx_secure_link` or `akamai_edgeauth`.
    #[arg(long)]
    pub format: String,
    /// nginx_secure_link: the path to sign, as nginx's `$uri` reads it.
    #[arg(long)]
    pub path: Option<String>,
    /// akamai_edgeauth: an ACL path with `*` wildcards; repeat for more.
    #[arg(long = "acl")]
    pub acl: Vec<String>,
    /// akamai_edgeauth: one URL path instead of an ACL.
    #[arg(long)]
    pub url: Option<String>,
    /// Lifetime in seconds.
    #[arg(long)]
    pub ttl: u64,
    /// akamai_edgeauth: start, unix seconds [default: now]
    #[arg(long)]
    pub start_time: Option<i64>,
    /// Bind the signature to this client address.
    #[arg(long)]
    pub ip: Option<IpAddr>,
    /// akamai_edgeauth: `id=`.
    #[arg(long)]
    pub session_id: Option<String>,
    /// akamai_edgeauth: `data=`.
    #[arg(long)]
    pub payload: Option<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The signed token.
    pub token: String,
    /// Also check that it unlocks this stream.
    #[arg(long)]
    pub stream: Option<String>,
    /// Also check that it is good for this client address.
    #[arg(long)]
    pub ip: Option<IpAddr>,
    /// Expect an e-ticket instead of a playback token.
    #[arg(long)]
    pub ticket: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key with a random secret; prints its id, algorithm and public key.
    Generate {
        /// ed25519 or es256 (verifiable with the public key alone, published in the JWKS), or
        /// hs256 (a shared secret).
        #[arg(long, default_value = "ed25519")]
        algorithm: String,
        /// The key id (1-32 of A-Z a-z 0-9 - _) [default: random]
        #[arg(long)]
        kid: Option<String>,
    },
    /// Every key, oldest first: ids, algorithms, status, public keys.
    List,
    /// Refuse every token signed with this key from now on; ids are never reused.
    Retire { kid: String },
}

pub fn sign(
    config: &Config,
    store: &dyn Backend,
    hasher: &TokenHasher,
    args: SignArgs,
) -> Result<(), Failure> {
    let signing = Signing::load(config, hasher, store)?;
    let spec = PlaybackSpec {
        user_id: args.user_id,
        event: args.event,
        streams: args.streams,
        ttl_seconds: args.ttl,
        ip: args.ip,
        max_sessions: args.max_sessions,
        kid: args.kid,
        format: parse_choice::<TokenFormat>("format", &args.format)?,
        profile: args
            .profile
            .map(|p| parse_choice::<Profile>("profile", &p))
            .transpose()?,
        aud: args.aud,
        group: None,
    };
    let minted = signing.mint(&spec, SystemClock.now())?;
    print(&to_json(&minted)?);
    Ok(())
}

/// A flag's value read as the API would read it in JSON (`--format jwt` as `"format": "jwt"`).
fn parse_choice<T: serde::de::DeserializeOwned>(flag: &str, value: &str) -> Result<T, Failure> {
    serde_json::from_value(json!(value)).map_err(|_| {
        usage(format!(
            "--{flag} `{value}` is not one of the accepted values"
        ))
    })
}

pub fn edge_url(config: &Config, args: EdgeUrlArgs) -> Result<(), Failure> {
    let spec = EdgeUrlSpec {
        format: parse_choice("format", &args.format)?,
        path: args.path,
        acl: (!args.acl.is_empty()).then_some(Acl::Many(args.acl)),
        url: args.url,
        ttl_seconds: args.ttl,
        start_time: args.start_time,
        ip: args.ip,
        session_id: args.session_id,
        payload: args.payload,
    };
    let signed = sign_edge_url(&edge_secrets(config), &spec, SystemClock.now())?;
    print(&to_json(&signed)?);
    Ok(())
}

pub fn verify(
    config: &Config,
    store: &dyn Backend,
    hasher: &TokenHasher,
    args: VerifyArgs,
) -> Result<(), Failure> {
    let signing = Signing::load(config, hasher, store)?;
    let kind = if args.ticket {
        Kind::Ticket
    } else {
        Kind::Playback
    };
    let verdict = signing.current().verify(
        args.token.trim(),
        SystemClock.now(),
        kind,
        args.ip,
        args.stream.as_deref(),
    );
    match verdict {
        Ok(claims) => {
            print(&json!({ "valid": true, "claims": claims }));
            Ok(())
        }
        Err(rejection) => {
            print(&json!({
                "valid": false,
                "reason": rejection.code(),
                "message": rejection.message(),
            }));
            Err(Failure {
                message: format!("the token is not valid: {}", rejection.code()),
                code: 1,
            })
        }
    }
}

pub fn keys(
    store: &dyn Backend,
    hasher: &TokenHasher,
    command: KeysCommand,
) -> Result<(), Failure> {
    let now = SystemClock.now();
    match command {
        KeysCommand::Generate { algorithm, kid } => {
            let algorithm = Algorithm::parse(&algorithm)?;
            let kid = match kid {
                Some(kid) => kid,
                None => format!("{}-{}", algorithm.as_str(), &random_id()?[..8]),
            };
            let key = KeyVault::new(hasher)?.generate(&kid, algorithm, now)?;
            store.insert_signing_key(&key)?;
            print(&to_json(&key.info())?);
        }
        KeysCommand::List => {
            let items: Vec<KeyInfo> = store
                .signing_keys()?
                .iter()
                .map(StoredSigningKey::info)
                .collect();
            print(&json!({ "items": items }));
        }
        KeysCommand::Retire { kid } => {
            if !store.retire_signing_key(&kid, now)? {
                return Err(usage(format!("no signing key has the id `{kid}`")));
            }
            let keys = store.signing_keys()?;
            if let Some(key) = keys.iter().find(|k| k.kid == kid) {
                print(&to_json(&key.info())?);
            }
        }
    }
    Ok(())
}
