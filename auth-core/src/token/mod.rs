//! Tokens: who may watch what, from where, when, and how many at once.
//!
//! A [`Token`] is what the store holds; a [`TokenSpec`] is what a caller sends to create one and a
//! [`TokenPatch`] what it sends to change one. Both are validated into typed rules
//! ([`IpAllowList`], [`StreamAllowList`]) once, at write time, so that a decision never parses.

pub mod store;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
pub use store::{TokenFilter, TokenStore, Upsert};

use ipnet::IpNet;
use serde::de::Deserializer;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::secret::{self, SecretDigest, TokenHasher};

/// Store-assigned identifier of a token.
pub type TokenId = i64;

/// Longest accepted token secret, user id, or stream pattern.
pub const MAX_TEXT_LEN: usize = 256;
/// Longest stream name a request may name, in bytes. Real names are short; without a bound, every
/// request could write kilobytes into the access log (an adversarial review filled 123 MB in
/// 2.4 s with 60 KB names).
pub const MAX_STREAM_NAME_LEN: usize = 1024;
/// Shortest accepted token secret: shorter ones are guessable.
pub const MIN_SECRET_LEN: usize = 8;
/// Most entries in one allow-list.
pub const MAX_LIST_LEN: usize = 1024;
/// Largest `meta` object, serialized.
pub const MAX_META_BYTES: usize = 16 * 1024;

/// The administrative state of a token. A token past its `valid_until` is treated as expired
/// whatever this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenStatus {
    Active,
    Suspended,
    Expired,
}

impl TokenStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Active => "active",
            TokenStatus::Suspended => "suspended",
            TokenStatus::Expired => "expired",
        }
    }
}

impl FromStr for TokenStatus {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        match text {
            "active" => Ok(TokenStatus::Active),
            "suspended" => Ok(TokenStatus::Suspended),
            "expired" => Ok(TokenStatus::Expired),
            other => Err(Error::invalid(
                "status",
                format!("unknown status `{other}`: expected active, suspended or expired"),
            )),
        }
    }
}

impl fmt::Display for TokenStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored token. Holds no secret, only its keyed digest and a short prefix (see
/// [`crate::secret`]), so a listing can be logged or printed safely.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Token {
    pub id: TokenId,
    #[serde(skip)]
    pub digest: SecretDigest,
    pub token_prefix: String,
    pub user_id: String,
    pub status: TokenStatus,
    /// Most concurrent live sessions; 0 means unlimited.
    pub max_sessions: u32,
    pub allowed_ips: IpAllowList,
    pub allowed_streams: StreamAllowList,
    /// What the token lets its holder do: play (watch), publish (a stream key), or both.
    pub allowed_actions: ActionSet,
    /// What happens to a new session when every slot is taken.
    pub on_limit: OnLimit,
    pub valid_from: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
    pub meta: Map<String, Value>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A validated token ready to be stored: everything but the store-assigned id and timestamps.
#[derive(Debug, Clone, PartialEq)]
pub struct NewToken {
    pub digest: SecretDigest,
    pub token_prefix: String,
    pub user_id: String,
    pub status: TokenStatus,
    pub max_sessions: u32,
    pub allowed_ips: IpAllowList,
    pub allowed_streams: StreamAllowList,
    pub allowed_actions: ActionSet,
    pub on_limit: OnLimit,
    pub valid_from: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
    pub meta: Map<String, Value>,
}

impl NewToken {
    /// The stored token these settings become.
    pub fn into_token(self, id: TokenId, created_at: Timestamp, updated_at: Timestamp) -> Token {
        Token {
            id,
            digest: self.digest,
            token_prefix: self.token_prefix,
            user_id: self.user_id,
            status: self.status,
            max_sessions: self.max_sessions,
            allowed_ips: self.allowed_ips,
            allowed_streams: self.allowed_streams,
            allowed_actions: self.allowed_actions,
            on_limit: self.on_limit,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            meta: self.meta,
            created_at,
            updated_at,
        }
    }

    /// Whether `token` already holds exactly these settings (the seed command's "no change").
    pub fn matches(&self, token: &Token) -> bool {
        self.user_id == token.user_id
            && self.status == token.status
            && self.max_sessions == token.max_sessions
            && self.allowed_ips == token.allowed_ips
            && self.allowed_streams == token.allowed_streams
            && self.allowed_actions == token.allowed_actions
            && self.on_limit == token.on_limit
            && self.valid_from == token.valid_from
            && self.valid_until == token.valid_until
            && self.meta == token.meta
    }
}

/// What a caller sends to create a token (the management API's and the seed file's shape).
/// `token` may be omitted: a 32-byte random secret is generated.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    #[serde(default)]
    pub token: Option<String>,
    pub user_id: String,
    #[serde(default)]
    pub status: Option<TokenStatus>,
    #[serde(default)]
    pub max_sessions: Option<i64>,
    #[serde(default)]
    pub allowed_ips: Vec<String>,
    #[serde(default)]
    pub allowed_streams: Vec<String>,
    /// Absent: play only.
    #[serde(default)]
    pub allowed_actions: Option<Vec<Action>>,
    /// Absent: `reject_new`.
    #[serde(default)]
    pub on_limit: Option<OnLimit>,
    #[serde(default)]
    pub valid_from: Option<Timestamp>,
    #[serde(default)]
    pub valid_until: Option<Timestamp>,
    #[serde(default)]
    pub meta: Option<Map<String, Value>>,
}

