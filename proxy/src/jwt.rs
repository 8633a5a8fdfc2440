//! End-user authentication: Envoy's `jwt_authn` filter as Istio configures it for
//! RequestAuthentication.
//!
//! - The token is looked for where the providers say (`fromHeaders` with a prefix,
//!   `fromParams`), by default `Authorization: Bearer <token>` and the `access_token`
//!   query parameter. The first one found is the request's token.
//! - No token: the request passes without an identity (Istio's `allow_missing`);
//!   an AuthorizationPolicy decides whether that is enough.
//! - A token: it must be a JWS in compact form, its `iss` must be a configured
//!   provider's (that reads the location it came from), `exp`/`nbf` must hold with
//!   Envoy's 60 s clock skew, `aud` must meet the provider's audiences when it lists
//!   any, and the signature must verify with a key of the provider's JWKS (matched by
//!   `kid` when both have one, and by algorithm). RS256/384/512 and ES256/384 are
//!   verified with `ring`. Any failure is 401 with Envoy's message as the body
//!   (`Jwt is expired`, `Jwt verification fails`, …).
//! - A verified token gives the request principal `<iss>/<sub>` and its claims for
//!   authorization; the token is removed from the forwarded request unless the
//!   provider says `forwardOriginalToken`, the payload is copied (base64url) into
//!   `outputPayloadToHeader` when set, and `outputClaimToHeaders` copies claims.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderMap;
use http::header::HeaderName;
use meshlab_proxy_config::authz::JwtProvider;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::Value;

/// Envoy's tolerance on `exp` and `nbf`.
pub(crate) const CLOCK_SKEW_SECONDS: u64 = 60;

/// A verified token.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Verified {
    /// `<iss>/<sub>`.
    pub(crate) principal: String,
    /// The payload.
    pub(crate) claims: Value,
    /// The payload as sent (base64url), for `outputPayloadToHeader`.
    pub(crate) payload_b64: String,
    /// Which provider verified it.
    pub(crate) provider: usize,
}

/// Why a token was refused; `Display` is Envoy's text (jwt_verify_lib's statuses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JwtError {
    /// Not three dot-separated sections.
    #[error("Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections")]
    BadFormat,
    /// The header is not base64url.
    #[error("Jwt header is an invalid Base64url encoded")]
    HeaderBadBase64,
    /// The header is not a JSON object.
    #[error("Jwt header is an invalid JSON")]
    HeaderBadJson,
    /// No `alg` string.
    #[error("Jwt header [alg] field is required and must be a string")]
    HeaderBadAlg,
    /// An algorithm meshlab does not verify.
    #[error("Jwt header [alg] is not supported")]
    HeaderAlgNotImplemented,
    /// The payload is not base64url.
    #[error("Jwt payload is an invalid Base64url encoded")]
    PayloadBadBase64,
    /// The payload is not a JSON object.
    #[error("Jwt payload is an invalid JSON")]
    PayloadBadJson,
    /// The signature is not base64url.
    #[error("Jwt signature is an invalid Base64url encoded")]
    SignatureBadBase64,
    /// No provider has the token's issuer.
    #[error("Jwt issuer is not configured")]
    UnknownIssuer,
    /// `exp` passed (beyond the skew).
    #[error("Jwt is expired")]
    Expired,
    /// `nbf` not reached (beyond the skew).
    #[error("Jwt not yet valid")]
    NotYetValid,
    /// No audience in common.
    #[error("Audiences in Jwt are not allowed")]
    AudienceNotAllowed,
    /// No key of the JWKS fits `kid` and `alg`.
    #[error("Jwks doesn't have key to match kid or alg from Jwt")]
    KidAlgMismatch,
    /// No key verifies the signature.
    #[error("Jwt verification fails")]
    VerificationFails,
}

/// Where a token came from, so it can be removed after verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Location {
    /// A header.
    Header(HeaderName),
    /// A query parameter.
    Param(String),
}

