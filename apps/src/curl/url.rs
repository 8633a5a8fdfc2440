//! The URLs curl accepts: `http://` and `https://`, with curl's defaults.
//!
//! A URL without a scheme means `http://`, as in curl (the Istio tasks write
//! `curl "$INGRESS_HOST:$INGRESS_PORT/headers"`). We keep our own small parser rather
//! than `http::Uri` because curl is more forgiving (no scheme, characters to encode)
//! and because redirects need RFC 3986 reference resolution, which `http` lacks.

use std::fmt;
use std::net::Ipv6Addr;

use super::error::CurlError;

/// The two schemes meshlab's curl speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// Plain HTTP, port 80 by default.
    Http,
    /// HTTP over TLS, port 443 by default.
    Https,
}

impl Scheme {
    /// The port used when the URL names none.
    pub(crate) fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }

    /// The scheme as written in URLs.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

/// A parsed absolute URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    /// http or https.
    pub(crate) scheme: Scheme,
    /// The host as written (IPv6 without brackets).
    pub(crate) host: String,
    /// The port, the scheme's default when not written.
    pub(crate) port: u16,
    /// Path and query, starting with `/`, percent-encoded where needed.
    pub(crate) path: String,
    /// Decoded `user:password` from the URL, for basic authentication.
    pub(crate) userinfo: Option<String>,
}

impl Url {
    /// Parses a URL as curl does from its command line.
    pub(crate) fn parse(input: &str) -> Result<Self, CurlError> {
        let (scheme, rest) = match input.find("://") {
            Some(i) => {
                let name = &input[..i];
                let scheme = match name.to_ascii_lowercase().as_str() {
                    "http" => Scheme::Http,
                    "https" => Scheme::Https,
                    _ => return Err(CurlError::UnsupportedProtocol(name.to_owned())),
                };
                (scheme, &input[i + 3..])
            }
            None => (Scheme::Http, input),
        };
        if rest
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(CurlError::MalformedUrl("Malformed input to a URL function"));
        }
        let rest = rest.split('#').next().unwrap_or_default();
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(percent_decode(&authority[..i])), &authority[i + 1..]),
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport)?;
        let port = match port {
            None | Some("") => scheme.default_port(),
            Some(p) => parse_port(p)?,
        };
        let path = match path.strip_prefix('?') {
            Some(_) => format!("/{path}"),
            None if path.is_empty() => "/".to_owned(),
            None => path.to_owned(),
        };
        Ok(Self {
            scheme,
            host: host.to_owned(),
            port,
            path: encode_path(&path),
            userinfo,
        })
    }

    /// Resolves a `Location` header value against this URL (RFC 3986, section 5.2).
    pub(crate) fn join(&self, reference: &str) -> Result<Self, CurlError> {
        let reference = reference.trim();
        let has_scheme = reference
            .find(':')
            .is_some_and(|i| reference[..i].bytes().all(|b| b.is_ascii_alphabetic()) && i > 0);
        if has_scheme {
            return Self::parse(reference);
        }
        if let Some(rest) = reference.strip_prefix("//") {
            return Self::parse(&format!("{}://{rest}", self.scheme.as_str()));
        }
        let reference = reference.split('#').next().unwrap_or_default();
        let mut next = Self {
            userinfo: None,
            ..self.clone()
        };
        let base_path = self.path.split('?').next().unwrap_or("/");
        next.path = if reference.is_empty() {
            self.path.clone()
        } else if reference.starts_with('?') {
            format!("{base_path}{reference}")
        } else {
            let (ref_path, query) = match reference.find('?') {
                Some(i) => reference.split_at(i),
                None => (reference, ""),
            };
            let merged = if ref_path.starts_with('/') {
                ref_path.to_owned()
            } else {
                let dir = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
                format!("{dir}{ref_path}")
            };
            encode_path(&format!("{}{query}", remove_dot_segments(&merged)))
        };
        Ok(next)
    }

    /// `host[:port]` as sent in `Host`, the port only when it is not the default.
    pub(crate) fn authority(&self) -> String {
        let host = self.bracketed_host();
        if self.port == self.scheme.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The host, in brackets when it is an IPv6 address.
    fn bracketed_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.as_str(),
            self.authority(),
            self.path
        )
    }
}

/// Splits `host[:port]` or `[v6][:port]`.
fn split_host_port(hostport: &str) -> Result<(&str, Option<&str>), CurlError> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let close = rest
            .find(']')
            .ok_or(CurlError::MalformedUrl("Bad IPv6 address"))?;
        let host = &rest[..close];
        // A zone id (`%25eth0`) may follow the address; only the address must parse.
        let address = host.split('%').next().unwrap_or_default();
        if address.parse::<Ipv6Addr>().is_err() {
            return Err(CurlError::MalformedUrl("Bad IPv6 address"));
        }
        let after = &rest[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return Err(CurlError::MalformedUrl("Bad IPv6 address")),
        };
        (host, port)
    } else {
        match hostport.rfind(':') {
            Some(i) => (&hostport[..i], Some(&hostport[i + 1..])),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err(CurlError::MalformedUrl("No host part in the URL"));
    }
    if !hostport.starts_with('[')
        && !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(&b) || b >= 0x80)
    {
        return Err(CurlError::MalformedUrl("Bad hostname"));
    }
    Ok((host, port))
}

/// Parses a decimal port, 0 to 65535 as curl allows.
fn parse_port(port: &str) -> Result<u16, CurlError> {
    if port.bytes().all(|b| b.is_ascii_digit())
        && let Ok(port) = port.parse()
    {
        return Ok(port);
    }
    Err(CurlError::MalformedUrl(
        "Port number was not a decimal number between 0 and 65535",
    ))
}

/// Percent-encodes the bytes a request target may not carry as they are.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b > 0x20 && b < 0x7f && !b"\"<>\\^`{|}".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes; invalid escapes stay as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Removes `.` and `..` segments from an absolute path (RFC 3986, section 5.2.4).
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests;