impl TokenSpec {
    /// Checks every field and parses the allow-lists. Returns the token to store (which holds
    /// only the secret's digest) and the secret itself, to be shown to the caller once.
    pub fn validate(self, hasher: &TokenHasher) -> Result<(NewToken, String)> {
        let secret = match self.token {
            Some(secret) => {
                validate_secret(&secret)?;
                secret
            }
            None => secret::generate()?,
        };
        let new = NewToken {
            digest: hasher.digest(&secret),
            token_prefix: secret::prefix(&secret).to_owned(),
            user_id: validate_user_id(self.user_id)?,
            status: self.status.unwrap_or(TokenStatus::Active),
            max_sessions: validate_max_sessions(self.max_sessions.unwrap_or(0))?,
            allowed_ips: IpAllowList::parse(&self.allowed_ips)?,
            allowed_streams: StreamAllowList::parse(&self.allowed_streams)?,
            allowed_actions: match self.allowed_actions {
                Some(actions) => ActionSet::parse(&actions)?,
                None => ActionSet::default(),
            },
            on_limit: self.on_limit.unwrap_or_default(),
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            meta: validate_meta(self.meta.unwrap_or_default())?,
        };
        validate_window(new.valid_from, new.valid_until)?;
        Ok((new, secret))
    }
}

/// A partial update. Absent fields stay as they are; `valid_from`/`valid_until` set to `null`
/// clear the bound. The secret itself cannot be changed: issue a new token instead.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenPatch {
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub status: Option<TokenStatus>,
    #[serde(default)]
    pub max_sessions: Option<i64>,
    #[serde(default)]
    pub allowed_ips: Option<Vec<String>>,
    #[serde(default)]
    pub allowed_streams: Option<Vec<String>>,
    #[serde(default)]
    pub allowed_actions: Option<Vec<Action>>,
    #[serde(default)]
    pub on_limit: Option<OnLimit>,
    #[serde(default, deserialize_with = "nullable")]
    pub valid_from: Option<Option<Timestamp>>,
    #[serde(default, deserialize_with = "nullable")]
    pub valid_until: Option<Option<Timestamp>>,
    #[serde(default)]
    pub meta: Option<Map<String, Value>>,
}

/// Distinguishes "absent" (outer `None`, via `#[serde(default)]`) from "null" (`Some(None)`).
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