/// The token of a request, if any: `(token, where, providers reading there)`.
pub(crate) fn extract(
    providers: &[JwtProvider],
    headers: &HeaderMap,
    query: Option<&str>,
) -> Option<(String, Location, Vec<usize>)> {
    let mut found: Option<(String, Location, Vec<usize>)> = None;
    for (index, provider) in providers.iter().enumerate() {
        for (location, token) in locations(provider, headers, query) {
            match &mut found {
                Some((t, l, readers)) if *l == location && *t == token => readers.push(index),
                Some(_) => {}
                None => found = Some((token, location, vec![index])),
            }
        }
    }
    found
}

fn locations(
    provider: &JwtProvider,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Vec<(Location, String)> {
    let mut out = Vec::new();
    let defaults = provider.from_headers.is_empty() && provider.from_params.is_empty();
    let header_rules: Vec<(String, String)> = if defaults {
        vec![("authorization".to_owned(), "Bearer ".to_owned())]
    } else {
        provider
            .from_headers
            .iter()
            .map(|h| (h.name.to_ascii_lowercase(), h.value_prefix.clone()))
            .collect()
    };
    for (name, prefix) in header_rules {
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        for value in headers.get_all(&name) {
            let Ok(value) = value.to_str() else { continue };
            let token = if prefix.is_empty() {
                Some(value)
            } else {
                value
                    .get(..prefix.len())
                    .filter(|p| p.eq_ignore_ascii_case(&prefix))
                    .map(|_| &value[prefix.len()..])
            };
            if let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) {
                out.push((Location::Header(name.clone()), token.to_owned()));
            }
        }
    }
    let params: Vec<&str> = if defaults {
        vec!["access_token"]
    } else {
        provider.from_params.iter().map(String::as_str).collect()
    };
    for pair in query.unwrap_or_default().split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if params.contains(&key) && !value.is_empty() {
            out.push((Location::Param(key.to_owned()), value.to_owned()));
        }
    }
    out
}

/// Verifies `token` for the providers reading its location, at `now` (seconds since
/// the Unix epoch).
pub(crate) fn verify(
    token: &str,
    providers: &[JwtProvider],
    readers: &[usize],
    now: u64,
) -> Result<Verified, JwtError> {
    let mut sections = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) = (
        sections.next(),
        sections.next(),
        sections.next(),
        sections.next(),
    ) else {
        return Err(JwtError::BadFormat);
    };
    if header_b64.is_empty() || payload_b64.is_empty() {
        return Err(JwtError::BadFormat);
    }
    let header = decode(header_b64).map_err(|()| JwtError::HeaderBadBase64)?;
    let header: Value = serde_json::from_slice(&header).map_err(|_| JwtError::HeaderBadJson)?;
    if !header.is_object() {
        return Err(JwtError::HeaderBadJson);
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(JwtError::HeaderBadAlg)?;
    let algorithm = Algorithm::named(alg).ok_or(JwtError::HeaderAlgNotImplemented)?;
    let kid = header.get("kid").and_then(Value::as_str);
    let payload = decode(payload_b64).map_err(|()| JwtError::PayloadBadBase64)?;
    let claims: Value = serde_json::from_slice(&payload).map_err(|_| JwtError::PayloadBadJson)?;
    if !claims.is_object() {
        return Err(JwtError::PayloadBadJson);
    }
    let signature = decode(signature_b64).map_err(|()| JwtError::SignatureBadBase64)?;

    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let provider_index = readers
        .iter()
        .copied()
        .find(|&i| providers.get(i).is_some_and(|p| p.issuer == iss))
        .or_else(|| {
            readers
                .iter()
                .copied()
                .find(|&i| providers.get(i).is_some_and(|p| p.issuer.is_empty()))
        })
        .ok_or(JwtError::UnknownIssuer)?;
    let provider = &providers[provider_index];

    let seconds = |name: &str| claims.get(name).and_then(Value::as_u64);
    if let Some(exp) = seconds("exp")
        && now > exp.saturating_add(CLOCK_SKEW_SECONDS)
    {
        return Err(JwtError::Expired);
    }
    if let Some(nbf) = seconds("nbf")
        && nbf > now.saturating_add(CLOCK_SKEW_SECONDS)
    {
        return Err(JwtError::NotYetValid);
    }
    if !provider.audiences.is_empty() {
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !audiences
            .iter()
            .any(|a| provider.audiences.iter().any(|b| same_audience(a, b)))
        {
            return Err(JwtError::AudienceNotAllowed);
        }
    }

    let signed = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
    let keys: Vec<Value> = serde_json::from_str::<Value>(&provider.jwks)
        .ok()
        .and_then(|v| v.get("keys").and_then(Value::as_array).cloned())
        .unwrap_or_default();
    let candidates: Vec<&Value> = keys
        .iter()
        .filter(|k| {
            let kid_ok = match (kid, k.get("kid").and_then(Value::as_str)) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            };
            let alg_ok = k
                .get("alg")
                .and_then(Value::as_str)
                .is_none_or(|a| a == alg);
            kid_ok && alg_ok && algorithm.fits(k)
        })
        .collect();
    if candidates.is_empty() {
        return Err(JwtError::KidAlgMismatch);
    }
    if !candidates
        .iter()
        .any(|key| algorithm.verify(key, signed, &signature))
    {
        return Err(JwtError::VerificationFails);
    }
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Ok(Verified {
        principal: format!("{iss}/{sub}"),
        claims,
        payload_b64: payload_b64.to_owned(),
        provider: provider_index,
    })
}

