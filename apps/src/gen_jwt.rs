//! `meshlab gen-jwt`: signs a JSON Web Token the way Istio's sample tool
//! `security/tools/jwt/samples/gen-jwt.py` does, so the authentication task's
//! steps run as written:
//!
//! ```text
//! TOKEN=$(meshlab gen-jwt key.pem --expire 5)
//! ```
//!
//! The facts it keeps from that tool: RS256 with the header
//! `{"alg":"RS256","typ":"JWT","kid":…}`, where `kid` is the key's RFC 7638
//! thumbprint (what jwcrypto assigns a key read from PEM, and the `kid` in Istio's
//! sample `jwks.json`); claims `exp` (now + `--expire`, default 3600 s), `iat`,
//! `iss` (default `testing@secure.istio.io`), `sub` (default: the issuer), `aud`
//! (a list when comma-separated), string claims from `--claims name:value,…` and
//! list claims (`--listclaim name=value1,value2` here, `-listclaim name value1
//! value2` there); `--jwks FILE` writes the public key
//! set.
//!
//! Without a key file it signs with the private key of Istio's sample issuer
//! (`security/tools/jwt/samples/key.pem`, a public test key), whose public half the
//! simulated `raw.githubusercontent.com` serves as `jwks.json`. A negative
//! `--expire` makes a token that has already expired, to see the proxies'
//! 60-second clock-skew allowance without waiting.

use std::ffi::OsString;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents};
use rustls_pki_types::pem::{PemObject, SectionKind};
use serde_json::{Map, Value, json};

/// The issuer of Istio's sample tokens.
pub const SAMPLE_ISSUER: &str = "testing@secure.istio.io";

/// Istio's sample signing key (`security/tools/jwt/samples/key.pem`).
pub const SAMPLE_KEY_PEM: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAxAE7eB6qugXyCAG3yhh7pkDkT65pHymX+P7KfIupjf59vsdo
91bSP9C8H07pSAGQO1MV/xFj9VswgsCg4R6otmg5PV2He95lZdHtOcU5DXIg/pbh
LdKXbi66GlVeK6ABZOUW3WYtnNHD+91gVuoeJT/DwtGGcp4ignkgXfkiEm4sw+4s
fb4qdt5oLbyVpmW6x9cfa7vs2WTfURiCrBoUqgBo/+4WTiULmmHSGZHOjzwa8Wtr
tOQGsAFjIbno85jp6MnGGGZPYZbDAa/b3y5u+YpW7ypZrvD8BgtKVjgtQgZhLAGe
zMt0ua3DRrWnKqTZ0BJ/EyxOGuHJrLsn00fnMQIDAQABAoIBAQCfv3ler2/qaYoX
6H6I4md02xK5tqbK1TWdpNwXoiSxLCgEY7YzULnPdSq+Qax0GYIaN9+Hof7cLFRf
XOxCTqCm+k8cqqwP0vTFhdFY8ltLkCdAGGyy0h7FmKPpboZv+9rnBqgaDntCgty+
3HD2pZ2oMk407Fwt8qChwmMU9EZGycIRxwTFB8xGpss8gFc+fTAmvGFI/s8aclu+
+XmvPkw0lz+dLaNsne0yBHVMPFtncqhbsFbnbB8OAMtWsVbTwU60OVeZ/oOYJVY9
vtuMQ4IAi5kMx8AWQ1UDvW2ZnuGpQkr6dZ2YP/IMOXGaywbgcHPUitrW3iIYYW+U
NIVWXkA5AoGBAPd9MesQduCsngWNvtIjrNUEakbXkg0vbw+dRIbIqy2Bx/tyWhim
qFNYcNjZELqp5C3f3hlO/k9K8xxJLIYloYg1948DbpOhVk8SdFGgpCYC4q/fBPw+
kAFQEKhZelwKj2Srf58BCrhIe1KPHbQfTF/JZ7JBndIw79/1p9rU6wWLAoGBAMq+
yd+7L8wpCZNtmjDUTWmGq3LmFLBzBMhwmV2NOKbTFakMVyEtSORQFOJbxFwuWx5z
j3nLq9ivQgNKLPLSTF/Dtej2lzgNd9YG/9XW+6HeZ841XNUHE0XsU6Mm1EAyadfu
AAnoxTh/NqYvF81qCM9tl9Bsjx8klOyXrrGKj/WzAoGAKJC2u+bI9W6VwCdJnbwH
OistGEuBPvQFajPG5ajClgTtuIM3zU6TzIV0ibaajV4HbpWBG/jcqjaIvpwn1h0Y
6vCdkS1o1H3fXbqSokaIYUqbyWPut0Gx7OUotc9kxO1eL4wEsRVEoowO2qtmnP18
UT775jXnHmqzBqyHRNEdbJ0CgYAdgPAdp77H5fznwF5c1rhBMADJIqRGHSbICGK5
E3D4DeWsCQiw4kcmOmUfn50OkQxffQ+W+MWULcTcd7Hc0C+fC/rv4NqWpJcYxUH7
m2JY5uWSQ3+z3Gi4lzCAoIjooq12Z8MHriDtHM4WFupO0SxhCyC5iuK09HzbhSM9
4N0cMwKBgGfYJRmX5pW7rKo/O1Zl6oG6VBA6fYXIe28X9sZ0YCbVIuX8MgRk2Vpm
y47qmzEQ/1kwWtQzZOcePM8rd8qTTFPCkM45S1ieh7qjNSMVIbl8I635UqCCoetW
VDwvUhVLO4mBT0p2F8g6Wngmpy9ZBh2B52w3Rz9UxHffwdC7hhQD
-----END RSA PRIVATE KEY-----
";

