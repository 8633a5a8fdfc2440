//! `raw.githubusercontent.com`, as far as Istio's tasks read it: the JWT samples of
//! the Istio repository (`security/tools/jwt/samples/`), which the authentication
//! tasks name by URL — `jwksUri: https://raw.githubusercontent.com/istio/istio/<ref>/security/tools/jwt/samples/jwks.json`
//! for the keys and `curl …/demo.jwt` for a token.
//!
//! The files are Istio's public test fixtures, served verbatim for any ref
//! (`master`, `release-1.24`, …): the public key set; two tokens signed with its
//! private key, `demo.jwt` (`iss` and `sub` `testing@secure.istio.io`, expiring in
//! 2118) and `groups-scope.jwt` (with `groups: [group1, group2]` and
//! `scope: [scope1, scope2]`); and that private key, `key.pem`, which the task
//! hands to its token tool (`meshlab gen-jwt key.pem --expire 5`).

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

/// `jwks.json`: the public key of Istio's sample issuer `testing@secure.istio.io`.
pub const JWKS: &str = r#"{ "keys":[ {"e":"AQAB","kid":"DHFbpoIUqrY8t2zpA2qXfCmr5VO5ZEr4RzHU_-envvQ","kty":"RSA","n":"xAE7eB6qugXyCAG3yhh7pkDkT65pHymX-P7KfIupjf59vsdo91bSP9C8H07pSAGQO1MV_xFj9VswgsCg4R6otmg5PV2He95lZdHtOcU5DXIg_pbhLdKXbi66GlVeK6ABZOUW3WYtnNHD-91gVuoeJT_DwtGGcp4ignkgXfkiEm4sw-4sfb4qdt5oLbyVpmW6x9cfa7vs2WTfURiCrBoUqgBo_-4WTiULmmHSGZHOjzwa8WtrtOQGsAFjIbno85jp6MnGGGZPYZbDAa_b3y5u-YpW7ypZrvD8BgtKVjgtQgZhLAGezMt0ua3DRrWnKqTZ0BJ_EyxOGuHJrLsn00fnMQ"}]}"#;

/// `demo.jwt`: a token of `testing@secure.istio.io` (RS256).
pub const DEMO_JWT: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6IkRIRmJwb0lVcXJZOHQyenBBMnFYZkNtcjVWTzVaRXI0UnpIVV8tZW52dlEiLCJ0eXAiOiJKV1QifQ.eyJleHAiOjQ2ODU5ODk3MDAsImZvbyI6ImJhciIsImlhdCI6MTUzMjM4OTcwMCwiaXNzIjoidGVzdGluZ0BzZWN1cmUuaXN0aW8uaW8iLCJzdWIiOiJ0ZXN0aW5nQHNlY3VyZS5pc3Rpby5pbyJ9.CfNnxWP2tcnR9q0vxyxweaF3ovQYHYZl82hAUsn21bwQd9zP7c-LS9qd_vpdLG4Tn1A15NxfCjp5f7QNBUo-KC9PJqYpgGbaXhaGx7bEdFWjcwv3nZzvc7M__ZpaCERdwU7igUmJqYGBYQ51vr2njU9ZimyKkfDe3axcyiBZde7G6dabliUosJvvKOPcKIWPccCgefSj_GNfwIip3-SsFdlR7BtbVUcqR-yv-XOxJ3Uc1MI0tz3uMiiZcyPV7sNCU4KRnemRIMHVOfuvHsU60_GhGbiSFzgPTAa9WTltbnarTbxudb_YEOx12JiwYToeX0DCPb43W1tzIBxgm8NxUg";

/// `groups-scope.jwt`: a token with `groups` and `scope` claims (RS256).
pub const GROUPS_SCOPE_JWT: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6IkRIRmJwb0lVcXJZOHQyenBBMnFYZkNtcjVWTzVaRXI0UnpIVV8tZW52dlEiLCJ0eXAiOiJKV1QifQ.eyJleHAiOjM1MzczOTExMDQsImdyb3VwcyI6WyJncm91cDEiLCJncm91cDIiXSwiaWF0IjoxNTM3MzkxMTA0LCJpc3MiOiJ0ZXN0aW5nQHNlY3VyZS5pc3Rpby5pbyIsInNjb3BlIjpbInNjb3BlMSIsInNjb3BlMiJdLCJzdWIiOiJ0ZXN0aW5nQHNlY3VyZS5pc3Rpby5pbyJ9.EdJnEZSH6X8hcyEii7c8H5lnhgjB5dwo07M5oheC8Xz8mOllyg--AHCFWHybM48reunF--oGaG6IXVngCEpVF0_P5DwsUoBgpPmK1JOaKN6_pe9sh0ZwTtdgK_RP01PuI7kUdbOTlkuUi2AO-qUyOm7Art2POzo36DLQlUXv8Ad7NBOqfQaKjE9ndaPWT7aexUsBHxmgiGbz1SyLH879f7uHYPbPKlpHU6P9S-DaKnGLaEchnoKnov7ajhrEhGXAQRukhDPKUHO9L30oPIr5IJllEQfHYtt6IZvlNUGeLUcif3wpry1R5tBXRicx2sXMQ7LyuDremDbcNy_iE76Upg";

/// The router: `/{owner}/{repo}/{ref}/security/tools/jwt/samples/{file}`.
pub(super) fn router() -> Router {
    Router::new().route(
        "/istio/istio/{reference}/security/tools/jwt/samples/{file}",
        get(
            |Path((_reference, file)): Path<(String, String)>| async move {
                let body = match file.as_str() {
                    "jwks.json" => JWKS,
                    "demo.jwt" => DEMO_JWT,
                    "groups-scope.jwt" => GROUPS_SCOPE_JWT,
                    "key.pem" => crate::gen_jwt::SAMPLE_KEY_PEM,
                    _ => return (StatusCode::NOT_FOUND, "404: Not Found").into_response(),
                };
                (
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    format!("{body}\n"),
                )
                    .into_response()
            },
        ),
    )
}
