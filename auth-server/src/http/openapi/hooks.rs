//! Schemas of the media servers' hook requests: what each adapter in `http/hooks/` accepts.

use serde_json::{json, Value};

use super::fields;

/// A JSON field the adapters read loosely: a string, number or boolean (null, arrays and
/// objects count as absent).
fn loose() -> Value {
    json!({"type": ["string", "number", "boolean"]})
}

/// One alternative of a body: the `discriminator` field takes one of `values` (or, with
/// `values` empty, none of `others`), with `required` fields and their schemas.
fn alternative(
    discriminator: &str,
    values: &[&str],
    others: &[&str],
    required: &[(&str, Value)],
) -> Value {
    let chosen = if values.is_empty() {
        json!({"type": ["string", "number", "boolean"], "not": {"enum": others}})
    } else {
        json!({"type": "string", "enum": values})
    };
    let mut properties = serde_json::Map::new();
    properties.insert(discriminator.to_owned(), chosen);
    let mut names = vec![discriminator.to_owned()];
    for (name, schema) in required {
        properties.insert((*name).to_owned(), schema.clone());
        names.push((*name).to_owned());
    }
    json!({"type": "object", "required": names, "properties": properties})
}

const RTMP_SESSION_CALLS: [&str; 4] = ["play", "publish", "update_play", "update_publish"];
const RTMP_DONE_CALLS: [&str; 3] = ["play_done", "publish_done", "done"];
const RTMP_OTHER_CALLS: [&str; 3] = ["connect", "update", "record_done"];

/// nginx-rtmp's notification (form or query): `call`, and for the calls about a session the
/// client's `addr` and (but for the done calls) the stream's `name`.
pub fn rtmp_notification() -> Value {
    let text = || json!({"type": "string"});
    let mut session = alternative(
        "call",
        &RTMP_SESSION_CALLS,
        &[],
        &[("addr", fields::ip()), ("name", fields::stream_name())],
    );
    let mut done = alternative("call", &RTMP_DONE_CALLS, &[], &[("addr", fields::ip())]);
    let mut other = alternative("call", &RTMP_OTHER_CALLS, &[], &[]);
    for schema in [&mut session, &mut done, &mut other] {
        for name in ["addr", "clientid", "app", "name", "token"] {
            if schema["properties"].get(name).is_none() {
                schema["properties"][name] = text();
            }
        }
    }
    json!({"oneOf": [session, done, other]})
}

const MEDIAMTX_STREAM_ACTIONS: [&str; 3] = ["publish", "read", "playback"];

/// MediaMTX's authentication body: a stream action needs `ip` and `path`; any other action
/// (`api`, `metrics`, `pprof`) is refused with 403.
pub fn mediamtx_body() -> Value {
    let stream = alternative(
        "action",
        &MEDIAMTX_STREAM_ACTIONS,
        &[],
        &[("ip", fields::ip()), ("path", fields::loose_stream_name())],
    );
    let other = alternative("action", &[], &MEDIAMTX_STREAM_ACTIONS, &[]);
    with_known(
        json!({"oneOf": [stream, other]}),
        &["user", "password", "token", "query", "protocol", "id"],
    )
}

const SRS_SESSION_ACTIONS: [&str; 4] = ["on_publish", "on_play", "on_unpublish", "on_stop"];

/// SRS's callback body: a session action needs `ip`, `stream` and `client_id`; any other
/// action has nothing to decide (200).
pub fn srs_body() -> Value {
    let session = alternative(
        "action",
        &SRS_SESSION_ACTIONS,
        &[],
        &[
            ("ip", fields::ip()),
            ("stream", fields::loose_stream_name()),
            ("client_id", loose()),
        ],
    );
    let other = alternative("action", &[], &SRS_SESSION_ACTIONS, &[]);
    with_known(
        json!({"oneOf": [session, other]}),
        &["server_id", "vhost", "app", "param", "tcUrl"],
    )
}

/// Names the other fields an adapter reads (any JSON; unknown fields are ignored).
fn with_known(mut schema: Value, known: &[&str]) -> Value {
    if let Some(alternatives) = schema["oneOf"].as_array_mut() {
        for alternative in alternatives {
            for name in known {
                alternative["properties"][*name] = json!({});
            }
        }
    }
    schema
}

/// `X-Original-URI` (`$request_uri`): a path naming a stream the way nginx-rtmp names its files,
/// with nothing nginx could read otherwise than we do (`#`, an encoded `/`, `\` or NUL, a `.`
/// or `..` segment).
pub fn original_uri() -> Value {
    json!({"type": "string",
        "pattern": r"^(/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+/[A-Za-z0-9_~-]+(\.m3u8|\.mpd|-[0-9]+\.ts)(\?[!-~]*)?$",
        "description": "e.g. /hls/cam1.m3u8?token=..., /hls/cam1-17.ts, /hls/cam1/index.m3u8"})
}
