//! Stream allow-lists: `*` globs, checked against a plain backtracking matcher (slow, obviously
//! right) on short inputs, and for bounded work on long ones. The input is a pattern and a
//! stream name, split at the first NUL.
#![no_main]

use auth_core::token::StreamAllowList;
use libfuzzer_sys::fuzz_target;

/// The definition: `*` matches any run of characters, everything else itself.
fn reference(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('*', rest)) => (0..=text.len()).any(|skip| reference(rest, &text[skip..])),
        Some((c, rest)) => text.first() == Some(c) && reference(rest, &text[1..]),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(data) = std::str::from_utf8(data) else {
        return;
    };
    let Some((pattern, stream)) = data.split_once('\0') else {
        return;
    };
    let Ok(list) = StreamAllowList::parse(&[pattern]) else {
        return;
    };
    let allowed = list.allows(stream);
    // The list keeps the pattern trimmed.
    let pattern: Vec<char> = pattern.trim().chars().collect();
    let stream: Vec<char> = stream.chars().collect();
    let stars = pattern.iter().filter(|&&c| c == '*').count();
    if stars <= 4 && pattern.len() + stream.len() <= 64 {
        assert_eq!(
            allowed,
            reference(&pattern, &stream),
            "{pattern:?} on {stream:?}"
        );
    }
});
