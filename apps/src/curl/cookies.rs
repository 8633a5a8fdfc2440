//! curl's cookie engine: `Set-Cookie` in, `Cookie` out, Netscape jar files on disk.
//!
//! Istio tasks use cookies for session affinity and for `-c`/`-b` round trips, so we
//! implement the parts of RFC 6265 that matter there (domain and path matching,
//! `Max-Age`/`Expires`, `Secure`, host-only cookies) and read and write the same
//! tab-separated Netscape format as curl, so jar files are interchangeable with it.

use super::url::{Scheme, Url};

/// The cookies of one curl invocation.
#[derive(Debug, Default)]
pub(crate) struct CookieJar {
    cookies: Vec<Cookie>,
}

/// One stored cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cookie {
    /// Cookie name.
    pub(crate) name: String,
    /// Cookie value, as received.
    pub(crate) value: String,
    /// Lowercase domain, without a leading dot.
    pub(crate) domain: String,
    /// Sent only to exactly `domain` (no `Domain` attribute was given).
    pub(crate) host_only: bool,
    /// Sent only for request paths under this one.
    pub(crate) path: String,
    /// Sent only over https.
    pub(crate) secure: bool,
    /// Marked `HttpOnly` (kept for the jar file; curl sends it like any other).
    pub(crate) http_only: bool,
    /// Expiry in Unix seconds; `None` for a session cookie.
    pub(crate) expires: Option<i64>,
}

/// The first line curl writes, and looks for, in a jar file.
const JAR_HEADER: &str = "# Netscape HTTP Cookie File\n\
    # Written by meshlab curl in curl's format: https://curl.se/docs/http-cookies.html\n\n";

/// The prefix curl gives to `HttpOnly` cookies in a jar file.
const HTTP_ONLY_PREFIX: &str = "#HttpOnly_";

impl CookieJar {
    /// Adds the cookies of a Netscape jar file. Like curl, lines that are not cookies
    /// are skipped without complaint: jar files are often hand-edited.
    pub(crate) fn load_netscape(&mut self, text: &str, now: i64) {
        for line in text.lines() {
            if let Some(cookie) = parse_jar_line(line)
                && cookie.expires.is_none_or(|at| at > now)
            {
                self.insert(cookie);
            }
        }
    }

    /// Stores (or, when already expired, removes) the cookie of a `Set-Cookie` header
    /// received from `url`. Cookies the origin may not set are ignored, as browsers and
    /// curl do.
    pub(crate) fn store(&mut self, set_cookie: &str, url: &Url, now: i64) {
        let Some(cookie) = parse_set_cookie(set_cookie, url, now) else {
            return;
        };
        if cookie.expires.is_some_and(|at| at <= now) {
            self.cookies.retain(|c| !c.same_slot(&cookie));
        } else {
            self.insert(cookie);
        }
    }

    /// The `Cookie` header value for a request to `url`, if any cookie matches.
    pub(crate) fn header(&self, url: &Url, now: i64) -> Option<String> {
        let host = url.host.to_ascii_lowercase();
        let path = url.path.split('?').next().unwrap_or("/");
        let mut matching: Vec<&Cookie> = self
            .cookies
            .iter()
            .filter(|c| c.expires.is_none_or(|at| at > now))
            .filter(|c| !c.secure || url.scheme == Scheme::Https)
            .filter(|c| {
                if c.host_only {
                    host == c.domain
                } else {
                    domain_match(&host, &c.domain)
                }
            })
            .filter(|c| path_match(path, &c.path))
            .collect();
        if matching.is_empty() {
            return None;
        }
        // More specific paths first (RFC 6265, section 5.4); the sort is stable.
        matching.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        let pairs: Vec<String> = matching
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        Some(pairs.join("; "))
    }

    /// The jar in Netscape format, without expired cookies.
    pub(crate) fn to_netscape(&self, now: i64) -> String {
        let mut out = String::from(JAR_HEADER);
        for c in &self.cookies {
            if c.expires.is_some_and(|at| at <= now) {
                continue;
            }
            let prefix = if c.http_only { HTTP_ONLY_PREFIX } else { "" };
            let dot = if c.host_only { "" } else { "." };
            out.push_str(&format!(
                "{prefix}{dot}{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                c.domain,
                upper_bool(!c.host_only),
                c.path,
                upper_bool(c.secure),
                c.expires.unwrap_or(0),
                c.name,
                c.value,
            ));
        }
        out
    }

    /// Adds a cookie, replacing the one with the same name, domain and path.
    fn insert(&mut self, cookie: Cookie) {
        match self.cookies.iter_mut().find(|c| c.same_slot(&cookie)) {
            Some(existing) => *existing = cookie,
            None => self.cookies.push(cookie),
        }
    }
}

impl Cookie {
    /// Whether `other` would replace this cookie (same name, domain and path).
    fn same_slot(&self, other: &Cookie) -> bool {
        self.name == other.name && self.domain == other.domain && self.path == other.path
    }
}