impl TokenPatch {
    /// Applies the patch to `token`, validating each changed field and the resulting window.
    pub fn apply(self, token: &mut Token) -> Result<()> {
        if let Some(user_id) = self.user_id {
            token.user_id = validate_user_id(user_id)?;
        }
        if let Some(status) = self.status {
            token.status = status;
        }
        if let Some(max) = self.max_sessions {
            token.max_sessions = validate_max_sessions(max)?;
        }
        if let Some(ips) = self.allowed_ips {
            token.allowed_ips = IpAllowList::parse(&ips)?;
        }
        if let Some(streams) = self.allowed_streams {
            token.allowed_streams = StreamAllowList::parse(&streams)?;
        }
        if let Some(actions) = self.allowed_actions {
            token.allowed_actions = ActionSet::parse(&actions)?;
        }
        if let Some(on_limit) = self.on_limit {
            token.on_limit = on_limit;
        }
        if let Some(from) = self.valid_from {
            token.valid_from = from;
        }
        if let Some(until) = self.valid_until {
            token.valid_until = until;
        }
        if let Some(meta) = self.meta {
            token.meta = validate_meta(meta)?;
        }
        validate_window(token.valid_from, token.valid_until)
    }

    pub fn is_empty(&self) -> bool {
        self.user_id.is_none()
            && self.status.is_none()
            && self.max_sessions.is_none()
            && self.allowed_ips.is_none()
            && self.allowed_streams.is_none()
            && self.allowed_actions.is_none()
            && self.on_limit.is_none()
            && self.valid_from.is_none()
            && self.valid_until.is_none()
            && self.meta.is_none()
    }
}

/// What admission does when a token's every slot is taken by a live session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnLimit {
    /// The new viewer is refused (`session_limit_reached`).
    #[default]
    RejectNew,
    /// The new viewer is admitted and the oldest live session is cut.
    EvictOldest,
}

impl OnLimit {
    pub fn as_str(self) -> &'static str {
        match self {
            OnLimit::RejectNew => "reject_new",
            OnLimit::EvictOldest => "evict_oldest",
        }
    }
}

impl std::str::FromStr for OnLimit {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text {
            "reject_new" => Ok(OnLimit::RejectNew),
            "evict_oldest" => Ok(OnLimit::EvictOldest),
            other => Err(format!(
                "`{other}` is not an on_limit: expected reject_new or evict_oldest"
            )),
        }
    }
}

/// Visible ASCII only: a token travels in URLs and query strings.
pub fn validate_secret(secret: &str) -> Result<()> {
    if secret.len() < MIN_SECRET_LEN || secret.len() > MAX_TEXT_LEN {
        return Err(Error::invalid(
            "token",
            format!("must be {MIN_SECRET_LEN} to {MAX_TEXT_LEN} characters long"),
        ));
    }
    if !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            "token",
            "must be printable ASCII without spaces",
        ));
    }
    // `/auth` reads a token of this shape as signed and never looks it up.
    if secret.starts_with(crate::signed_token::PREFIX) {
        return Err(Error::invalid(
            "token",
            format!(
                "must not start with `{}` (reserved for signed tokens)",
                crate::signed_token::PREFIX
            ),
        ));
    }
    // Nor one shaped like a JWT, for the same reason.
    if crate::signed_token::jwt::is_jwt(secret) {
        return Err(Error::invalid(
            "token",
            "must not be shaped like a JWT (reserved for signed tokens)",
        ));
    }
    Ok(())
}

/// The user id is sent back to the media server in the `X-UserId` header, so it must be a valid
/// header value: printable ASCII, no line breaks.
pub(crate) fn validate_user_id(user_id: String) -> Result<String> {
    let trimmed = user_id.trim();
    if trimmed.is_empty() || trimmed.len() > MAX_TEXT_LEN {
        return Err(Error::invalid(
            "user_id",
            format!("must be 1 to {MAX_TEXT_LEN} characters long"),
        ));
    }
    if !trimmed.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        return Err(Error::invalid("user_id", "must be printable ASCII"));
    }
    Ok(trimmed.to_owned())
}

fn validate_max_sessions(max: i64) -> Result<u32> {
    u32::try_from(max).map_err(|_| {
        Error::invalid(
            "max_sessions",
            format!("must be from 0 (unlimited) to {}", u32::MAX),
        )
    })
}