/// What a token carries, from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `iss`.
    pub issuer: String,
    /// `sub`; the issuer when `None`.
    pub subject: Option<String>,
    /// `aud`, comma-separated for several.
    pub audience: Option<String>,
    /// `name:value,…` string claims.
    pub claims: Option<String>,
    /// List claims, `name=value1,value2`.
    pub list_claims: Vec<String>,
    /// Seconds from now to `exp`.
    pub expire: i64,
}

/// Why a token could not be made.
#[derive(Debug, thiserror::Error)]
pub enum GenJwtError {
    /// The key is not an RSA private key in PEM.
    #[error(
        "{0} (hint: give a PEM RSA private key, e.g. from `openssl genrsa -out key.pem 2048`, \
         or no KEY for Istio's sample key)"
    )]
    Key(String),
    /// A `--claims` item without `name:value`.
    #[error("--claims item {0:?} is not name:value")]
    Claim(String),
    /// A `--listclaim` that is not `name=values`.
    #[error("--listclaim {0:?} is not name=value1,value2")]
    ListClaim(String),
    /// Signing failed.
    #[error("signing failed")]
    Sign,
}

/// An RSA signing key and its public JWK.
#[derive(Debug)]
pub struct SigningKey {
    pair: RsaKeyPair,
    /// The public key as a JWK (`kty`, `n`, `e`, `kid`).
    pub jwk: Value,
    /// Its RFC 7638 thumbprint.
    pub kid: String,
}

impl SigningKey {
    /// Reads a PEM RSA private key (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`).
    pub fn from_pem(pem: &str) -> Result<Self, GenJwtError> {
        let (kind, der) = <(SectionKind, Vec<u8>)>::from_pem_slice(pem.as_bytes())
            .map_err(|err| GenJwtError::Key(format!("the key is not PEM: {err}")))?;
        let pair = match kind {
            SectionKind::RsaPrivateKey => RsaKeyPair::from_der(&der),
            SectionKind::PrivateKey => RsaKeyPair::from_pkcs8(&der),
            other => {
                return Err(GenJwtError::Key(format!(
                    "the key file holds a {other:?} section, not an RSA private key"
                )));
            }
        }
        .map_err(|err| GenJwtError::Key(format!("the RSA key is unusable: {err}")))?;
        let public = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
        let n = URL_SAFE_NO_PAD.encode(&public.n);
        let e = URL_SAFE_NO_PAD.encode(&public.e);
        // RFC 7638 §3.2: the required members, in lexicographic order, no spaces.
        let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()));
        let jwk = json!({ "e": e, "kid": kid, "kty": "RSA", "n": n });
        Ok(SigningKey { pair, jwk, kid })
    }

    /// The public key set, as `--jwks` writes it.
    pub fn jwks(&self) -> String {
        json!({ "keys": [self.jwk] }).to_string()
    }

    /// A signed token for `request`, issued at `now` (seconds since the epoch).
    pub fn sign(&self, request: &Request, now: i64) -> Result<String, GenJwtError> {
        let mut payload = Map::new();
        payload.insert("exp".into(), json!(now + request.expire));
        payload.insert("iat".into(), json!(now));
        payload.insert("iss".into(), json!(request.issuer));
        payload.insert(
            "sub".into(),
            json!(request.subject.as_deref().unwrap_or(&request.issuer)),
        );
        if let Some(audience) = &request.audience {
            let value = if audience.contains(',') {
                json!(audience.split(',').collect::<Vec<_>>())
            } else {
                json!(audience)
            };
            payload.insert("aud".into(), value);
        }
        for item in request.claims.iter().flat_map(|c| c.split(',')) {
            let (name, value) = item
                .split_once(':')
                .ok_or_else(|| GenJwtError::Claim(item.to_owned()))?;
            payload.insert(name.into(), json!(value));
        }
        for list in &request.list_claims {
            let (name, values) = list
                .split_once('=')
                .filter(|(name, values)| !name.is_empty() && !values.is_empty())
                .ok_or_else(|| GenJwtError::ListClaim(list.clone()))?;
            payload.insert(name.into(), json!(values.split(',').collect::<Vec<_>>()));
        }
        let header = json!({ "alg": "RS256", "typ": "JWT", "kid": self.kid });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(Value::Object(payload).to_string())
        );
        let mut signature = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| GenJwtError::Sign)?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Reads `path`, or Istio's sample key when there is none.
pub fn key_pem(path: Option<&OsString>) -> Result<String, GenJwtError> {
    match path {
        None => Ok(SAMPLE_KEY_PEM.to_owned()),
        Some(path) => std::fs::read_to_string(path).map_err(|err| {
            GenJwtError::Key(format!("cannot read {}: {err}", path.to_string_lossy()))
        }),
    }
}

#[cfg(test)]
mod tests;
