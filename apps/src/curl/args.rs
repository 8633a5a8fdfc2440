//! curl's command line: the options the Istio tasks use, parsed the way curl does.
//!
//! curl's grammar is not clap's: short flags combine (`-sSI`), a short option takes
//! its value from the rest of the word or the next word (`-HHost:x`, `-o /dev/null`),
//! boolean long options can be negated (`--no-silent`), options and URLs mix in any
//! order, and an unknown option is exit code 2. Hence this small hand-written parser.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// What the command line asks for.
#[derive(Debug)]
pub(crate) enum Command {
    /// Fetch the URLs.
    Transfer(Box<Options>),
    /// `--help`.
    Help,
    /// `--version`.
    Version,
}

/// Which HTTP version to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum HttpVersion {
    /// HTTP/1.1 for http://, ALPN `h2` then `http/1.1` for https:// (curl's default).
    #[default]
    Default,
    /// `--http1.0`.
    Http10,
    /// `--http1.1`.
    Http11,
    /// `--http2-prior-knowledge`: HTTP/2 without negotiation, also over plain TCP.
    Http2PriorKnowledge,
}

/// Which address family to connect with (`-4`, `-6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IpVersion {
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
}

/// What `-f` / `--fail-with-body` do with an HTTP error status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Fail {
    /// Treat any status as success (default).
    #[default]
    Never,
    /// `-f`: exit 22 on status >= 400 without writing the body.
    Silently,
    /// `--fail-with-body`: exit 22 on status >= 400 after writing the body.
    WithBody,
}

/// One `-d`-style argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Data {
    /// Literal bytes.
    Text(String),
    /// `@file` (`@-` is stdin); `strip_newlines` for `-d`, not for `--data-binary`.
    File {
        /// The file to read.
        path: String,
        /// Drop CR and LF, as `-d @file` does.
        strip_newlines: bool,
    },
}

/// The parsed options of one curl invocation. Durations are wall-clock limits.
#[derive(Debug)]
pub(crate) struct Options {
    /// URLs in command-line order.
    pub(crate) urls: Vec<String>,
    /// `-s`: no error messages (nor progress meter, which we never show).
    pub(crate) silent: bool,
    /// `-S`: error messages even with `-s`.
    pub(crate) show_error: bool,
    /// `-v`: connection and header trace on stderr.
    pub(crate) verbose: bool,
    /// `-I`: HEAD request, headers to the output.
    pub(crate) head: bool,
    /// `-i`: headers before the body in the output.
    pub(crate) include: bool,
    /// `-o` files, paired with the URLs in order.
    pub(crate) outputs: Vec<PathBuf>,
    /// `-D`: where to dump response headers (`-` is stdout).
    pub(crate) dump_header: Option<PathBuf>,
    /// `-w` format (already read from the file for `@file`).
    pub(crate) write_out: Option<WriteOut>,
    /// `-H` values, as written.
    pub(crate) headers: Vec<String>,
    /// `-d` and friends, joined with `&` when sent.
    pub(crate) data: Vec<Data>,
    /// `-X`.
    pub(crate) method: Option<String>,
    /// `-c`: cookie jar to write when done.
    pub(crate) cookie_jar: Option<PathBuf>,
    /// `-b` values: `NAME=VALUE` literals or jar files.
    pub(crate) cookies: Vec<String>,
    /// `-L`.
    pub(crate) follow: bool,
    /// `--max-redirs`; `None` is unlimited (-1). Default 50.
    pub(crate) max_redirs: Option<u32>,
    /// `-m`: limit for the whole transfer.
    pub(crate) max_time: Option<Duration>,
    /// `--connect-timeout`: limit for resolve, connect and TLS handshake.
    pub(crate) connect_timeout: Option<Duration>,
    /// `--cacert`.
    pub(crate) cacert: Option<PathBuf>,
    /// `-E` / `--cert`: client certificate (PEM).
    pub(crate) cert: Option<PathBuf>,
    /// `--key`: client key (PEM).
    pub(crate) key: Option<PathBuf>,
    /// `-k`.
    pub(crate) insecure: bool,
    /// `--resolve` entries, parsed when the transfer starts.
    pub(crate) resolve: Vec<String>,
    /// `--http1.0`, `--http1.1`, `--http2`, `--http2-prior-knowledge`.
    pub(crate) http_version: HttpVersion,
    /// `-A`; `Some("")` sends no User-Agent.
    pub(crate) user_agent: Option<String>,
    /// `-u user:password`.
    pub(crate) user: Option<String>,
    /// `-e`.
    pub(crate) referer: Option<String>,
    /// `-f`, `--fail-with-body`.
    pub(crate) fail: Fail,
    /// `-4`, `-6`.
    pub(crate) ip_version: Option<IpVersion>,
}

/// A `-w` argument: a format, or `@file` to read one from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WriteOut {
    /// The format itself.
    Format(String),
    /// `@file` (`@-` is stdin).
    File(String),
}

