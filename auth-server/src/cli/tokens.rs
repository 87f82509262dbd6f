//! `token create|list|show|update|delete` and `seed FILE`: tokens, written to the store
//! directly, with or without a running server.

use std::path::Path;

use auth_core::token::{TokenFilter, Upsert};
use auth_core::{
    Action, Backend, Clock, OnLimit, SystemClock, Timestamp, TokenHasher, TokenPatch, TokenSpec,
    TokenStatus,
};
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use super::{print, to_json, usage, Failure};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; prints it (with its secret, shown this once) as JSON.
    Create(CreateArgs),
    /// List tokens as JSON `{items, total}`.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        user_id: Option<String>,
        /// User ids starting with this.
        #[arg(long)]
        user_id_prefix: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long, default_value_t = 0)]
        offset: u32,
    },
    /// Show one token.
    Show { id: i64 },
    /// Change some of a token's settings.
    Update(UpdateArgs),
    /// Delete a token and end its sessions.
    Delete { id: i64 },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The secret; omit it to generate 32 random bytes.
    #[arg(long)]
    pub token: Option<String>,
    #[arg(long)]
    pub user_id: String,
    /// active, suspended or expired.
    #[arg(long)]
    pub status: Option<String>,
    /// 0 = unlimited.
    #[arg(long, allow_negative_numbers = true)]
    pub max_sessions: Option<i64>,
    /// An address or CIDR block; repeat for more.
    #[arg(long = "allowed-ip")]
    pub allowed_ips: Vec<String>,
    /// A stream name or `*` glob; repeat for more.
    #[arg(long = "allowed-stream")]
    pub allowed_streams: Vec<String>,
    /// play or publish (a stream key); repeat for both. Default: play.
    #[arg(long = "allowed-action", value_parser = parse_action)]
    pub allowed_actions: Vec<Action>,
    /// At the session limit: reject_new (default: the new viewer is refused) or evict_oldest
    /// (the new viewer is admitted and the oldest live session cut).
    #[arg(long, value_parser = parse_on_limit)]
    pub on_limit: Option<OnLimit>,
    /// RFC 3339, e.g. 2026-01-31T12:00:00Z.
    #[arg(long)]
    pub valid_from: Option<String>,
    #[arg(long)]
    pub valid_until: Option<String>,
    /// A JSON object.
    #[arg(long)]
    pub meta: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    pub id: i64,
    #[arg(long)]
    pub user_id: Option<String>,
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long, allow_negative_numbers = true)]
    pub max_sessions: Option<i64>,
    /// Replaces the list; repeat for more.
    #[arg(long = "allowed-ip")]
    pub allowed_ips: Vec<String>,
    /// Empties the list (any address).
    #[arg(long, conflicts_with = "allowed_ips")]
    pub clear_allowed_ips: bool,
    /// Replaces the list; repeat for more.
    #[arg(long = "allowed-stream")]
    pub allowed_streams: Vec<String>,
    /// Empties the list (any stream).
    #[arg(long, conflicts_with = "allowed_streams")]
    pub clear_allowed_streams: bool,
    /// play or publish; replaces the set; repeat for both.
    #[arg(long = "allowed-action", value_parser = parse_action)]
    pub allowed_actions: Vec<Action>,
    /// reject_new or evict_oldest.
    #[arg(long, value_parser = parse_on_limit)]
    pub on_limit: Option<OnLimit>,
    /// RFC 3339, or `none` to clear.
    #[arg(long)]
    pub valid_from: Option<String>,
    /// RFC 3339, or `none` to clear.
    #[arg(long)]
    pub valid_until: Option<String>,
    /// A JSON object; replaces the old one.
    #[arg(long)]
    pub meta: Option<String>,
}

fn parse_status(text: Option<String>) -> Result<Option<TokenStatus>, Failure> {
    text.map(|s| s.parse::<TokenStatus>())
        .transpose()
        .map_err(Failure::from)
}

fn parse_time(flag: &str, text: &str) -> Result<Timestamp, Failure> {
    Timestamp::parse_rfc3339(text).ok_or_else(|| {
        usage(format!(
            "--{flag} `{text}` is not an RFC 3339 date-time (e.g. 2026-01-31T12:00:00Z)"
        ))
    })
}

fn parse_action(text: &str) -> Result<Action, String> {
    text.parse().map_err(|e: auth_core::Error| e.to_string())
}

fn parse_on_limit(text: &str) -> Result<OnLimit, String> {
    text.parse()
}

fn parse_meta(text: Option<String>) -> Result<Option<Map<String, Value>>, Failure> {
    text.map(|t| serde_json::from_str::<Map<String, Value>>(&t))
        .transpose()
        .map_err(|e| usage(format!("--meta must be a JSON object: {e}")))
}

