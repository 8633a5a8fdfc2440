//! `meshlab curl`: a curl-compatible HTTP client for every meshlab container.
//!
//! The Istio tasks drive traffic with curl and read its output literally: the status
//! line of `curl -sSI` (`HTTP/2 200`), the `-w '%{http_code}'` report (`000` when no
//! response came), the `curl: (56) Recv failure: Connection reset by peer` message
//! and the exit code a failed `kubectl exec` shows. meshlab images hold nothing but
//! the meshlab binary, so this module re-creates that surface of curl 8: the options
//! the tasks use (module `args`), curl's request headers, its output rules, its error
//! messages and exit codes (module `error`). It is not a port of curl; it is written
//! on hyper and rustls, like the rest of meshlab.
//!
//! Known differences from curl: no progress meter, no URL globbing, no connection
//! reuse across URLs or redirects, `--http2` on `http://` speaks HTTP/1.1 (no h2c
//! upgrade), and HTTP/1 response header names are printed lowercase (as received from
//! Envoy, which is what the tasks show).

mod args;
mod connect;
mod cookies;
mod error;
mod info;
mod stream;
mod transfer;
mod url;
mod write_out;
mod x509;

use std::ffi::OsString;
use std::fmt::Display;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use args::{ArgError, Command, Options, WriteOut};
use error::CurlError;
use info::TransferInfo;
use transfer::Session;
use write_out::{Stream, Template};

/// The version we answer to, and send in `User-Agent`.
const VERSION: &str = "8.16.0";

/// The default `User-Agent`; scripts that match on `curl/` keep working.
const USER_AGENT: &str = "curl/8.16.0 (meshlab)";

/// Runs curl with the arguments after the program name, on the process's stdout and
/// stderr, and returns the exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("curl: (2) failed to start the async runtime: {e}");
            return 2;
        }
    };
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    runtime.block_on(run(args, &mut stdout, &mut stderr))
}

/// Runs curl in the current tokio runtime, writing to the given streams, and returns
/// the exit code curl would. Tests call this to capture output without a process.
pub async fn run(
    args: Vec<OsString>,
    stdout: &mut (dyn Write + Send),
    stderr: &mut (dyn Write + Send),
) -> i32 {
    let opts = match args::parse(args) {
        Ok(Command::Transfer(opts)) => opts,
        Ok(Command::Help) => return write_status(stdout, &help()),
        Ok(Command::Version) => return write_status(stdout, &version()),
        Err(e) => return usage_error(stderr, &e),
    };
    let mut console = Console {
        stdout,
        stderr,
        verbose: opts.verbose,
        warnings: !opts.silent,
    };
    let code = run_transfers(&opts, &mut console).await;
    console.stdout.flush().ok();
    code
}

/// Fetches every URL; the last one's result is the exit code, as in curl.
async fn run_transfers(opts: &Options, console: &mut Console<'_>) -> i32 {
    let template = write_out_template(opts, console);
    let mut session = match Session::new(opts, console) {
        Ok(session) => session,
        Err(e) => return report(opts, console, &e),
    };
    let mut code = 0;
    for (index, url) in opts.urls.iter().enumerate() {
        let output_file = opts.outputs.get(index).filter(|p| p.as_os_str() != "-");
        let mut output = Output::new(output_file, opts.dump_header.as_deref());
        let mut info = TransferInfo {
            url: url.clone(),
            url_index: index,
            output_file: output_file.cloned(),
            ..TransferInfo::default()
        };
        let start = tokio::time::Instant::now();
        let result = session.transfer(url, &mut output, console, &mut info).await;
        info.times.total = start.elapsed();
        code = match &result {
            Ok(()) => 0,
            Err(e) => {
                info.error_message = e.to_string();
                report(opts, console, e)
            }
        };
        info.exit_code = code;
        if let Some(template) = &template {
            for (stream, text) in template.render(&info) {
                let target: &mut dyn Write = match stream {
                    Stream::Stdout => console.stdout,
                    Stream::Stderr => console.stderr,
                };
                target.write_all(text.as_bytes()).ok();
            }
        }
        console.stdout.flush().ok();
    }
    if let (Some(path), Some(jar)) = (&opts.cookie_jar, session.jar()) {
        let text = jar.to_netscape(cookies::unix_now());
        let saved = if path.as_os_str() == "-" {
            console.stdout.write_all(text.as_bytes())
        } else {
            std::fs::write(path, text)
        };
        if saved.is_err() {
            console.warn(format_args!("Failed to save cookies in {}", path.display()));
        }
    }
    code
}