fn validate_window(from: Option<Timestamp>, until: Option<Timestamp>) -> Result<()> {
    match (from, until) {
        (Some(from), Some(until)) if until <= from => Err(Error::unprocessable(
            "valid_until",
            "must be later than valid_from",
        )),
        _ => Ok(()),
    }
}

fn validate_meta(meta: Map<String, Value>) -> Result<Map<String, Value>> {
    let size = serde_json::to_vec(&meta)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_META_BYTES {
        return Err(Error::invalid(
            "meta",
            format!("must be at most {MAX_META_BYTES} bytes of JSON"),
        ));
    }
    Ok(meta)
}

/// What a media server asks to do with a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Watch it.
    Play,
    /// Send it (the token is a stream key).
    Publish,
}

impl Action {
    pub const ALL: [Action; 2] = [Action::Play, Action::Publish];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Play => "play",
            Action::Publish => "publish",
        }
    }

    const fn bit(self) -> u8 {
        match self {
            Action::Play => 1,
            Action::Publish => 2,
        }
    }
}

impl FromStr for Action {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        Action::ALL
            .into_iter()
            .find(|action| action.as_str() == text)
            .ok_or_else(|| {
                Error::invalid(
                    "allowed_actions",
                    format!("unknown action `{text}`: expected play or publish"),
                )
            })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The actions a token allows: never empty (a token that allows nothing should be suspended or
/// deleted instead). Defaults to play only, so that a viewer's token is never a stream key unless
/// it is made one on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionSet(u8);

impl Default for ActionSet {
    fn default() -> Self {
        ActionSet(Action::Play.bit())
    }
}

impl ActionSet {
    pub fn parse(actions: &[Action]) -> Result<Self> {
        let bits = actions.iter().fold(0, |bits, action| bits | action.bit());
        if bits == 0 {
            return Err(Error::invalid(
                "allowed_actions",
                "must name at least one of play, publish",
            ));
        }
        Ok(ActionSet(bits))
    }

    pub fn allows(self, action: Action) -> bool {
        self.0 & action.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Action> {
        Action::ALL.into_iter().filter(move |a| self.allows(*a))
    }
}

impl Serialize for ActionSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// Addresses and CIDR blocks, IPv4 and IPv6. Empty allows any address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpAllowList(Vec<IpNet>);

impl IpAllowList {
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self> {
        check_list_len("allowed_ips", entries.len())?;
        entries
            .iter()
            .map(|entry| parse_ip_rule(entry.as_ref().trim()))
            .collect::<Result<Vec<_>>>()
            .map(IpAllowList)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, as dual-stack sockets report them) are
    /// matched as the IPv4 address they carry.
    pub fn allows(&self, ip: IpAddr) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let ip = canonical_ip(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn entries(&self) -> impl Iterator<Item = String> + '_ {
        self.0.iter().map(|net| {
            if net.prefix_len() == net.max_prefix_len() {
                net.addr().to_string()
            } else {
                net.to_string()
            }
        })
    }
}

pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// A block with host bits set (`10.0.0.5/24`) is refused rather than silently read as its
/// network: whoever wrote it meant either one address or another block, and only they know which.
fn parse_ip_rule(entry: &str) -> Result<IpNet> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Ok(IpNet::from(canonical_ip(ip)));
    }
    let net = entry.parse::<IpNet>().map_err(|_| {
        Error::invalid(
            "allowed_ips",
            format!(
                "`{entry}` is not an IP address or CIDR block (e.g. 10.0.0.0/8, 2001:db8::/32)"
            ),
        )
    })?;
    if net.trunc() != net {
        return Err(Error::invalid(
            "allowed_ips",
            format!(
                "`{entry}` has host bits set: write the block as {} or the address as {}",
                net.trunc(),
                net.addr()
            ),
        ));
    }
    Ok(net)
}

impl Serialize for IpAllowList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.entries())
    }
}

