//! `/auth` and `/auth/publish`: the query string or form body, or the JSON body, as the server
//! reads them. The first byte picks the input kind and the action.
#![no_main]

use auth_core::Action;
use auth_server::fuzzing::{flussonic, AuthInput};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let input = if selector & 1 == 0 {
        AuthInput::Form
    } else {
        AuthInput::Json
    };
    let action = if selector & 2 == 0 {
        Action::Play
    } else {
        Action::Publish
    };
    if let Ok(request) = flussonic(input, bytes, action) {
        assert!(
            !request.stream.is_empty(),
            "an admitted request names a stream"
        );
        assert_eq!(request.action, action);
        assert_eq!(request.session_id, request.media_session_id);
    }
});
