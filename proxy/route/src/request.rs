//! What routing looks at in a request, borrowed from wherever the proxy keeps it.

use std::borrow::Cow;

use http::HeaderMap;

/// The parts of a request that routing decisions read.
///
/// Everything is borrowed: the proxy builds one from its `http::Request` parts
/// without copying. `path_and_query` is the request target as the connection
/// manager delivers it (normalisation such as merging slashes happens before
/// routing, as in Envoy's HTTP connection manager, and is not this crate's job).
#[derive(Clone, Copy, Debug)]
pub struct RequestHead<'a> {
    /// `:authority` (HTTP/2) or `Host` (HTTP/1.1), port included if the client sent it.
    pub authority: &'a str,
    /// `:path`: path plus optional `?query` (and, rarely, `#fragment`).
    pub path_and_query: &'a str,
    /// `:method`, e.g. `GET`.
    pub method: &'a str,
    /// `:scheme`, `http` or `https` (for a sidecar: what the client used, normally
    /// `http`; `x-forwarded-proto` when the connection manager trusts it).
    pub scheme: &'a str,
    /// All other headers. `http::HeaderMap` names are lower-case and may repeat.
    pub headers: &'a HeaderMap,
}

// === impl RequestHead ===

impl<'a> RequestHead<'a> {
    /// The path without query string or fragment: what Envoy's path matchers see
    /// (`Http::PathUtil::removeQueryAndFragment`).
    pub fn path(&self) -> &'a str {
        let end = self
            .path_and_query
            .find(['?', '#'])
            .unwrap_or(self.path_and_query.len());
        &self.path_and_query[..end]
    }

    /// The query string, without `?` and without any fragment; `""` if none.
    pub fn query(&self) -> &'a str {
        let before_fragment = self.path_and_query.split('#').next().unwrap_or_default();
        before_fragment
            .split_once('?')
            .map_or("", |(_, query)| query)
    }

    /// Everything from `?` on (query and fragment), kept when a path is rewritten.
    pub(crate) fn query_suffix(&self) -> &'a str {
        &self.path_and_query[self.path().len()..]
    }

    /// The first value of query parameter `name`, decoded; `Some("")` for a bare
    /// `?name`. Envoy's query matchers use the first occurrence
    /// (`QueryParamsMulti::getFirstValue` after `parseAndDecodeQueryString`).
    pub fn query_param(&self, name: &str) -> Option<Cow<'a, str>> {
        self.query()
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .find(|(key, _)| percent_decode(key) == name)
            .map(|(_, value)| percent_decode(value))
    }

    /// The value of header `name` as Envoy's header matchers see it: pseudo-headers
    /// (`:authority`, `:method`, `:path`, `:scheme`) from the request line, `host` as
    /// `:authority`, and repeated headers joined with `,`
    /// (`HeaderUtility::getAllOfHeaderAsString`). `None` if absent.
    pub fn header(&self, name: &str) -> Option<Cow<'a, str>> {
        let pseudo = [
            (":authority", self.authority),
            ("host", self.authority),
            (":method", self.method),
            (":path", self.path_and_query),
            (":scheme", self.scheme),
        ];
        match pseudo
            .iter()
            .find(|(pseudo, _)| pseudo.eq_ignore_ascii_case(name))
        {
            Some((_, value)) => Some(Cow::Borrowed(value)),
            None => joined_header(self.headers, name),
        }
    }
}

/// All values of `name` in `headers`, joined with `,`; `None` if absent. Values
/// that are not UTF-8 are read lossily.
pub(crate) fn joined_header<'h>(headers: &'h HeaderMap, name: &str) -> Option<Cow<'h, str>> {
    let mut values = headers.get_all(name).iter();
    let first = String::from_utf8_lossy(values.next()?.as_bytes());
    let mut joined: Option<String> = None;
    for value in values {
        let joined = joined.get_or_insert_with(|| first.to_string());
        joined.push(',');
        joined.push_str(&String::from_utf8_lossy(value.as_bytes()));
    }
    Some(joined.map_or(first, Cow::Owned))
}

/// `%XX` decoding (RFC 3986). Malformed escapes stay as written; `+` stays `+`,
/// as in Envoy's `PercentEncoding::decode`. Invalid UTF-8 is replaced.
pub(crate) fn percent_decode(text: &str) -> Cow<'_, str> {
    if !text.contains('%') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match decoded {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests;