/// A command line curl would refuse (exit code 2).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ArgError {
    /// An option curl does not know, or that meshlab's curl does not implement.
    #[error("option {0}: is unknown")]
    Unknown(String),

    /// An option that needs a value was last on the line.
    #[error("option {0}: requires parameter")]
    MissingValue(String),

    /// A numeric option got something else.
    #[error("option {0}: expected a proper numerical parameter")]
    NotANumber(String),

    /// `-I` together with request data.
    #[error(
        "You can only select one HTTP request method! You asked for both POST (-d, --data) and HEAD (-I, --head)."
    )]
    MethodConflict,

    /// No URL on the command line.
    #[error("no URL specified")]
    NoUrl,
}

/// Whether an option is a switch or takes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Takes {
    Flag,
    Value,
}

/// One option curl knows: its long name, its short letter, and whether it takes a value.
struct Spec {
    long: &'static str,
    short: Option<char>,
    takes: Takes,
}

const fn flag(long: &'static str, short: Option<char>) -> Spec {
    Spec {
        long,
        short,
        takes: Takes::Flag,
    }
}

const fn value(long: &'static str, short: Option<char>) -> Spec {
    Spec {
        long,
        short,
        takes: Takes::Value,
    }
}

/// The options we implement, with curl's names.
const SPECS: &[Spec] = &[
    flag("silent", Some('s')),
    flag("show-error", Some('S')),
    flag("verbose", Some('v')),
    flag("head", Some('I')),
    flag("include", Some('i')),
    flag("location", Some('L')),
    flag("insecure", Some('k')),
    flag("fail", Some('f')),
    flag("fail-with-body", None),
    flag("http1.0", Some('0')),
    flag("http1.1", None),
    flag("http2", None),
    flag("http2-prior-knowledge", None),
    flag("ipv4", Some('4')),
    flag("ipv6", Some('6')),
    flag("globoff", Some('g')),
    flag("progress-meter", None),
    flag("compressed", None),
    flag("help", Some('h')),
    flag("version", Some('V')),
    value("output", Some('o')),
    value("write-out", Some('w')),
    value("header", Some('H')),
    value("data", Some('d')),
    value("data-ascii", None),
    value("data-raw", None),
    value("data-binary", None),
    value("request", Some('X')),
    value("cookie", Some('b')),
    value("cookie-jar", Some('c')),
    value("max-time", Some('m')),
    value("connect-timeout", None),
    value("max-redirs", None),
    value("cacert", None),
    value("cert", Some('E')),
    value("key", None),
    value("resolve", None),
    value("user-agent", Some('A')),
    value("user", Some('u')),
    value("referer", Some('e')),
    value("dump-header", Some('D')),
    value("url", None),
];

/// Parses the arguments after the program name.
pub(crate) fn parse(args: Vec<OsString>) -> Result<Command, ArgError> {
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut opts = Options::new();
    let mut command = None;
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if let Some(name) = arg.strip_prefix("--") {
            let (spec, enabled) = find_long(name).ok_or_else(|| ArgError::Unknown(arg.clone()))?;
            let value = match spec.takes {
                Takes::Flag => None,
                Takes::Value => {
                    let v = args
                        .get(i)
                        .ok_or_else(|| ArgError::MissingValue(arg.clone()))?;
                    i += 1;
                    Some(v.as_str())
                }
            };
            command = command.or(apply(&mut opts, spec, enabled, value)?);
        } else if arg.len() > 1 && arg.starts_with('-') {
            let letters = &arg[1..];
            for (at, letter) in letters.char_indices() {
                let spec = SPECS
                    .iter()
                    .find(|s| s.short == Some(letter))
                    .ok_or_else(|| ArgError::Unknown(format!("-{letter}")))?;
                if spec.takes == Takes::Flag {
                    command = command.or(apply(&mut opts, spec, true, None)?);
                    continue;
                }
                let rest = &letters[at + letter.len_utf8()..];
                let value = if rest.is_empty() {
                    let v = args
                        .get(i)
                        .ok_or_else(|| ArgError::MissingValue(format!("-{letter}")))?;
                    i += 1;
                    v.as_str()
                } else {
                    rest
                };
                command = command.or(apply(&mut opts, spec, true, Some(value))?);
                break;
            }
        } else {
            opts.urls.push(arg.clone());
        }
    }
    if let Some(command) = command {
        return Ok(command);
    }
    if opts.urls.is_empty() {
        return Err(ArgError::NoUrl);
    }
    if opts.head && !opts.data.is_empty() {
        return Err(ArgError::MethodConflict);
    }
    Ok(Command::Transfer(Box::new(opts)))
}

/// Finds a long option; boolean options also match as `no-NAME`, which disables them.
fn find_long(name: &str) -> Option<(&'static Spec, bool)> {
    if let Some(spec) = SPECS.iter().find(|s| s.long == name) {
        return Some((spec, true));
    }
    let negated = name.strip_prefix("no-")?;
    SPECS
        .iter()
        .find(|s| s.long == negated && s.takes == Takes::Flag)
        .map(|spec| (spec, false))
}