/// Prints `curl: (N) message` unless silenced, and returns N.
fn report(opts: &Options, console: &mut Console<'_>, error: &CurlError) -> i32 {
    if opts.show_errors() {
        writeln!(console.stderr, "curl: ({}) {error}", error.exit_code()).ok();
    }
    error.exit_code()
}

/// Reads and parses `-w`, warning about variables curl would not know.
fn write_out_template(opts: &Options, console: &mut Console<'_>) -> Option<Template> {
    let format = match opts.write_out.as_ref()? {
        WriteOut::Format(format) => format.clone(),
        WriteOut::File(path) => {
            let mut text = String::new();
            let read = if path == "-" {
                std::io::stdin().read_to_string(&mut text).map(|_| ())
            } else {
                std::fs::read_to_string(path).map(|t| text = t)
            };
            if read.is_err() {
                console.warn(format_args!("Failed to read {path}"));
            }
            text
        }
    };
    let (template, unknown) = Template::parse(&format);
    for name in unknown {
        console.warn(format_args!("unknown --write-out variable: '{name}'"));
    }
    Some(template)
}

/// Prints a command-line error the way curl does; exit code 2.
fn usage_error(stderr: &mut (dyn Write + Send), error: &ArgError) -> i32 {
    writeln!(stderr, "curl: {error}").ok();
    writeln!(stderr, "curl: try 'curl --help' for more information").ok();
    2
}

fn write_status(stdout: &mut (dyn Write + Send), text: &str) -> i32 {
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => 0,
        Err(_) => 23,
    }
}

fn version() -> String {
    format!(
        "curl {VERSION} (meshlab) hyper/1 rustls/0.23\n\
         Protocols: http https\n\
         Features: HTTP2 IPv6 SSL\n"
    )
}

fn help() -> String {
    let lines = [
        "Usage: curl [options...] <url>",
        " -b, --cookie <data|filename>   Send cookies from string or jar file",
        " -c, --cookie-jar <filename>    Write cookies to <filename> after operation",
        "     --cacert <file>            CA certificates to verify the peer against",
        " -E, --cert <file>              Client certificate (PEM)",
        "     --connect-timeout <secs>   Maximum time allowed to connect",
        " -d, --data <data>              HTTP POST data (also --data-raw, --data-binary)",
        " -D, --dump-header <filename>   Write the received headers to <filename>",
        " -e, --referer <URL>            Referrer URL",
        " -f, --fail                     Fail fast with no output on HTTP errors",
        "     --fail-with-body           Fail on HTTP errors but save the body",
        " -H, --header <header/@file>    Pass custom header(s) to server",
        " -I, --head                     Show document info only",
        "     --http1.0, --http1.1       Use HTTP/1.0 or HTTP/1.1",
        "     --http2                    Use HTTP/2 over TLS when the server agrees",
        "     --http2-prior-knowledge    Use HTTP/2 without negotiation",
        " -i, --include                  Include response headers in output",
        " -k, --insecure                 Allow insecure server connections",
        "     --key <file>               Private key for --cert (PEM)",
        " -L, --location                 Follow redirects",
        "     --max-redirs <num>         Maximum number of redirects allowed (default 50)",
        " -m, --max-time <secs>          Maximum time allowed for the transfer",
        " -o, --output <file>            Write to file instead of stdout",
        "     --resolve <host:port:addr> Resolve the host+port to this address",
        " -X, --request <method>         Specify request method to use",
        " -S, --show-error               Show error even when -s is used",
        " -s, --silent                   Silent mode",
        " -u, --user <user:password>     Server user and password",
        " -A, --user-agent <name>        Send User-Agent <name> to server",
        " -v, --verbose                  Make the operation more talkative",
        " -V, --version                  Show version number and quit",
        " -w, --write-out <format>       Use output FORMAT after completion",
        " -4, --ipv4 / -6, --ipv6        Resolve names to IPv4 / IPv6 addresses only",
    ];
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// The process's streams, and what the options let curl say on stderr.
pub(crate) struct Console<'a> {
    stdout: &'a mut (dyn Write + Send),
    stderr: &'a mut (dyn Write + Send),
    /// `-v`: `*`, `>` and `<` lines on stderr.
    verbose: bool,
    /// Warnings on stderr; off with `-s`.
    warnings: bool,
}

