//! Tokens: Istio's public samples (RS256, `testing@secure.istio.io`) and ES256
//! tokens signed here with a key made for the test.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue};
use meshlab_apps::internet::istio_samples::{DEMO_JWT, GROUPS_SCOPE_JWT, JWKS};
use meshlab_proxy_config::authz::{JwtHeader, JwtProvider};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::json;

use super::*;

const ISTIO_ISSUER: &str = "testing@secure.istio.io";
/// `exp` of `demo.jwt`.
const DEMO_EXP: u64 = 4_685_989_700;
/// Some time when the samples are valid.
const NOW: u64 = 1_800_000_000;

fn istio_provider() -> JwtProvider {
    JwtProvider {
        name: "istio-system/jwt-example#0".into(),
        issuer: ISTIO_ISSUER.into(),
        jwks: JWKS.into(),
        ..JwtProvider::default()
    }
}

struct EsKey {
    pair: EcdsaKeyPair,
    jwks: String,
}

fn es256_key(kid: &str) -> EsKey {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    let jwks = json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    }]})
    .to_string();
    EsKey { pair, jwks }
}

fn es256_token(key: &EsKey, kid: &str, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "ES256", "kid": kid}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{payload}");
    let signature = key
        .pair
        .sign(&SystemRandom::new(), signed.as_bytes())
        .unwrap();
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
}

fn es_provider(key: &EsKey) -> JwtProvider {
    JwtProvider {
        name: "foo/es#0".into(),
        issuer: "https://issuer.example".into(),
        audiences: vec!["bookinfo".into()],
        jwks: key.jwks.clone(),
        ..JwtProvider::default()
    }
}

#[test]
fn istios_demo_token_verifies_rs256() {
    let verified = verify(DEMO_JWT, &[istio_provider()], &[0], NOW).unwrap();
    assert_eq!(
        verified.principal,
        "testing@secure.istio.io/testing@secure.istio.io"
    );
    assert_eq!(verified.claims["foo"], "bar");
    let groups = verify(GROUPS_SCOPE_JWT, &[istio_provider()], &[0], NOW).unwrap();
    assert_eq!(groups.claims["groups"], json!(["group1", "group2"]));
}

