use super::*;
use axum::http::HeaderValue;

fn with_cookie(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::COOKIE, HeaderValue::from_str(value).unwrap());
    headers
}

#[test]
fn a_signed_session_names_its_user() {
    let key = SessionKey::random();
    let cookie = key.encode(Some("jason"));
    assert_eq!(
        key.user(&with_cookie(&format!("a=b; session={cookie}")))
            .as_deref(),
        Some("jason")
    );
}

#[test]
fn a_forged_or_foreign_session_names_nobody() {
    let key = SessionKey::random();
    let other = SessionKey::random();
    let foreign = other.encode(Some("jason"));
    assert_eq!(key.user(&with_cookie(&format!("session={foreign}"))), None);
    let payload = URL_SAFE_NO_PAD.encode(br#"{"user":"admin"}"#);
    assert_eq!(
        key.user(&with_cookie(&format!("session={payload}.AAAA"))),
        None
    );
}

#[test]
fn logging_out_keeps_no_user() {
    let key = SessionKey::random();
    let cookie = key.encode(None);
    assert_eq!(key.user(&with_cookie(&format!("session={cookie}"))), None);
}