pub(super) fn token(
    store: &dyn Backend,
    hasher: &TokenHasher,
    command: TokenCommand,
) -> Result<(), Failure> {
    let now = SystemClock.now();
    match command {
        TokenCommand::Create(args) => {
            let spec = TokenSpec {
                token: args.token,
                user_id: args.user_id,
                status: parse_status(args.status)?,
                max_sessions: args.max_sessions,
                allowed_ips: args.allowed_ips,
                allowed_streams: args.allowed_streams,
                allowed_actions: (!args.allowed_actions.is_empty()).then_some(args.allowed_actions),
                on_limit: args.on_limit,
                valid_from: args
                    .valid_from
                    .map(|t| parse_time("valid-from", &t))
                    .transpose()?,
                valid_until: args
                    .valid_until
                    .map(|t| parse_time("valid-until", &t))
                    .transpose()?,
                meta: parse_meta(args.meta)?,
            };
            let (new, secret) = spec.validate(hasher)?;
            let token = store.create_token(new, now)?;
            let mut output = to_json(&token)?;
            // Shown once: the store keeps only its digest.
            output["token"] = Value::String(secret);
            print(&output);
        }
        TokenCommand::List {
            status,
            user_id,
            user_id_prefix,
            limit,
            offset,
        } => {
            let filter = TokenFilter {
                status: parse_status(status)?,
                user_id,
                user_id_prefix,
                limit,
                offset,
            };
            print(&to_json(&store.list_tokens(&filter)?)?);
        }
        TokenCommand::Show { id } => {
            let token = store
                .token(id)?
                .ok_or(auth_core::Error::NotFound { what: "token" })?;
            print(&to_json(&token)?);
        }
        TokenCommand::Update(args) => {
            let clearable =
                |flag: &str, text: Option<String>| -> Result<Option<Option<Timestamp>>, Failure> {
                    match text.as_deref() {
                        None => Ok(None),
                        Some("none") | Some("null") => Ok(Some(None)),
                        Some(t) => parse_time(flag, t).map(|t| Some(Some(t))),
                    }
                };
            let list =
                |values: Vec<String>, clear: bool| (clear || !values.is_empty()).then_some(values);
            let patch = TokenPatch {
                user_id: args.user_id,
                status: parse_status(args.status)?,
                max_sessions: args.max_sessions,
                allowed_ips: list(args.allowed_ips, args.clear_allowed_ips),
                allowed_streams: list(args.allowed_streams, args.clear_allowed_streams),
                allowed_actions: (!args.allowed_actions.is_empty()).then_some(args.allowed_actions),
                on_limit: args.on_limit,
                valid_from: clearable("valid-from", args.valid_from)?,
                valid_until: clearable("valid-until", args.valid_until)?,
                meta: parse_meta(args.meta)?,
            };
            if patch.is_empty() {
                return Err(usage(
                    "nothing to update: give at least one setting (see --help)",
                ));
            }
            print(&to_json(&store.update_token(args.id, patch, now)?)?);
        }
        TokenCommand::Delete { id } => {
            if !store.delete_token(id, now)? {
                return Err(auth_core::Error::NotFound { what: "token" }.into());
            }
            print(&json!({ "deleted": id }));
        }
    }
    Ok(())
}

/// Validates every entry before writing any, so a bad file changes nothing.
pub(super) fn seed(store: &dyn Backend, hasher: &TokenHasher, file: &Path) -> Result<(), Failure> {
    let text = std::fs::read_to_string(file).map_err(|e| Failure {
        message: format!("cannot read {}: {e}", file.display()),
        code: 1,
    })?;
    let specs: Vec<TokenSpec> = serde_json::from_str(&text).map_err(|e| {
        usage(format!(
            "{} is not a JSON array of tokens: {e}",
            file.display()
        ))
    })?;
    let mut tokens = Vec::with_capacity(specs.len());
    for (index, spec) in specs.into_iter().enumerate() {
        if spec.token.is_none() {
            return Err(usage(format!(
                "entry {index}: seed entries need a `token` (they are matched by it)"
            )));
        }
        let (token, _secret) = spec
            .validate(hasher)
            .map_err(|e| usage(format!("entry {index}: {e}")))?;
        tokens.push(token);
    }
    let now = SystemClock.now();
    let (mut created, mut updated, mut unchanged) = (0, 0, 0);
    for token in tokens {
        match store.upsert_token(token, now)?.1 {
            Upsert::Created => created += 1,
            Upsert::Updated => updated += 1,
            Upsert::Unchanged => unchanged += 1,
        }
    }
    print(&json!({ "created": created, "updated": updated, "unchanged": unchanged }));
    Ok(())
}