/// Applies one option; `--help` and `--version` end parsing with their command.
fn apply(
    opts: &mut Options,
    spec: &Spec,
    on: bool,
    value: Option<&str>,
) -> Result<Option<Command>, ArgError> {
    let text = || value.unwrap_or_default().to_owned();
    let path = || PathBuf::from(value.unwrap_or_default());
    let bad_number = || ArgError::NotANumber(format!("--{}", spec.long));
    match spec.long {
        "silent" => opts.silent = on,
        "show-error" => opts.show_error = on,
        "verbose" => opts.verbose = on,
        "head" => opts.head = on,
        "include" => opts.include = on,
        "location" => opts.follow = on,
        "insecure" => opts.insecure = on,
        "fail" => opts.fail = if on { Fail::Silently } else { Fail::Never },
        "fail-with-body" => opts.fail = if on { Fail::WithBody } else { Fail::Never },
        "http1.0" => opts.http_version = HttpVersion::Http10,
        "http1.1" => opts.http_version = HttpVersion::Http11,
        "http2" => opts.http_version = HttpVersion::Default,
        "http2-prior-knowledge" => opts.http_version = HttpVersion::Http2PriorKnowledge,
        "ipv4" => opts.ip_version = on.then_some(IpVersion::V4),
        "ipv6" => opts.ip_version = on.then_some(IpVersion::V6),
        // We never glob URLs nor draw a progress meter, so these change nothing. Nor
        // does `--compressed`: we send no Accept-Encoding, so bodies come uncompressed
        // and the output is what curl would print after decoding.
        "globoff" | "progress-meter" | "compressed" => {}
        "help" => return Ok(Some(Command::Help)),
        "version" => return Ok(Some(Command::Version)),
        "output" => opts.outputs.push(path()),
        "write-out" => {
            let v = text();
            opts.write_out = Some(match v.strip_prefix('@') {
                Some(file) => WriteOut::File(file.to_owned()),
                None => WriteOut::Format(v),
            });
        }
        "header" => opts.headers.push(text()),
        "data" | "data-ascii" | "data-binary" => {
            let v = text();
            opts.data.push(match v.strip_prefix('@') {
                Some(file) => Data::File {
                    path: file.to_owned(),
                    strip_newlines: spec.long != "data-binary",
                },
                None => Data::Text(v),
            });
        }
        "data-raw" => opts.data.push(Data::Text(text())),
        "request" => opts.method = Some(text()),
        "cookie" => opts.cookies.push(text()),
        "cookie-jar" => opts.cookie_jar = Some(path()),
        "max-time" => opts.max_time = Some(seconds(&text()).ok_or_else(bad_number)?),
        "connect-timeout" => {
            opts.connect_timeout = Some(seconds(&text()).ok_or_else(bad_number)?);
        }
        "max-redirs" => {
            let n: i64 = text()
                .parse()
                .ok()
                .filter(|n| *n >= -1)
                .ok_or_else(bad_number)?;
            opts.max_redirs = u32::try_from(n).ok();
        }
        "cacert" => opts.cacert = Some(path()),
        "cert" => opts.cert = Some(path()),
        "key" => opts.key = Some(path()),
        "resolve" => opts.resolve.push(text()),
        "user-agent" => opts.user_agent = Some(text()),
        "user" => opts.user = Some(text()),
        "referer" => opts.referer = Some(text()),
        "dump-header" => opts.dump_header = Some(path()),
        "url" => opts.urls.push(text()),
        other => return Err(ArgError::Unknown(format!("--{other}"))),
    }
    Ok(None)
}

/// Parses curl's seconds: a non-negative decimal such as `5`, `1.5` or `.25`.
fn seconds(v: &str) -> Option<Duration> {
    let plain = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let secs: f64 = v.parse().ok().filter(|_| plain)?;
    Duration::try_from_secs_f64(secs).ok()
}

// === impl Options ===

impl Options {
    fn new() -> Self {
        Self {
            urls: Vec::new(),
            silent: false,
            show_error: false,
            verbose: false,
            head: false,
            include: false,
            outputs: Vec::new(),
            dump_header: None,
            write_out: None,
            headers: Vec::new(),
            data: Vec::new(),
            method: None,
            cookie_jar: None,
            cookies: Vec::new(),
            follow: false,
            max_redirs: Some(50),
            max_time: None,
            connect_timeout: None,
            cacert: None,
            cert: None,
            key: None,
            insecure: false,
            resolve: Vec::new(),
            http_version: HttpVersion::Default,
            user_agent: None,
            user: None,
            referer: None,
            fail: Fail::Never,
            ip_version: None,
        }
    }

    /// Whether failures are reported on stderr: not with `-s`, unless `-S`.
    pub(crate) fn show_errors(&self) -> bool {
        !self.silent || self.show_error
    }
}

#[cfg(test)]
mod tests;