#[test]
fn envoys_reasons_for_bad_tokens() {
    let providers = [istio_provider()];
    let check = |token: &str, now: u64| verify(token, &providers, &[0], now).map(|v| v.principal);
    let (head, rest) = DEMO_JWT.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let cases: Vec<(String, u64, JwtError)> = vec![
        ("deadbeef".into(), NOW, JwtError::BadFormat),
        ("a.b".into(), NOW, JwtError::BadFormat),
        ("a.b.c.d".into(), NOW, JwtError::BadFormat),
        (
            format!("!!.{payload}.{signature}"),
            NOW,
            JwtError::HeaderBadBase64,
        ),
        (
            format!("{}.{payload}.{signature}", URL_SAFE_NO_PAD.encode("nope")),
            NOW,
            JwtError::HeaderBadJson,
        ),
        (
            format!("{}.{payload}.{signature}", URL_SAFE_NO_PAD.encode("{}")),
            NOW,
            JwtError::HeaderBadAlg,
        ),
        (
            format!(
                "{}.{payload}.{signature}",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#)
            ),
            NOW,
            JwtError::HeaderAlgNotImplemented,
        ),
        (
            format!("{head}.%%.{signature}"),
            NOW,
            JwtError::PayloadBadBase64,
        ),
        (
            format!("{head}.{payload}.%%"),
            NOW,
            JwtError::SignatureBadBase64,
        ),
        // Expired: one second past the 60 s skew fails, within it passes (below).
        (DEMO_JWT.into(), DEMO_EXP + 61, JwtError::Expired),
        // A payload that is not the signed one.
        (
            format!(
                "{head}.{}.{signature}",
                URL_SAFE_NO_PAD
                    .encode(r#"{"exp":4685989700,"iss":"testing@secure.istio.io","sub":"admin"}"#)
            ),
            NOW,
            JwtError::VerificationFails,
        ),
        // A signature with one bit flipped.
        (
            {
                let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
                sig[10] ^= 1;
                format!("{head}.{payload}.{}", URL_SAFE_NO_PAD.encode(sig))
            },
            NOW,
            JwtError::VerificationFails,
        ),
    ];
    for (token, now, want) in cases {
        assert_eq!(check(&token, now), Err(want), "{token}");
    }
    assert!(
        check(DEMO_JWT, DEMO_EXP + 59).is_ok(),
        "within the clock skew"
    );
    assert_eq!(
        JwtError::BadFormat.to_string(),
        "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"
    );
    assert_eq!(
        JwtError::VerificationFails.to_string(),
        "Jwt verification fails"
    );
}

#[test]
fn issuer_audience_and_keys_must_fit() {
    let other_issuer = JwtProvider {
        issuer: "someone-else".into(),
        ..istio_provider()
    };
    assert_eq!(
        verify(DEMO_JWT, &[other_issuer], &[0], NOW),
        Err(JwtError::UnknownIssuer)
    );
    let with_audience = JwtProvider {
        audiences: vec!["bookinfo".into()],
        ..istio_provider()
    };
    assert_eq!(
        verify(DEMO_JWT, &[with_audience], &[0], NOW),
        Err(JwtError::AudienceNotAllowed)
    );
    // jwksUri not fetched: no keys.
    let no_keys = JwtProvider {
        jwks: String::new(),
        ..istio_provider()
    };
    assert_eq!(
        verify(DEMO_JWT, &[no_keys], &[0], NOW),
        Err(JwtError::KidAlgMismatch)
    );
    // An issuer left empty accepts any `iss`.
    let any_issuer = JwtProvider {
        issuer: String::new(),
        ..istio_provider()
    };
    assert!(verify(DEMO_JWT, &[any_issuer], &[0], NOW).is_ok());
}

#[test]
fn es256_tokens_with_times_and_audiences() {
    let key = es256_key("k1");
    let provider = es_provider(&key);
    let claims = |extra: Value| {
        let mut c =
            json!({"iss": "https://issuer.example", "sub": "alice", "aud": ["x", "bookinfo"]});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let ok = es256_token(&key, "k1", &claims(json!({"exp": NOW + 5})));
    let verified = verify(&ok, std::slice::from_ref(&provider), &[0], NOW).unwrap();
    assert_eq!(verified.principal, "https://issuer.example/alice");

    let cases = [
        (json!({"exp": NOW - 61}), Some(JwtError::Expired)),
        (json!({"exp": NOW - 59}), None),
        (json!({"nbf": NOW + 61}), Some(JwtError::NotYetValid)),
        (json!({"nbf": NOW + 59}), None),
        (json!({"aud": "other"}), Some(JwtError::AudienceNotAllowed)),
        (json!({"aud": "https://bookinfo/"}), None),
        (
            json!({"iss": "https://elsewhere"}),
            Some(JwtError::UnknownIssuer),
        ),
    ];
    for (extra, want) in cases {
        let token = es256_token(&key, "k1", &claims(extra.clone()));
        let got = verify(&token, std::slice::from_ref(&provider), &[0], NOW).err();
        assert_eq!(got, want, "{extra}");
    }
    // Signed by another key: same kid, wrong signature.
    let stranger = es256_key("k1");
    let forged = es256_token(&stranger, "k1", &claims(json!({})));
    assert_eq!(
        verify(&forged, std::slice::from_ref(&provider), &[0], NOW),
        Err(JwtError::VerificationFails)
    );
    // A kid the key set does not have.
    let unknown_kid = es256_token(&key, "k2", &claims(json!({})));
    assert_eq!(
        verify(&unknown_kid, std::slice::from_ref(&provider), &[0], NOW),
        Err(JwtError::KidAlgMismatch)
    );
    // An RS256 token against an EC key set.
    let rs_against_ec = JwtProvider {
        issuer: ISTIO_ISSUER.into(),
        audiences: Vec::new(),
        ..provider
    };
    assert_eq!(
        verify(DEMO_JWT, &[rs_against_ec], &[0], NOW),
        Err(JwtError::KidAlgMismatch)
    );
}

#[test]
fn tokens_are_found_where_providers_say() {
    let mut headers = HeaderMap::new();
    assert_eq!(extract(&[istio_provider()], &headers, None), None);
    headers.insert(
        "authorization",
        HeaderValue::from_static("Bearer abc.def.ghi"),
    );
    let (token, location, readers) = extract(&[istio_provider()], &headers, None).unwrap();
    assert_eq!(token, "abc.def.ghi");
    assert_eq!(location, Location::Header(http::header::AUTHORIZATION));
    assert_eq!(readers, [0]);
    // Basic credentials are not a bearer token.
    headers.insert(
        "authorization",
        HeaderValue::from_static("Basic Zm9vOmJhcg=="),
    );
    assert_eq!(extract(&[istio_provider()], &headers, None), None);
    // The default query parameter.
    let (token, location, _) =
        extract(&[istio_provider()], &headers, Some("a=1&access_token=tok")).unwrap();
    assert_eq!(token, "tok");
    assert_eq!(location, Location::Param("access_token".into()));

    // A custom header with a prefix; the default locations no longer apply.
    let custom = JwtProvider {
        from_headers: vec![JwtHeader {
            name: "X-Jwt-Assertion".into(),
            value_prefix: "Token ".into(),
        }],
        from_params: vec!["jwt".into()],
        ..istio_provider()
    };
    let mut headers = HeaderMap::new();
    headers.insert("authorization", HeaderValue::from_static("Bearer ignored"));
    assert_eq!(extract(std::slice::from_ref(&custom), &headers, None), None);
    headers.insert("x-jwt-assertion", HeaderValue::from_static("Bearer nope"));
    assert_eq!(extract(std::slice::from_ref(&custom), &headers, None), None);
    headers.insert("x-jwt-assertion", HeaderValue::from_static("Token abc"));
    let (token, _, _) = extract(std::slice::from_ref(&custom), &headers, None).unwrap();
    assert_eq!(token, "abc");
    let (token, _, _) = extract(
        std::slice::from_ref(&custom),
        &HeaderMap::new(),
        Some("jwt=q"),
    )
    .unwrap();
    assert_eq!(token, "q");
    // Both providers read `Authorization`: both are candidates for its token.
    let mut headers = HeaderMap::new();
    headers.insert("authorization", HeaderValue::from_static("Bearer t"));
    let (_, _, readers) = extract(&[istio_provider(), istio_provider()], &headers, None).unwrap();
    assert_eq!(readers, [0, 1]);
}

/// Deterministic mutations of valid tokens (bytes flipped, sections cut, dots moved,
/// base64 of arbitrary JSON): the verifier refuses or accepts, never panics, and
/// never accepts a token whose signed part changed.
#[test]
fn mutated_tokens_never_panic_or_pass() {
    let key = es256_key("k1");
    let es = es_provider(&key);
    let es_token = es256_token(
        &key,
        "k1",
        &json!({"iss": "https://issuer.example", "sub": "a", "aud": "bookinfo"}),
    );
    let providers = [istio_provider(), es];
    let mut rng = fastrand::Rng::with_seed(5);
    let alphabet = b"ABCxyz019-_.=+/ {}\"";
    for round in 0..6000 {
        let base = if round % 2 == 0 {
            DEMO_JWT
        } else {
            es_token.as_str()
        };
        let mut bytes = base.as_bytes().to_vec();
        match round % 5 {
            0 => {
                let i = rng.usize(..bytes.len());
                bytes[i] = alphabet[rng.usize(..alphabet.len())];
            }
            1 => bytes.truncate(rng.usize(..bytes.len())),
            2 => {
                let i = rng.usize(..bytes.len());
                bytes.insert(i, b'.');
            }
            3 => {
                let n = rng.usize(1..4);
                for _ in 0..n {
                    let i = rng.usize(..bytes.len());
                    bytes[i] ^= 1 << rng.u8(0..7);
                }
            }
            _ => {
                let junk: String = (0..rng.usize(0..40))
                    .map(|_| char::from(alphabet[rng.usize(..alphabet.len())]))
                    .collect();
                let section = URL_SAFE_NO_PAD.encode(junk);
                bytes = format!("{section}.{section}.{section}").into_bytes();
            }
        }
        let Ok(token) = String::from_utf8(bytes) else {
            continue;
        };
        let result = verify(&token, &providers, &[0, 1], NOW);
        if token != base
            && let Ok(verified) = &result
        {
            // Only changes outside the signed bytes' meaning may still verify
            // (for example `=` padding stripped by the decoder).
            let signed_same =
                token.rsplit_once('.').map(|(s, _)| s) == base.rsplit_once('.').map(|(s, _)| s);
            assert!(
                signed_same || token.trim_end_matches('=') == base,
                "mutated token verified: {token} → {verified:?}"
            );
        }
    }
}

#[test]
fn claims_become_header_text() {
    let claims = json!({"sub": "alice", "n": 3, "ok": true, "a": {"b": "deep"}, "list": ["x"]});
    assert_eq!(claim_text(&claims, "sub").as_deref(), Some("alice"));
    assert_eq!(claim_text(&claims, "n").as_deref(), Some("3"));
    assert_eq!(claim_text(&claims, "ok").as_deref(), Some("true"));
    assert_eq!(claim_text(&claims, "a.b").as_deref(), Some("deep"));
    assert_eq!(claim_text(&claims, "list"), None);
    assert_eq!(claim_text(&claims, "missing"), None);
}