/// Stream names: exact (`news`) or globs where `*` stands for any run of characters, `/`
/// included (`sports/*`, `*_hd`). Empty allows any stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamAllowList(Vec<String>);

impl StreamAllowList {
    /// A new list: each pattern 1 to [`MAX_TEXT_LEN`] bytes, with no `.` or `..` segment (no
    /// stream name has one, see [`check_stream_name`], so such a pattern could only mislead).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self> {
        let list = Self::stored(entries)?;
        if list.0.iter().any(|pattern| has_dot_segment(pattern)) {
            return Err(Error::invalid(
                "allowed_streams",
                "a pattern may not have a `.` or `..` segment",
            ));
        }
        Ok(list)
    }

    /// A list as a store kept it: checked as [`Self::parse`] did before dot segments were
    /// refused, so that a pattern stored then still loads (it matches no stream name now).
    pub fn stored<S: AsRef<str>>(entries: &[S]) -> Result<Self> {
        check_list_len("allowed_streams", entries.len())?;
        entries
            .iter()
            .map(|entry| {
                let pattern = entry.as_ref().trim();
                // Characters, as the message says (and the OpenAPI document's maxLength counts).
                if pattern.is_empty() || pattern.chars().count() > MAX_TEXT_LEN {
                    Err(Error::invalid(
                        "allowed_streams",
                        format!("each pattern must be 1 to {MAX_TEXT_LEN} characters long"),
                    ))
                } else {
                    Ok(pattern.to_owned())
                }
            })
            .collect::<Result<Vec<_>>>()
            .map(StreamAllowList)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn allows(&self, stream: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|pattern| glob_matches(pattern, stream))
    }

    pub fn entries(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl Serialize for StreamAllowList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(&self.0)
    }
}

/// Why a stream name a media server sent cannot be one: longer than [`MAX_STREAM_NAME_LEN`]
/// characters, or
/// with a `.` or `..` segment (`sports/../movies` would match `sports/*` while naming, to a
/// file server, a stream outside it).
pub fn check_stream_name(name: &str) -> std::result::Result<(), &'static str> {
    // Characters, as the API document's JSON Schema counts them.
    if name.chars().count() > MAX_STREAM_NAME_LEN {
        return Err("longer than 1024 characters");
    }
    if has_dot_segment(name) {
        return Err("a `.` or `..` segment");
    }
    Ok(())
}

fn has_dot_segment(name: &str) -> bool {
    name.split('/')
        .any(|segment| segment == "." || segment == "..")
}

fn check_list_len(field: &'static str, len: usize) -> Result<()> {
    if len > MAX_LIST_LEN {
        return Err(Error::invalid(
            field,
            format!("at most {MAX_LIST_LEN} entries"),
        ));
    }
    Ok(())
}