/// Parses one line of a Netscape jar file.
fn parse_jar_line(line: &str) -> Option<Cookie> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (line, http_only) = match line.strip_prefix(HTTP_ONLY_PREFIX) {
        Some(rest) => (rest, true),
        None => (line, false),
    };
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let fields: Vec<&str> = line.split('\t').collect();
    // A cookie with an empty value may lack its last field.
    if fields.len() != 7 && fields.len() != 6 {
        return None;
    }
    let domain = fields[0];
    let tail_match = fields[1].eq_ignore_ascii_case("TRUE");
    let expires: i64 = fields[4].parse().ok()?;
    Some(Cookie {
        name: fields[5].to_owned(),
        value: fields.get(6).copied().unwrap_or_default().to_owned(),
        domain: domain.trim_start_matches('.').to_ascii_lowercase(),
        host_only: !tail_match && !domain.starts_with('.'),
        path: fields[2].to_owned(),
        secure: fields[3].eq_ignore_ascii_case("TRUE"),
        http_only,
        expires: (expires != 0).then_some(expires),
    })
}

/// Parses a `Set-Cookie` value received from `url` (RFC 6265, section 5.2).
fn parse_set_cookie(header: &str, url: &Url, now: i64) -> Option<Cookie> {
    let mut parts = header.split(';');
    let (name, value) = parts.next()?.split_once('=')?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let host = url.host.to_ascii_lowercase();
    let mut cookie = Cookie {
        name: name.to_owned(),
        value: value.trim().to_owned(),
        domain: host.clone(),
        host_only: true,
        path: default_path(url),
        secure: false,
        http_only: false,
        expires: None,
    };
    let mut max_age = None;
    let mut expires = None;
    for attribute in parts {
        let (key, value) = match attribute.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (attribute.trim(), ""),
        };
        match key.to_ascii_lowercase().as_str() {
            "domain" => {
                let domain = value.trim_start_matches('.').to_ascii_lowercase();
                if domain.is_empty() {
                    continue;
                }
                if !domain_match(&host, &domain) {
                    return None;
                }
                cookie.host_only = false;
                cookie.domain = domain;
            }
            "path" if value.starts_with('/') => cookie.path = value.to_owned(),
            "max-age" => max_age = value.parse::<i64>().ok(),
            "expires" => expires = parse_http_date(value),
            "secure" => cookie.secure = true,
            "httponly" => cookie.http_only = true,
            _ => {}
        }
    }
    // Secure cookies only come from secure origins (RFC 6265bis), as in curl.
    if cookie.secure && url.scheme != Scheme::Https {
        return None;
    }
    cookie.expires = match max_age {
        Some(secs) if secs <= 0 => Some(i64::MIN),
        Some(secs) => Some(now.saturating_add(secs)),
        None => expires,
    };
    Some(cookie)
}

/// The directory of the request path, the default cookie path (RFC 6265, 5.1.4).
fn default_path(url: &Url) -> String {
    let path = url.path.split('?').next().unwrap_or("/");
    match path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(i) => path[..i].to_owned(),
    }
}

/// Whether `host` is `domain` or one of its subdomains; IP addresses only match exactly.
fn domain_match(host: &str, domain: &str) -> bool {
    if host == domain {
        return true;
    }
    let is_ip = host.parse::<std::net::IpAddr>().is_ok();
    !is_ip
        && host
            .strip_suffix(domain)
            .is_some_and(|prefix| prefix.ends_with('.'))
}

/// Whether a request path falls under a cookie path (RFC 6265, 5.1.4).
fn path_match(request: &str, cookie: &str) -> bool {
    request == cookie
        || request
            .strip_prefix(cookie)
            .is_some_and(|rest| cookie.ends_with('/') || rest.starts_with('/'))
}

/// Seconds since the Unix epoch, the clock of cookie expiry.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn upper_bool(b: bool) -> &'static str {
    if b { "TRUE" } else { "FALSE" }
}

/// Parses a cookie date (`Wed, 21 Oct 2015 07:28:00 GMT` and its many variants) with
/// the tolerant algorithm of RFC 6265, section 5.1.1. Returns Unix seconds.
fn parse_http_date(s: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let mut time = None;
    let mut day = None;
    let mut month = None;
    let mut year = None;
    let tokens = s
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
        .filter(|t| !t.is_empty());
    for token in tokens {
        let digits = token.bytes().take_while(u8::is_ascii_digit).count();
        if time.is_none()
            && let Some(hms) = parse_hms(token)
        {
            time = Some(hms);
            continue;
        }
        if day.is_none() && (1..=2).contains(&digits) {
            day = token[..digits].parse::<u32>().ok();
            continue;
        }
        if month.is_none() && token.len() >= 3 {
            let prefix = token[..3].to_ascii_lowercase();
            if let Some(m) = MONTHS.iter().position(|m| *m == prefix) {
                month = Some(m as u32 + 1);
                continue;
            }
        }
        if year.is_none() && (2..=4).contains(&digits) {
            year = token[..digits].parse::<i64>().ok();
        }
    }
    let year = match year? {
        y @ 70..=99 => y + 1900,
        y @ 0..=69 => y + 2000,
        y => y,
    };
    let (h, m, s) = time?;
    let (day, month) = (day?, month?);
    if year < 1601 || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + i64::from(h * 3600 + m * 60 + s))
}

/// Parses `hh:mm:ss` (one or two digits each).
fn parse_hms(token: &str) -> Option<(u32, u32, u32)> {
    let mut fields = token.split(':');
    let mut next = || {
        let f = fields.next()?;
        let ok = (1..=2).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| f.parse().ok()).flatten()
    };
    let hms = (next()?, next()?, next()?);
    fields.next().is_none().then_some(hms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    // Count from March so that the leap day ends the year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let m = i64::from(month);
    let day_of_year = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests;