impl std::fmt::Debug for Console<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("verbose", &self.verbose)
            .field("warnings", &self.warnings)
            .finish_non_exhaustive()
    }
}

impl Console<'_> {
    /// A `* ` line of the verbose trace.
    fn info(&mut self, message: impl Display) {
        if self.verbose {
            writeln!(self.stderr, "* {message}").ok();
        }
    }

    /// A request (`> `) or response (`< `) head in the verbose trace, line by line.
    fn trace(&mut self, prefix: &str, head: &[u8]) {
        if self.verbose {
            for line in head.split_inclusive(|b| *b == b'\n') {
                self.stderr.write_all(prefix.as_bytes()).ok();
                self.stderr.write_all(line).ok();
            }
        }
    }

    /// A `Warning: ` line, unless `-s`.
    fn warn(&mut self, message: impl Display) {
        if self.warnings {
            writeln!(self.stderr, "Warning: {message}").ok();
        }
    }
}

/// Where one URL's response goes: the body to stdout or `-o`, headers also to `-D`.
#[derive(Debug)]
pub(crate) struct Output {
    body: Target,
    dump: Option<Target>,
}

/// stdout, or a file opened on first write (so a failed transfer creates no file).
#[derive(Debug)]
enum Target {
    Stdout,
    File { path: PathBuf, file: Option<File> },
}

impl Output {
    fn new(body: Option<&PathBuf>, dump: Option<&Path>) -> Self {
        let target = |path: Option<&Path>| match path {
            Some(path) if path.as_os_str() != "-" => Target::File {
                path: path.to_path_buf(),
                file: None,
            },
            _ => Target::Stdout,
        };
        Self {
            body: target(body.map(PathBuf::as_path)),
            dump: dump.map(|d| target(Some(d))),
        }
    }

    /// Writes body bytes (and, with `-i`/`-I`, header bytes).
    fn body(&mut self, console: &mut Console<'_>, data: &[u8]) -> Result<(), CurlError> {
        self.body.write(console, data)
    }

    /// Writes a response head to the `-D` target, if any.
    fn headers(&mut self, console: &mut Console<'_>, data: &[u8]) -> Result<(), CurlError> {
        match &mut self.dump {
            Some(target) => target.write(console, data),
            None => Ok(()),
        }
    }

    /// Makes sure the `-o` file exists even when the body is empty.
    fn create(&mut self, console: &mut Console<'_>) -> Result<(), CurlError> {
        self.body.write(console, &[])
    }
}

impl Target {
    fn write(&mut self, console: &mut Console<'_>, data: &[u8]) -> Result<(), CurlError> {
        match self {
            Self::Stdout => console
                .stdout
                .write_all(data)
                .and_then(|()| console.stdout.flush())
                .map_err(|_| CurlError::Write),
            Self::File { path, file } => {
                let file = match file {
                    Some(file) => file,
                    None => match File::create(&*path) {
                        Ok(created) => file.insert(created),
                        Err(e) => {
                            console.warn(format_args!(
                                "Failed to open the file {}: {e}",
                                path.display()
                            ));
                            return Err(CurlError::Write);
                        }
                    },
                };
                file.write_all(data).map_err(|_| CurlError::Write)
            }
        }
    }
}
