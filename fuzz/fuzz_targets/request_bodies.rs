//! Arbitrary bytes as the JSON body of every endpoint: the body types'
//! deserializers (strict: unknown fields refused, every field typed) must
//! never panic or overflow the stack.
#![no_main]

use engine_auth::http::handlers::{
    LoginBody, LogoutBody, NewUserBody, PasswordBody, RefreshBody, RolesBody,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<LoginBody>(data);
    let _ = serde_json::from_slice::<RefreshBody>(data);
    let _ = serde_json::from_slice::<LogoutBody>(data);
    let _ = serde_json::from_slice::<NewUserBody>(data);
    let _ = serde_json::from_slice::<RolesBody>(data);
    let _ = serde_json::from_slice::<PasswordBody>(data);
    // RolesBody is also serialized back (the PATCH response).
    if let Ok(r) = serde_json::from_slice::<RolesBody>(data) {
        let again = serde_json::to_vec(&r).unwrap();
        assert!(serde_json::from_slice::<RolesBody>(&again).is_ok());
    }
});
