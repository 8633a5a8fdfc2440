//! `-w` / `--write-out`: curl's report format, `%{http_code}` and friends.
//!
//! The format is parsed once into parts and rendered after each transfer, failed
//! ones included: `-w '%{http_code}'` prints `000` when no response came, which is
//! how the Istio tasks show that a request was blocked. Values are formatted as
//! curl does: status codes on three digits, times in seconds with six decimals.

use std::time::Duration;

use http::Version;
use serde_json::{Map, Value as Json};

use super::info::TransferInfo;

/// A parsed `-w` format.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

/// Where a piece of the report goes; `%{stdout}` and `%{stderr}` switch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Standard output (the default).
    Stdout,
    /// Standard error.
    Stderr,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Var(Var),
    /// `%header{name}`.
    Header(String),
    /// `%{json}`: every variable as one JSON object.
    Json,
    /// `%{header_json}`: the response headers as JSON.
    HeaderJson,
    /// `%{onerror}`: the rest is only written when the transfer failed.
    OnError,
    Switch(Stream),
}

/// A variable of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    ContentType,
    ErrorMsg,
    ExitCode,
    FilenameEffective,
    HttpCode,
    HttpVersion,
    LocalIp,
    LocalPort,
    Method,
    NumConnects,
    NumHeaders,
    NumRedirects,
    RedirectUrl,
    RemoteIp,
    RemotePort,
    Scheme,
    SizeDownload,
    SizeHeader,
    SizeRequest,
    SizeUpload,
    SpeedDownload,
    TimeAppconnect,
    TimeConnect,
    TimeNamelookup,
    TimePretransfer,
    TimeRedirect,
    TimeStarttransfer,
    TimeTotal,
    Url,
    UrlEffective,
    UrlNum,
}

/// Variable names as curl spells them. `response_code` is curl's alias of `http_code`.
const VARS: &[(&str, Var)] = &[
    ("content_type", Var::ContentType),
    ("errormsg", Var::ErrorMsg),
    ("exitcode", Var::ExitCode),
    ("filename_effective", Var::FilenameEffective),
    ("http_code", Var::HttpCode),
    ("http_version", Var::HttpVersion),
    ("local_ip", Var::LocalIp),
    ("local_port", Var::LocalPort),
    ("method", Var::Method),
    ("num_connects", Var::NumConnects),
    ("num_headers", Var::NumHeaders),
    ("num_redirects", Var::NumRedirects),
    ("redirect_url", Var::RedirectUrl),
    ("remote_ip", Var::RemoteIp),
    ("remote_port", Var::RemotePort),
    ("response_code", Var::HttpCode),
    ("scheme", Var::Scheme),
    ("size_download", Var::SizeDownload),
    ("size_header", Var::SizeHeader),
    ("size_request", Var::SizeRequest),
    ("size_upload", Var::SizeUpload),
    ("speed_download", Var::SpeedDownload),
    ("time_appconnect", Var::TimeAppconnect),
    ("time_connect", Var::TimeConnect),
    ("time_namelookup", Var::TimeNamelookup),
    ("time_pretransfer", Var::TimePretransfer),
    ("time_redirect", Var::TimeRedirect),
    ("time_starttransfer", Var::TimeStarttransfer),
    ("time_total", Var::TimeTotal),
    ("url", Var::Url),
    ("url_effective", Var::UrlEffective),
    ("urlnum", Var::UrlNum),
];

/// A variable's value, kept typed so that `%{json}` can emit numbers.
enum Value {
    Text(String),
    Number(u64),
    /// A status code: three digits in text, a number in JSON.
    Code(u16),
    Seconds(Duration),
}

