use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use serde_json::{Value, json};

use super::*;
use crate::internet::istio_samples::JWKS;

fn request() -> Request {
    Request {
        issuer: SAMPLE_ISSUER.to_owned(),
        subject: None,
        audience: None,
        claims: None,
        list_claims: Vec::new(),
        expire: 3600,
    }
}

fn part(token: &str, index: usize) -> Value {
    let bytes = URL_SAFE_NO_PAD
        .decode(token.split('.').nth(index).unwrap())
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn the_sample_key_is_the_one_istios_jwks_publishes() {
    let key = SigningKey::from_pem(SAMPLE_KEY_PEM).unwrap();
    let published: Value = serde_json::from_str(JWKS).unwrap();
    let published = &published["keys"][0];
    assert_eq!(key.kid, published["kid"], "kid is the RFC 7638 thumbprint");
    assert_eq!(key.jwk["n"], published["n"]);
    assert_eq!(key.jwk["e"], published["e"]);
}

#[test]
fn tokens_carry_the_sample_tools_header_and_claims_and_verify() {
    let key = SigningKey::from_pem(SAMPLE_KEY_PEM).unwrap();
    let token = key
        .sign(
            &Request {
                expire: 5,
                ..request()
            },
            1_700_000_000,
        )
        .unwrap();
    assert_eq!(
        part(&token, 0),
        json!({ "alg": "RS256", "typ": "JWT", "kid": key.kid })
    );
    assert_eq!(
        part(&token, 1),
        json!({
            "exp": 1_700_000_005,
            "iat": 1_700_000_000,
            "iss": "testing@secure.istio.io",
            "sub": "testing@secure.istio.io",
        })
    );
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let n = URL_SAFE_NO_PAD
        .decode(key.jwk["n"].as_str().unwrap())
        .unwrap();
    let e = URL_SAFE_NO_PAD
        .decode(key.jwk["e"].as_str().unwrap())
        .unwrap();
    RsaPublicKeyComponents { n: &n, e: &e }
        .verify(
            &RSA_PKCS1_2048_8192_SHA256,
            signed.as_bytes(),
            &URL_SAFE_NO_PAD.decode(signature).unwrap(),
        )
        .expect("the signature verifies with the published key");
}

#[test]
fn audiences_string_claims_and_list_claims() {
    let key = SigningKey::from_pem(SAMPLE_KEY_PEM).unwrap();
    let claims = |request: Request| part(&key.sign(&request, 0).unwrap(), 1);
    let token = claims(Request {
        subject: Some("alice".into()),
        audience: Some("foo,bar".into()),
        claims: Some("email:foo@example.com,dead:beef".into()),
        list_claims: vec!["groups=group1,group2".into()],
        expire: -30,
        ..request()
    });
    assert_eq!(token["sub"], "alice");
    assert_eq!(token["aud"], json!(["foo", "bar"]));
    assert_eq!(token["email"], "foo@example.com");
    assert_eq!(token["dead"], "beef");
    assert_eq!(token["groups"], json!(["group1", "group2"]));
    assert_eq!(token["exp"], -30, "a negative --expire is already expired");
    assert_eq!(
        claims(Request {
            audience: Some("one".into()),
            ..request()
        })["aud"],
        "one"
    );

    let bad = key.sign(
        &Request {
            claims: Some("novalue".into()),
            ..request()
        },
        0,
    );
    assert!(matches!(bad, Err(GenJwtError::Claim(item)) if item == "novalue"));
    let bad = key.sign(
        &Request {
            list_claims: vec!["lonely".into()],
            ..request()
        },
        0,
    );
    assert!(matches!(bad, Err(GenJwtError::ListClaim(_))));
}

#[test]
fn keys_that_are_not_rsa_private_keys_are_refused() {
    for pem in [
        "not pem",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    ] {
        let err = SigningKey::from_pem(pem).expect_err(pem);
        assert!(err.to_string().contains("hint:"), "{err}");
    }
}
