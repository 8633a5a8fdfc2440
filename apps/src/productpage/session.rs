//! The signed `session` cookie that remembers who logged in.
//!
//! Flask keeps `{"user": "<name>"}` in a cookie signed with the app's secret; we do
//! the same with HMAC-SHA256: `base64url(json) "." base64url(tag)`. The key is made
//! at start-up, so a restarted productpage forgets its sessions, as a Flask app with
//! a random secret does.

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde::{Deserialize, Serialize};

pub(super) struct SessionKey(hmac::Key);

#[derive(Serialize, Deserialize)]
struct Session {
    user: Option<String>,
}

impl SessionKey {
    pub(super) fn random() -> Self {
        let mut secret = [0u8; 32];
        for byte in &mut secret {
            *byte = fastrand::u8(..);
        }
        SessionKey(hmac::Key::new(hmac::HMAC_SHA256, &secret))
    }

    /// The cookie value for a session holding `user`.
    pub(super) fn encode(&self, user: Option<&str>) -> String {
        let json = serde_json::to_vec(&Session {
            user: user.map(str::to_owned),
        })
        .unwrap_or_default();
        let tag = hmac::sign(&self.0, &json);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&json),
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    /// The user of a request's valid session cookie, if any.
    pub(super) fn user(&self, headers: &HeaderMap) -> Option<String> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().strip_prefix("session="))
            .find_map(|value| self.decode(value))
    }

    fn decode(&self, value: &str) -> Option<String> {
        let (payload, tag) = value.split_once('.')?;
        let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        hmac::verify(&self.0, &json, &tag).ok()?;
        serde_json::from_slice::<Session>(&json).ok()?.user
    }
}

#[cfg(test)]
mod tests;