/// A claim as header text (`outputClaimToHeaders`): a string, number or boolean,
/// `a.b` naming a nested claim; `None` for objects, arrays and missing claims.
pub(crate) fn claim_text(claims: &Value, name: &str) -> Option<String> {
    let value = name
        .split('.')
        .try_fold(claims, |value, part| value.get(part))?;
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Envoy compares audiences without scheme and trailing slash.
fn same_audience(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        let s = s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"))
            .unwrap_or(s);
        s.strip_suffix('/').unwrap_or(s).to_owned()
    };
    norm(a) == norm(b)
}

/// base64url, with or without padding.
fn decode(text: &str) -> Result<Vec<u8>, ()> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| ())
}

#[derive(Clone, Copy, Debug)]
enum Algorithm {
    Rsa(&'static signature::RsaParameters),
    Ecdsa(
        &'static signature::EcdsaVerificationAlgorithm,
        &'static str,
        usize,
    ),
}

impl Algorithm {
    fn named(alg: &str) -> Option<Algorithm> {
        Some(match alg {
            "RS256" => Algorithm::Rsa(&signature::RSA_PKCS1_2048_8192_SHA256),
            "RS384" => Algorithm::Rsa(&signature::RSA_PKCS1_2048_8192_SHA384),
            "RS512" => Algorithm::Rsa(&signature::RSA_PKCS1_2048_8192_SHA512),
            "ES256" => Algorithm::Ecdsa(&signature::ECDSA_P256_SHA256_FIXED, "P-256", 32),
            "ES384" => Algorithm::Ecdsa(&signature::ECDSA_P384_SHA384_FIXED, "P-384", 48),
            _ => return None,
        })
    }

    /// Whether a JWK has this algorithm's key type.
    fn fits(self, key: &Value) -> bool {
        let kty = key.get("kty").and_then(Value::as_str);
        match self {
            Algorithm::Rsa(_) => kty == Some("RSA"),
            Algorithm::Ecdsa(_, curve, _) => {
                kty == Some("EC") && key.get("crv").and_then(Value::as_str) == Some(curve)
            }
        }
    }

    fn verify(self, key: &Value, message: &[u8], signature: &[u8]) -> bool {
        let part = |name: &str| {
            key.get(name)
                .and_then(Value::as_str)
                .and_then(|v| decode(v).ok())
        };
        match self {
            Algorithm::Rsa(parameters) => {
                let (Some(n), Some(e)) = (part("n"), part("e")) else {
                    return false;
                };
                RsaPublicKeyComponents { n: &n, e: &e }
                    .verify(parameters, message, signature)
                    .is_ok()
            }
            Algorithm::Ecdsa(algorithm, _, size) => {
                let (Some(x), Some(y)) = (part("x"), part("y")) else {
                    return false;
                };
                if x.len() != size || y.len() != size {
                    return false;
                }
                let mut point = Vec::with_capacity(1 + 2 * size);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                UnparsedPublicKey::new(algorithm, point)
                    .verify(message, signature)
                    .is_ok()
            }
        }
    }
}

#[cfg(test)]
mod tests;
