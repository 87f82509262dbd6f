//! JSON Schemas of the values the server checks, each saying exactly what the check accepts
//! (a test runs schemathesis against the real server: `auth-server/tests/contract.rs`).
//!
//! Text is trimmed before most checks, by Rust's `str::trim` (Unicode `White_Space`), so the
//! patterns allow that whitespace around the value and none at its ends inside.

use auth_core::account::{MAX_EMAIL_LEN, MAX_NAME_LEN, MAX_USERNAME_LEN};
use auth_core::event::MAX_TITLE_LEN;
use auth_core::token::{MAX_LIST_LEN, MAX_TEXT_LEN};
use serde_json::{json, Value};

/// Unicode `White_Space`: what `str::trim` removes.
const WS: &str = r"\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// `char::is_control`: the Cc category.
const CONTROL: &str = r"\u0000-\u001f\u007f-\u009f";

/// A row id: the store's ids are positive `i64`; any other integer names nothing (404), a
/// number past `i64` is no id at all (400).
pub fn id() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": i64::MAX})
}

/// A filter on an id: any `i64`.
pub fn int64() -> Value {
    json!({"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX})
}

/// A `u32` from `min`.
pub fn uint32(min: u32) -> Value {
    json!({"type": "integer", "minimum": min, "maximum": u32::MAX})
}

/// An IPv4 or IPv6 address.
pub fn ip() -> Value {
    json!({"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]})
}

/// Text of at most `max` characters once trimmed (and not blank, unless `may_be_empty`);
/// `refused` lists the characters refused anywhere (the ends are further kept off whitespace).
fn trimmed(refused: &str, max: usize, may_be_empty: bool) -> Value {
    let end = format!("[^{WS}{refused}]");
    let inner = if refused.is_empty() {
        r"[\s\S]".to_owned()
    } else {
        format!("[^{refused}]")
    };
    let middle = max.saturating_sub(2);
    let optional = if may_be_empty { "?" } else { "" };
    json!({"type": "string",
        "pattern": format!("^[{WS}]*({end}({inner}{{0,{middle}}}{end})?){optional}[{WS}]*$")})
}

/// A token's user id: printable ASCII (spaces inside), 1 to 256 characters once trimmed.
pub fn user_id() -> Value {
    json!({"type": "string",
        "pattern": format!("^[{WS}]*[!-~]([ -~]{{0,{}}}[!-~])?[{WS}]*$", MAX_TEXT_LEN - 2)})
}

/// A stream name or `*` glob of an allow-list.
pub fn stream_pattern() -> Value {
    trimmed("", MAX_TEXT_LEN, false)
}

/// A stream name as a media server sends it: 1 to 1,024 characters, no `.` or `..` segment
/// (`auth_core::token::check_stream_name`). Each segment between `/` is empty, starts with
/// anything but `.`, is `.` and one more character that is not `.`, or `..` and more.
pub fn stream_name() -> Value {
    let segment = r"([^/.][^/]*|\.[^/.][^/]*|\.\.[^/]+|)";
    json!({"type": "string", "minLength": 1, "maxLength": auth_core::token::MAX_STREAM_NAME_LEN,
        "pattern": format!("^{segment}(/{segment})*$")})
}

/// [`stream_name`], where a JSON body may also give it as a number or a boolean.
pub fn loose_stream_name() -> Value {
    let mut schema = stream_name();
    schema["type"] = json!(["string", "number", "boolean"]);
    schema
}

/// An allow-list of stream patterns.
pub fn stream_patterns() -> Value {
    json!({"type": "array", "maxItems": MAX_LIST_LEN, "items": stream_pattern(),
        "description": "Names or * globs; empty = any"})
}

/// An allow-list of addresses (CIDR blocks too, without host bits: 10.0.0.0/8).
pub fn ip_rules() -> Value {
    json!({"type": "array", "maxItems": MAX_LIST_LEN, "items": ip(),
        "description": "Addresses or CIDR blocks (no host bits set); empty = any"})
}

/// A stored token's secret: 8 to 256 printable ASCII characters, not shaped like a signed token
/// (`v1.` or a JWT's `eyJ` with two dots).
pub fn token_secret() -> Value {
    json!({"type": "string", "pattern": "^[!-~]{8,256}$",
        "not": {"anyOf": [{"pattern": r"^v1\."}, {"pattern": r"^eyJ[^.]*\.[^.]*\.[^.]*$"}]},
        "description": "Omit to generate a 32-byte random token"})
}

pub fn username() -> Value {
    json!({"type": "string",
        "pattern": format!("^[{WS}]*[A-Za-z0-9._-]{{3,{MAX_USERNAME_LEN}}}[{WS}]*$"),
        "description": "3 to 64 of A-Z a-z 0-9 . _ -, folded to lower case"})
}

/// 10 to 256 characters, no control characters; at least 4 different ones and not containing
/// the username, or 422.
pub fn password() -> Value {
    json!({"type": "string", "pattern": format!("^[^{CONTROL}]{{10,256}}$"),
        "description": "10 to 256 characters without control characters; fewer than 4 different characters or one containing the username: 422"})
}

pub fn email() -> Value {
    let plain = format!("[^@{WS}{CONTROL}]");
    let label_end = format!("[^@.{WS}{CONTROL}]");
    json!({"type": "string", "maxLength": MAX_EMAIL_LEN,
        "pattern": format!("^[{WS}]*{plain}+@{label_end}{plain}*\\.{plain}*{label_end}[{WS}]*$")})
}

/// A person's name: at most 128 characters once trimmed, no control characters.
pub fn person_name() -> Value {
    trimmed(CONTROL, MAX_NAME_LEN, true)
}

pub fn title() -> Value {
    trimmed(CONTROL, MAX_TITLE_LEN, false)
}

/// A timestamp: RFC 3339.
pub fn date_time() -> Value {
    json!({"type": "string", "format": "date-time"})
}

/// Text that is not blank once trimmed.
pub fn not_blank() -> Value {
    json!({"type": "string", "pattern": format!("[^{WS}]")})
}

/// An Akamai EdgeAuth field: printable ASCII without spaces or `~` (nor `!` in an ACL path).
pub fn edgeauth_text(acl: bool) -> Value {
    let pattern = if acl { r"^[\x22-\x7d]+$" } else { r"^[!-}]+$" };
    json!({"type": "string", "pattern": pattern})
}

/// A path nginx's `$uri` reads as it is: a leading `/`, unreserved characters and `/`, no
/// empty (but a trailing one), `.` or `..` segment, at most 2048 characters.
pub fn plain_path() -> Value {
    let segment =
        r"([A-Za-z0-9_~-][A-Za-z0-9._~-]*|\.[A-Za-z0-9_~-][A-Za-z0-9._~-]*|\.\.[A-Za-z0-9._~-]+)";
    json!({"type": "string", "maxLength": 2048,
        "pattern": format!("^/({segment}(/{segment})*/?)?$")})
}