/// `*`-only glob match in time linear in the pattern and the text: the literal runs between
/// stars are found left to right, each at its first place (`str::find` is linear), which is
/// enough for `*`-only globs, since a run found earlier leaves more text for the rest. (The
/// backtracking match this replaced was quadratic in the worst case.)
pub(crate) fn glob_matches(pattern: &str, text: &str) -> bool {
    let Some((head, last)) = pattern.rsplit_once('*') else {
        return pattern == text;
    };
    let mut runs = head.split('*');
    let first = runs.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    for run in runs.filter(|run| !run.is_empty()) {
        match rest.find(run) {
            Some(at) => rest = &rest[at + run.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> TokenHasher {
        TokenHasher::new(&[7u8; 32]).unwrap()
    }

    fn spec(user: &str) -> TokenSpec {
        TokenSpec {
            token: Some("secret-token-1".into()),
            user_id: user.into(),
            ..Default::default()
        }
    }

    #[test]
    fn stream_names_are_bounded_and_have_no_dot_segments() {
        assert_eq!(check_stream_name("sports/live_hd"), Ok(()));
        assert_eq!(check_stream_name("v1.2/a..b/.hidden"), Ok(()));
        assert_eq!(check_stream_name(&"a".repeat(MAX_STREAM_NAME_LEN)), Ok(()));
        assert!(check_stream_name(&"a".repeat(MAX_STREAM_NAME_LEN + 1)).is_err());
        for name in ["sports/../movies", "..", ".", "./x", "a/./b", "a/.."] {
            assert!(check_stream_name(name).is_err(), "{name}");
        }
        let err = StreamAllowList::parse(&["sports/../*"]).unwrap_err();
        assert_eq!(err.code(), "invalid_request");
        assert!(StreamAllowList::parse(&["sports/*", "a..b"]).is_ok());
        assert!(
            StreamAllowList::stored(&["sports/../*"]).is_ok(),
            "what was stored before still loads"
        );
    }

    #[test]
    fn glob_matching() {
        assert!(glob_matches("sports/*", "sports/football"));
        assert!(glob_matches("sports/*", "sports/"));
        assert!(!glob_matches("sports/*", "sport/football"));
        assert!(glob_matches("*_hd", "news_hd"));
        assert!(glob_matches("a*b*c", "axxbyyc"));
        assert!(!glob_matches("a*b*c", "axxbyy"));
        assert!(glob_matches("news", "news"));
        assert!(!glob_matches("news", "news2"));
        assert!(glob_matches("*", ""));
        assert!(!glob_matches("*a*a*a*b", &"a".repeat(200)));
        assert!(glob_matches("a*b*b", "abb"));
        assert!(!glob_matches("a*b*b", "ab"));
        assert!(
            !glob_matches("a*a", "a"),
            "the first and last runs never overlap"
        );
        assert!(glob_matches("**", "x"));
        assert!(glob_matches("é*ü", "éxxü"));
    }

    /// The linear match agrees with the obvious recursive definition on every pattern and text
    /// over a small alphabet.
    #[test]
    fn glob_matching_agrees_with_its_definition() {
        fn reference(p: &[u8], t: &[u8]) -> bool {
            match p.split_first() {
                None => t.is_empty(),
                Some((b'*', rest)) => (0..=t.len()).any(|i| reference(rest, &t[i..])),
                Some((c, rest)) => t.first() == Some(c) && reference(rest, &t[1..]),
            }
        }
        fn words(alphabet: &[u8], max: usize) -> Vec<String> {
            let mut all = vec![String::new()];
            let mut last = vec![String::new()];
            for _ in 0..max {
                last = last
                    .iter()
                    .flat_map(|w| alphabet.iter().map(move |&c| format!("{w}{}", c as char)))
                    .collect();
                all.extend(last.iter().cloned());
            }
            all
        }
        for pattern in words(b"ab*", 5) {
            for text in words(b"ab", 6) {
                assert_eq!(
                    glob_matches(&pattern, &text),
                    reference(pattern.as_bytes(), text.as_bytes()),
                    "{pattern:?} against {text:?}"
                );
            }
        }
    }

    #[test]
    fn ip_rules_cover_v4_v6_cidr_and_mapped() {
        let list = IpAllowList::parse(&["10.0.0.0/8", "192.168.1.100", "2001:db8::/32"]).unwrap();
        assert!(list.allows("10.1.2.3".parse().unwrap()));
        assert!(list.allows("::ffff:10.9.9.9".parse().unwrap()));
        assert!(list.allows("192.168.1.100".parse().unwrap()));
        assert!(!list.allows("192.168.1.101".parse().unwrap()));
        assert!(list.allows("2001:db8::1".parse().unwrap()));
        assert!(!list.allows("2001:db9::1".parse().unwrap()));
        assert_eq!(
            list.entries().collect::<Vec<_>>(),
            ["10.0.0.0/8", "192.168.1.100", "2001:db8::/32"]
        );
        assert!(IpAllowList::default().allows("1.2.3.4".parse().unwrap()));
    }

    #[test]
    fn malformed_cidr_is_rejected_with_field() {
        let err = IpAllowList::parse(&["10.0.0.0/33"]).unwrap_err();
        assert_eq!(err.field(), Some("allowed_ips"));
        assert!(IpAllowList::parse(&["not-an-ip"]).is_err());
        let err = IpAllowList::parse(&["10.0.0.5/24"]).unwrap_err();
        assert_eq!(err.field(), Some("allowed_ips"));
        assert!(err.to_string().contains("10.0.0.0/24"), "{err}");
        assert!(IpAllowList::parse(&["2001:db8::1/32"]).is_err());
        assert!(IpAllowList::parse(&["10.0.0.0/24", "10.0.0.5/32"]).is_ok());
    }

    #[test]
    fn spec_validation() {
        assert!(spec("u1").validate(&hasher()).is_ok());
        let mut bad = spec("u1");
        bad.max_sessions = Some(-1);
        assert_eq!(
            bad.validate(&hasher()).unwrap_err().field(),
            Some("max_sessions")
        );
        let mut bad = spec("u1");
        bad.token = Some("short".into());
        assert_eq!(bad.validate(&hasher()).unwrap_err().field(), Some("token"));
        assert_eq!(
            spec("").validate(&hasher()).unwrap_err().field(),
            Some("user_id")
        );
        assert_eq!(
            spec("a\r\nb").validate(&hasher()).unwrap_err().field(),
            Some("user_id")
        );
        let mut bad = spec("u1");
        bad.valid_from = Timestamp::parse_rfc3339("2026-02-01T00:00:00Z");
        bad.valid_until = Timestamp::parse_rfc3339("2026-01-01T00:00:00Z");
        assert_eq!(
            bad.validate(&hasher()).unwrap_err().field(),
            Some("valid_until")
        );
    }

    #[test]
    fn actions_default_to_play_and_are_never_empty() {
        let (new, _) = spec("u1").validate(&hasher()).unwrap();
        assert!(new.allowed_actions.allows(Action::Play));
        assert!(!new.allowed_actions.allows(Action::Publish));
        let mut both = spec("u1");
        both.allowed_actions = Some(vec![Action::Publish, Action::Play, Action::Publish]);
        let (new, _) = both.validate(&hasher()).unwrap();
        assert_eq!(
            serde_json::to_string(&new.allowed_actions).unwrap(),
            r#"["play","publish"]"#
        );
        let mut none = spec("u1");
        none.allowed_actions = Some(vec![]);
        assert_eq!(
            none.validate(&hasher()).unwrap_err().field(),
            Some("allowed_actions")
        );
        assert!(serde_json::from_str::<TokenPatch>(r#"{"allowed_actions": ["record"]}"#).is_err());
        assert_eq!("publish".parse::<Action>().unwrap(), Action::Publish);
        assert!("record".parse::<Action>().is_err());
    }

    #[test]
    fn omitted_secret_is_generated() {
        let mut s = spec("u1");
        s.token = None;
        let (a, secret_a) = s.clone().validate(&hasher()).unwrap();
        let (b, secret_b) = s.validate(&hasher()).unwrap();
        assert_eq!(secret_a.len(), 43);
        assert_ne!(secret_a, secret_b);
        assert_ne!(a.digest, b.digest);
        assert_eq!(a.digest, hasher().digest(&secret_a));
        assert_eq!(a.token_prefix, secret_a[..6]);
    }

    #[test]
    fn patch_rejects_unknown_fields_and_clears_bounds() {
        assert!(serde_json::from_str::<TokenPatch>(r#"{"bogus": 1}"#).is_err());
        let patch: TokenPatch = serde_json::from_str(r#"{"valid_until": null}"#).unwrap();
        assert_eq!(patch.valid_until, Some(None));
        let patch: TokenPatch = serde_json::from_str(r#"{}"#).unwrap();
        assert!(patch.is_empty());
    }

    #[test]
    fn serialized_token_never_carries_the_secret() {
        let (new, secret) = spec("u1").validate(&hasher()).unwrap();
        let token = new.into_token(1, Timestamp::UNIX_EPOCH, Timestamp::UNIX_EPOCH);
        let json = serde_json::to_string(&token).unwrap();
        assert!(!json.contains(&secret), "{json}");
        assert!(json.contains("\"token_prefix\""));
    }
}