impl Template {
    /// Parses a format. Unknown variables are dropped and returned by name, so the
    /// caller can warn as curl does.
    pub(crate) fn parse(format: &str) -> (Self, Vec<String>) {
        let mut parts = Vec::new();
        let mut unknown = Vec::new();
        let mut text = String::new();
        let mut rest = format;
        while let Some(c) = rest.chars().next() {
            rest = &rest[c.len_utf8()..];
            match c {
                '%' => {
                    if let Some(after) = rest.strip_prefix('%') {
                        text.push('%');
                        rest = after;
                        continue;
                    }
                    let (part, after) = if let Some(after) = rest.strip_prefix('{') {
                        match after.split_once('}') {
                            Some((name, after)) => (Some(variable(name)), after),
                            None => (None, rest),
                        }
                    } else if let Some(after) = rest.strip_prefix("header{") {
                        match after.split_once('}') {
                            Some((name, after)) => (Some(Ok(Part::Header(name.to_owned()))), after),
                            None => (None, rest),
                        }
                    } else {
                        (None, rest)
                    };
                    rest = after;
                    match part {
                        None => text.push('%'),
                        Some(Err(name)) => unknown.push(name),
                        Some(Ok(part)) => {
                            if !text.is_empty() {
                                parts.push(Part::Text(std::mem::take(&mut text)));
                            }
                            parts.push(part);
                        }
                    }
                }
                '\\' => {
                    let escaped = match rest.chars().next() {
                        Some('n') => Some('\n'),
                        Some('r') => Some('\r'),
                        Some('t') => Some('\t'),
                        _ => None,
                    };
                    match escaped {
                        Some(e) => {
                            text.push(e);
                            rest = &rest[1..];
                        }
                        None => text.push('\\'),
                    }
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        (Self { parts }, unknown)
    }

    /// Renders the report for a transfer, as pieces for stdout or stderr.
    pub(crate) fn render(&self, info: &TransferInfo) -> Vec<(Stream, String)> {
        let mut out: Vec<(Stream, String)> = Vec::new();
        let mut stream = Stream::Stdout;
        let mut emit = |stream: Stream, s: String| match out.last_mut() {
            Some((last, text)) if *last == stream => text.push_str(&s),
            _ => out.push((stream, s)),
        };
        for part in &self.parts {
            match part {
                Part::Text(t) => emit(stream, t.clone()),
                Part::Var(var) => emit(stream, value(*var, info).to_string()),
                Part::Header(name) => emit(stream, header_values(info, name).join(", ")),
                Part::Json => emit(stream, json(info).to_string()),
                Part::HeaderJson => emit(stream, header_json(info).to_string()),
                Part::OnError if info.exit_code == 0 => break,
                Part::OnError => {}
                Part::Switch(s) => stream = *s,
            }
        }
        out
    }
}

/// The part for `%{name}`, or the name back when curl does not know it.
fn variable(name: &str) -> Result<Part, String> {
    match name {
        "json" => Ok(Part::Json),
        "header_json" => Ok(Part::HeaderJson),
        "onerror" => Ok(Part::OnError),
        "stdout" => Ok(Part::Switch(Stream::Stdout)),
        "stderr" => Ok(Part::Switch(Stream::Stderr)),
        _ => VARS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| Part::Var(*v))
            .ok_or_else(|| name.to_owned()),
    }
}

fn value(var: Var, info: &TransferInfo) -> Value {
    let text = |s: &str| Value::Text(s.to_owned());
    let times = &info.times;
    match var {
        Var::ContentType => text(&header_values(info, "content-type").join(", ")),
        Var::ErrorMsg => text(&info.error_message),
        Var::ExitCode => Value::Number(u64::try_from(info.exit_code).unwrap_or_default()),
        Var::FilenameEffective => Value::Text(
            info.output_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ),
        Var::HttpCode => Value::Code(info.http_code),
        Var::HttpVersion => text(match info.http_version {
            Some(Version::HTTP_10) => "1.0",
            Some(Version::HTTP_11) => "1.1",
            Some(Version::HTTP_2) => "2",
            Some(Version::HTTP_3) => "3",
            _ => "0",
        }),
        Var::LocalIp => Value::Text(info.local.map(|a| a.ip().to_string()).unwrap_or_default()),
        Var::LocalPort => Value::Number(info.local.map_or(0, |a| u64::from(a.port()))),
        Var::Method => text(&info.method),
        Var::NumConnects => Value::Number(u64::from(info.num_connects)),
        Var::NumHeaders => Value::Number(info.headers.len() as u64),
        Var::NumRedirects => Value::Number(u64::from(info.num_redirects)),
        Var::RedirectUrl => Value::Text(info.redirect_url.clone().unwrap_or_default()),
        Var::RemoteIp => Value::Text(info.remote.map(|a| a.ip().to_string()).unwrap_or_default()),
        Var::RemotePort => Value::Number(info.remote.map_or(0, |a| u64::from(a.port()))),
        Var::Scheme => text(info.scheme),
        Var::SizeDownload => Value::Number(info.size_download),
        Var::SizeHeader => Value::Number(info.size_header),
        Var::SizeRequest => Value::Number(info.size_request),
        Var::SizeUpload => Value::Number(info.size_upload),
        Var::SpeedDownload => {
            let secs = times.total.as_secs_f64();
            let speed = if secs > 0.0 {
                info.size_download as f64 / secs
            } else {
                0.0
            };
            Value::Number(speed as u64)
        }
        Var::TimeAppconnect => Value::Seconds(times.appconnect),
        Var::TimeConnect => Value::Seconds(times.connect),
        Var::TimeNamelookup => Value::Seconds(times.namelookup),
        Var::TimePretransfer => Value::Seconds(times.pretransfer),
        Var::TimeRedirect => Value::Seconds(times.redirect),
        Var::TimeStarttransfer => Value::Seconds(times.starttransfer),
        Var::TimeTotal => Value::Seconds(times.total),
        Var::Url => text(&info.url),
        Var::UrlEffective => text(&info.url_effective),
        Var::UrlNum => Value::Number(info.url_index as u64),
    }
}

/// The values of a response header, in order received.
fn header_values(info: &TransferInfo, name: &str) -> Vec<String> {
    info.headers
        .get_all(name.trim())
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

/// `%{json}`: all variables, numbers as JSON numbers.
fn json(info: &TransferInfo) -> Json {
    let mut map = Map::new();
    for (name, var) in VARS {
        let v = match value(*var, info) {
            Value::Text(s) => Json::from(s),
            Value::Number(n) => Json::from(n),
            Value::Code(c) => Json::from(c),
            Value::Seconds(d) => Json::from(d.as_secs_f64()),
        };
        map.insert((*name).to_owned(), v);
    }
    Json::Object(map)
}

/// `%{header_json}`: each header name with the list of its values.
fn header_json(info: &TransferInfo) -> Json {
    let mut map = Map::new();
    for name in info.headers.keys() {
        let values = header_values(info, name.as_str());
        map.insert(name.as_str().to_owned(), Json::from(values));
    }
    Json::Object(map)
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Text(s) => f.write_str(s),
            Self::Number(n) => write!(f, "{n}"),
            Self::Code(c) => write!(f, "{c:03}"),
            Self::Seconds(d) => write!(f, "{}.{:06}", d.as_secs(), d.subsec_micros()),
        }
    }
}

#[cfg(test)]
mod tests;
