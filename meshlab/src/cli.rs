//! Parsing the command line and dispatching to the crates that do the work.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use meshlab_apps::App;
use meshlab_control::api::{Analysis, DeleteRequest, GetQuery, ManifestsRequest};
use meshlab_proxy::capture::{self, CaptureConfig, IncludeRanges, Ipv4Cidr};
use tracing_subscriber::EnvFilter;

use crate::resources::Reported;
use crate::{dashboard, lab, labs, resources, workloads};

/// A self-contained service-mesh lab: Istio's YAML and Istio's behaviour, on your
/// laptop, in seconds.
#[derive(Debug, Parser)]
#[command(name = "meshlab", version, propagate_version = true)]
struct Cli {
    /// Which lab: every Docker object carries this name, so labs run side by side.
    #[arg(
        long = "name",
        global = true,
        env = "MESHLAB_NAME",
        default_value = "meshlab"
    )]
    lab: String,
    #[command(subcommand)]
    command: Command,
}

/// `-n NS`, as kubectl takes it.
#[derive(Debug, Args)]
struct NamespaceArg {
    /// The namespace (default: `default`).
    #[arg(short = 'n', long = "namespace")]
    namespace: Option<String>,
}

/// What `meshlab create` makes.
#[derive(Debug, Subcommand)]
enum CreateCommand {
    /// A Secret (`generic` or `tls`).
    Secret {
        #[command(subcommand)]
        secret: SecretCommand,
    },
}

/// `meshlab create secret …`.
#[derive(Debug, Subcommand)]
enum SecretCommand {
    /// An Opaque secret from files and literals:
    /// `--from-file=tls.crt=client.crt --from-file=tls.key=client.key --from-file=ca.crt=ca.crt`.
    Generic {
        /// The secret's name.
        name: String,
        /// `[KEY=]PATH`: a file's contents under KEY (default: the file's name).
        #[arg(long = "from-file")]
        from_file: Vec<String>,
        /// `KEY=VALUE`.
        #[arg(long = "from-literal")]
        from_literal: Vec<String>,
        #[command(flatten)]
        namespace: NamespaceArg,
    },
    /// A `kubernetes.io/tls` secret from a certificate and its key (PEM).
    Tls {
        /// The secret's name.
        name: String,
        /// The certificate chain (PEM).
        #[arg(long)]
        cert: PathBuf,
        /// Its private key (PEM).
        #[arg(long)]
        key: PathBuf,
        #[command(flatten)]
        namespace: NamespaceArg,
    },
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the lab on the local Docker engine: control plane, Bookinfo, sleep and
    /// the simulated internet. Running it again changes nothing.
    Up {
        /// Host port of the ingress gateway (on 127.0.0.1).
        #[arg(long, default_value_t = 8080)]
        http_port: u16,
        /// Host port of the ingress gateway's HTTPS servers (its port 443, on
        /// 127.0.0.1).
        #[arg(long, default_value_t = 8443)]
        https_port: u16,
        /// Host port of the dashboard and API (on 127.0.0.1).
        #[arg(long, default_value_t = 20001)]
        dashboard_port: u16,
        /// Do not deploy Bookinfo.
        #[arg(long)]
        no_bookinfo: bool,
        /// Your own CA certificate (PEM) to sign workload identities with, instead
        /// of the lab's generated root (Istio's "plug-in CA"); needs --ca-key.
        #[arg(long, requires = "ca_key")]
        ca_cert: Option<PathBuf>,
        /// The private key of --ca-cert (PKCS#8 PEM: ECDSA, Ed25519 or RSA).
        #[arg(long, requires = "ca_cert")]
        ca_key: Option<PathBuf>,
        /// Lifetime of workload certificates (Go duration: `24h`, `5m`; at least
        /// `1m`). Proxies renew at half of it: short values show rotation.
        #[arg(long, default_value = "24h")]
        workload_cert_ttl: String,
    },
    /// Remove the lab's containers and network; its state is kept unless --purge.
    Down {
        /// Also remove the lab's state volume (applied resources, CA).
        #[arg(long)]
        purge: bool,
    },
    /// Show the lab at a glance.
    Status,
    /// Apply manifests (Kubernetes and Istio kinds), all or nothing.
    Apply {
        /// A file, a directory, or - for standard input; repeatable.
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        namespace: NamespaceArg,
    },
    /// Create a resource from the command line, as kubectl does: `create secret
    /// tls NAME --cert=FILE --key=FILE` for a Gateway's `credentialName`.
    Create {
        #[command(subcommand)]
        what: CreateCommand,
        #[command(flatten)]
        namespace: NamespaceArg,
    },
    /// List or show resources: pods, deploy, svc, vs, dr, gw, se, pa, ap, …
    Get {
        /// The kind (kubectl's names and short names).
        kind: String,
        /// One object.
        name: Option<String>,
        #[command(flatten)]
        namespace: NamespaceArg,
        /// In every namespace.
        #[arg(short = 'A', long = "all-namespaces")]
        all_namespaces: bool,
        /// yaml or json.
        #[arg(short = 'o', long = "output")]
        output: Option<String>,
    },
    /// Delete the resources of manifests, or one resource by kind and name.
    Delete {
        /// The kind, when deleting by name.
        kind: Option<String>,
        /// The name, when deleting by name.
        name: Option<String>,
        /// Manifests whose resources to delete.
        #[arg(short = 'f', long = "filename", conflicts_with_all = ["kind", "name"])]
        files: Vec<PathBuf>,
        #[command(flatten)]
        namespace: NamespaceArg,
    },
    /// Run a command in a pod's container: `meshlab exec deploy/sleep -- curl -s http://productpage:9080/`.
    Exec {
        /// `deploy/NAME`, `pod/NAME` or a pod's name.
        target: String,
        #[command(flatten)]
        namespace: NamespaceArg,
        /// The container (default: the app, not its sidecar).
        #[arg(short = 'c', long = "container")]
        container: Option<String>,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Report what Istio accepts but `istioctl analyze` flags: routes to unknown hosts,
    /// subsets or gateways, conflicting VirtualServices, … Exits 79 on an error.
    Analyze {
        /// Files (or directories, or - for standard input) to analyse together with
        /// what is applied, without applying them, as `istioctl analyze FILE…`.
        files: Vec<PathBuf>,
        #[command(flatten)]
        namespace: NamespaceArg,
        /// In every namespace.
        #[arg(short = 'A', long = "all-namespaces")]
        all_namespaces: bool,
    },
    /// Show each proxy's sync state per type (SYNCED, STALE, NOT SENT), as istioctl does.
    ProxyStatus,
    /// Show a proxy's configuration: listeners, routes, clusters, endpoints or all.
    ProxyConfig {
        /// `listeners`, `routes`, `clusters`, `endpoints`, `secret` (the workload
        /// certificate, the mesh root and the `credentialName` certificates it is
        /// sent: validity, serial, SPIFFE ID with `-o json`),
        /// `all` (with `-o json`), or `iptables` (the traffic capture rules of the pod).
        kind: String,
        /// The pod (`NAME`, `NAME.NAMESPACE` or `deploy/NAME`).
        pod: String,
        #[command(flatten)]
        namespace: NamespaceArg,
        /// json for the configuration itself.
        #[arg(short = 'o', long = "output")]
        output: Option<String>,
    },
    /// Show or change the mesh configuration, e.g.
    /// `meshlab mesh-config set outboundTrafficPolicy.mode=REGISTRY_ONLY`.
    MeshConfig {
        #[command(subcommand)]
        action: Option<MeshConfigAction>,
    },
    /// Print a container's logs: a pod, deploy/NAME, or the lab's `control` and `internet`.
    Logs {
        /// `deploy/NAME`, `pod/NAME`, a pod's name, `control` or `internet`.
        target: String,
        #[command(flatten)]
        namespace: NamespaceArg,
        /// The container (default: the app, not its sidecar).
        #[arg(short = 'c', long = "container")]
        container: Option<String>,
        /// Keep printing what it writes.
        #[arg(short = 'f', long = "follow")]
        follow: bool,
        /// Only the last N lines.
        #[arg(long)]
        tail: Option<usize>,
    },
    /// Open the dashboard in a browser (or print its address when there is none).
    Dashboard {
        /// Only print the address (it carries the lab's API token: keep it to yourself).
        #[arg(long)]
        no_browser: bool,
    },
    /// The guided labs: list, describe, run (self-checking) and reset.
    Lab {
        #[command(subcommand)]
        action: LabAction,
    },
    /// Send an HTTP request as curl does (the flags Istio's tasks use, curl's exit codes).
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Curl {
        /// curl's arguments, e.g. `-sS -o /dev/null -w '%{http_code}' http://productpage:9080/`.
        #[arg(allow_hyphen_values = true, trailing_var_arg = true, num_args = 0..)]
        args: Vec<OsString>,
    },
    /// Sign a JWT as Istio's sample tool `gen-jwt.py` does (RS256; without KEY, Istio's
    /// sample key, whose public half `jwks.json` publishes).
    #[command(name = "gen-jwt")]
    GenJwt {
        /// The RSA private key (PEM); default: Istio's `samples/key.pem`.
        key: Option<OsString>,
        /// The `iss` claim.
        #[arg(long, default_value = meshlab_apps::gen_jwt::SAMPLE_ISSUER)]
        iss: String,
        /// The `aud` claim; comma-separated for several.
        #[arg(long)]
        aud: Option<String>,
        /// The `sub` claim (default: the issuer).
        #[arg(long)]
        sub: Option<String>,
        /// Other string claims: `name1:value1,name2:value2`.
        #[arg(long)]
        claims: Option<String>,
        /// Write the public key set (JWKS) to this file.
        #[arg(long)]
        jwks: Option<PathBuf>,
        /// Seconds until `exp` (negative: already expired).
        #[arg(long, default_value_t = 3600, allow_negative_numbers = true)]
        expire: i64,
        /// A list claim, `name=value1,value2` (repeatable; `gen-jwt.py` takes
        /// `-listclaim name value1 value2`).
        #[arg(long, value_name = "NAME=VALUES")]
        listclaim: Vec<String>,
    },
    /// Run one of meshlab's roles in the foreground (used inside the lab's containers).
    Run {
        #[command(subcommand)]
        role: Role,
    },
}

#[derive(Debug, Subcommand)]
enum LabAction {
    /// List the labs.
    List,
    /// Show a lab: what you will learn, each step's prose, manifests, commands and checks.
    Describe {
        /// The lab's name (see `meshlab lab list`).
        name: String,
    },
    /// Run a lab's steps and checks; exits 1 if a check fails. The environment is
    /// restored afterwards, so labs run in any order.
    Run {
        /// The lab's name.
        name: String,
        /// Only this step (the ones before it are applied without checks).
        #[arg(long)]
        step: Option<usize>,
        /// Pause before each step; keep its changes until the lab ends.
        #[arg(long, short = 'i')]
        interactive: bool,
        /// Print one machine-readable result (JSON) instead of the live report.
        #[arg(long)]
        json: bool,
        /// Also write a JUnit XML report to FILE.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
    /// Put back what an interrupted or interactive run left: the environment it
    /// found, or else without the lab's objects.
    Reset {
        /// The lab's name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum MeshConfigAction {
    /// Set `KEY=VALUE` as `istioctl install --set meshConfig.KEY=VALUE` would.
    Set {
        /// E.g. `outboundTrafficPolicy.mode=REGISTRY_ONLY`.
        setting: String,
    },
}

#[derive(Debug, Subcommand)]
enum Role {
    /// Run a built-in app: productpage, details, reviews, ratings, httpbin or sleep.
    ///
    /// Apps read the environment variables of Istio's sample images, e.g.
    /// `DETAILS_HOSTNAME`, `REVIEWS_SERVICE_PORT`, `ENABLE_RATINGS`, `STAR_COLOR`,
    /// `SERVICE_VERSION`.
    App {
        /// Which app.
        #[arg(value_parser = parse_app)]
        app: App,
        /// The port to listen on (default: 9080 for Bookinfo, 8080 for httpbin).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Hold a pod's network namespace and do nothing else, until stopped.
    Pause {
        /// Forward a Service port to the app's target port, `PORT:TARGET_PORT`
        /// (for pods without a sidecar; see `pause.rs`).
        #[arg(long = "forward")]
        forwards: Vec<crate::pause::Forward>,
    },
    /// Install a pod's traffic capture, print the rules and exit (Istio's
    /// `istio-init`; needs the NET_ADMIN capability).
    Init(InitArgs),
    /// Run the control plane (inside the lab's control container).
    Control,
    /// Run a proxy: the sidecar beside an app (its traffic captured), or a gateway.
    ///
    /// The proxy names itself with `POD_NAME`, `POD_NAMESPACE`, `POD_LABELS` (JSON)
    /// and `SERVICE_ACCOUNT`, and streams its configuration from
    /// `MESHLAB_DISCOVERY_ADDRESS`.
    Proxy {
        /// Run as a gateway (Istio's `router`): no capture, no DNS proxy.
        #[arg(long)]
        router: bool,
    },
    /// Send a lab check's request set from this container (JSON in, JSON out).
    #[command(hide = true)]
    Probe {
        /// The request set, as JSON.
        #[arg(long)]
        spec: String,
    },
    /// Serve the simulated internet's hosts over HTTP (80) and HTTPS (443).
    Internet {
        /// The certificate chain (PEM) covering every simulated host.
        #[arg(long)]
        cert: PathBuf,
        /// Its private key (PEM).
        #[arg(long)]
        key: PathBuf,
    },
    /// Run all of Bookinfo in this process, without a mesh, with productpage on
    /// `http://localhost:PORT/productpage` (a quick look before `meshlab up`).
    Bookinfo {
        /// productpage's port on 127.0.0.1.
        #[arg(long, default_value_t = 9080)]
        port: u16,
        /// Which reviews version productpage calls: v1 (no stars), v2 (black) or v3 (red).
        #[arg(long, default_value = "v3", value_parser = ["v1", "v2", "v3"])]
        reviews: String,
    },
}

/// `meshlab run init`: Istio's capture settings, named after the pod annotations
/// that set them (`traffic.sidecar.istio.io/…`).
#[derive(Debug, Args)]
struct InitArgs {
    /// The sidecar's uid: its traffic is never captured.
    #[arg(long, default_value_t = CaptureConfig::default().proxy_uid)]
    proxy_uid: u32,
    /// The sidecar's gid: its traffic is never captured.
    #[arg(long, default_value_t = CaptureConfig::default().proxy_gid)]
    proxy_gid: u32,
    /// The sidecar's inbound listener.
    #[arg(long, default_value_t = CaptureConfig::default().inbound_port)]
    inbound_port: u16,
    /// The sidecar's outbound listener.
    #[arg(long, default_value_t = CaptureConfig::default().outbound_port)]
    outbound_port: u16,
    /// The sidecar's DNS proxy.
    #[arg(long, default_value_t = CaptureConfig::default().dns_port)]
    dns_port: u16,
    /// Inbound ports not to capture, comma-separated (`excludeInboundPorts`).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u16).range(1..))]
    exclude_inbound_ports: Vec<u16>,
    /// Outbound ports not to capture, comma-separated (`excludeOutboundPorts`).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u16).range(1..))]
    exclude_outbound_ports: Vec<u16>,
    /// Destinations not to capture, e.g. 10.0.0.0/8 (`excludeOutboundIPRanges`).
    #[arg(long, value_delimiter = ',')]
    exclude_outbound_ip_ranges: Vec<Ipv4Cidr>,
    /// Destinations to capture, `*` for all (`includeOutboundIPRanges`).
    #[arg(long, default_value = "*")]
    include_outbound_ip_ranges: IncludeRanges,
    /// Whether DNS (port 53) goes to the DNS proxy.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    capture_dns: bool,
    /// The name servers whose queries are captured (the pod's resolv.conf).
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.11")]
    dns_servers: Vec<std::net::Ipv4Addr>,
}

impl From<InitArgs> for CaptureConfig {
    fn from(args: InitArgs) -> Self {
        Self {
            proxy_uid: args.proxy_uid,
            proxy_gid: args.proxy_gid,
            inbound_port: args.inbound_port,
            outbound_port: args.outbound_port,
            dns_port: args.dns_port,
            exclude_inbound_ports: args.exclude_inbound_ports,
            exclude_outbound_ports: args.exclude_outbound_ports,
            exclude_outbound_ranges: args.exclude_outbound_ip_ranges,
            include_outbound_ranges: args.include_outbound_ip_ranges,
            capture_dns: args.capture_dns,
            dns_servers: args.dns_servers,
        }
    }
}

fn parse_app(s: &str) -> Result<App, String> {
    s.parse().map_err(|e| {
        let names: Vec<_> = App::ALL.iter().map(|a| a.name()).collect();
        format!("{e} (expected one of: {})", names.join(", "))
    })
}

/// Runs the CLI with `args` (program name first) and returns the process exit code.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let cli = Cli::parse_from(args);
    let lab = cli.lab;
    match cli.command {
        Command::Curl { args } => {
            ExitCode::from(u8::try_from(meshlab_apps::curl::main(args)).unwrap_or(1))
        }
        Command::Run { role } => report(run_role(role)),
        Command::GenJwt {
            key,
            iss,
            aud,
            sub,
            claims,
            jwks,
            expire,
            listclaim,
        } => report(gen_jwt(
            key.as_ref(),
            jwks.as_deref(),
            &meshlab_apps::gen_jwt::Request {
                issuer: iss,
                subject: sub,
                audience: aud,
                claims,
                list_claims: listclaim,
                expire,
            },
        )),
        command => report(cli_runtime().and_then(|rt| rt.block_on(run_command(&lab, command)))),
    }
}

/// The exit code for a command's result: its own code, 1 for an error (printed
/// unless it was printed already).
fn report(result: anyhow::Result<u8>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        // A reader that went away (`meshlab logs … | head`) is not a failure.
        Err(err) if closed_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            if err.downcast_ref::<Reported>().is_none() {
                eprintln!("error: {err:#}");
            }
            ExitCode::FAILURE
        }
    }
}

fn closed_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// A small runtime for the CLI's own commands; logs only warnings unless asked.
fn cli_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    init_tracing("warn");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

async fn run_command(lab: &str, command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Up {
            http_port,
            https_port,
            dashboard_port,
            no_bookinfo,
            ca_cert,
            ca_key,
            workload_cert_ttl,
        } => {
            meshlab_control::resource::duration::Duration::parse(&workload_cert_ttl)
                .with_context(|| format!("--workload-cert-ttl {workload_cert_ttl:?}"))?;
            let plugged_ca = match (ca_cert, ca_key) {
                (Some(cert), Some(key)) => Some(meshlab_control::ca::PluggedCa {
                    cert_pem: std::fs::read_to_string(&cert)
                        .with_context(|| format!("cannot read --ca-cert {}", cert.display()))?,
                    key_pem: std::fs::read_to_string(&key)
                        .with_context(|| format!("cannot read --ca-key {}", key.display()))?,
                }),
                _ => None,
            };
            let options = lab::UpOptions {
                http_port,
                https_port,
                dashboard_port,
                no_bookinfo,
                plugged_ca,
                workload_cert_ttl,
            };
            lab::up(lab, &options).await?;
        }
        Command::Down { purge } => lab::down(lab, purge).await?,
        Command::Status => lab::status(lab).await?,
        Command::Apply { files, namespace } => {
            let client = lab::client(&lab::docker().await?, lab).await?;
            resources::apply(&client, &files, namespace.namespace).await?;
        }
        Command::Create {
            what: CreateCommand::Secret { secret },
            namespace,
        } => {
            let (secret, inner) = match secret {
                SecretCommand::Generic {
                    name,
                    from_file,
                    from_literal,
                    namespace,
                } => (
                    resources::generic_secret(&name, &from_file, &from_literal)?,
                    namespace,
                ),
                SecretCommand::Tls {
                    name,
                    cert,
                    key,
                    namespace,
                } => (resources::tls_secret(&name, &cert, &key)?, namespace),
            };
            let client = lab::client(&lab::docker().await?, lab).await?;
            resources::create_secret(&client, secret, inner.namespace.or(namespace.namespace))
                .await?;
        }
        Command::Get {
            kind,
            name,
            namespace,
            all_namespaces,
            output,
        } => {
            let client = lab::client(&lab::docker().await?, lab).await?;
            let query = GetQuery {
                kind,
                name,
                namespace: namespace.namespace,
                all_namespaces,
                output,
            };
            resources::get(&client, &query).await?;
        }
        Command::Delete {
            kind,
            name,
            files,
            namespace,
        } => {
            let request = match (kind, name, files.is_empty()) {
                (Some(kind), Some(name), true) => {
                    resources::delete_by_name(kind, name, namespace.namespace)
                }
                (None, None, false) => DeleteRequest::Manifests(ManifestsRequest {
                    manifests: resources::read_manifests(&files)?,
                    namespace: namespace.namespace,
                }),
                _ => anyhow::bail!(
                    "delete needs -f FILE, or a KIND and a NAME (e.g. `meshlab delete vs reviews`)"
                ),
            };
            let client = lab::client(&lab::docker().await?, lab).await?;
            resources::delete(&client, &request).await?;
        }
        Command::Exec {
            target,
            namespace,
            container,
            command,
        } => {
            let docker = lab::docker().await?;
            let client = lab::client(&docker, lab).await.ok();
            let ns = namespace.namespace.unwrap_or_else(|| "default".to_owned());
            let name = workloads::resolve(
                &docker,
                client.as_ref(),
                lab,
                &target,
                &ns,
                container.as_deref(),
            )
            .await?;
            let code = workloads::exec(&docker, &name, command).await?;
            return Ok(u8::try_from(code).unwrap_or(1));
        }
        Command::Logs {
            target,
            namespace,
            container,
            follow,
            tail,
        } => {
            let docker = lab::docker().await?;
            let client = lab::client(&docker, lab).await.ok();
            let ns = namespace.namespace.unwrap_or_else(|| "default".to_owned());
            let name = workloads::resolve(
                &docker,
                client.as_ref(),
                lab,
                &target,
                &ns,
                container.as_deref(),
            )
            .await?;
            workloads::logs(&docker, &name, follow, tail).await?;
        }
        Command::Analyze {
            files,
            namespace,
            all_namespaces,
        } => {
            let client = lab::client(&lab::docker().await?, lab).await?;
            let analysis: Analysis = if files.is_empty() {
                let mut path = format!("/api/v1/analyze?all_namespaces={all_namespaces}");
                if let Some(ns) = namespace.namespace {
                    path.push_str(&format!("&namespace={ns}"));
                }
                client.get(&path).await?
            } else {
                resources::analyze_files(&client, &files, namespace.namespace, all_namespaces)
                    .await?
            };
            println!("{}", analysis.text);
            // istioctl's exit code when analysis finds issues (ExitAnalyzerFoundIssues).
            return Ok(if analysis.errors { 79 } else { 0 });
        }
        Command::ProxyStatus => {
            let client = lab::client(&lab::docker().await?, lab).await?;
            resources::print_text(&client, "/api/v1/proxy-status").await?;
        }
        Command::ProxyConfig {
            kind,
            pod,
            namespace,
            output,
        } => {
            let docker = lab::docker().await?;
            let client = lab::client(&docker, lab).await?;
            let ns = namespace.namespace.unwrap_or_else(|| "default".to_owned());
            let (pod, ns) = workloads::pod_name(&client, &pod, &ns).await?;
            if kind == "iptables" {
                // What the init step installed, as it printed it (Istio: the
                // istio-init container's log).
                let name = workloads::resolve(
                    &docker,
                    Some(&client),
                    lab,
                    &pod,
                    &ns,
                    Some(meshlab_control::reconciler::INIT_CONTAINER),
                )
                .await?;
                workloads::logs(&docker, &name, false, None).await?;
                return Ok(0);
            }
            let mut path = format!("/api/v1/proxy-config?kind={kind}&pod={pod}&namespace={ns}");
            if let Some(output) = output {
                path.push_str(&format!("&output={output}"));
            }
            resources::print_text(&client, &path).await?;
        }
        Command::MeshConfig { action } => {
            let client = lab::client(&lab::docker().await?, lab).await?;
            match action {
                None => {
                    let config: serde_json::Value = client.get("/api/v1/mesh-config").await?;
                    println!("{}", serde_json::to_string_pretty(&config)?);
                }
                Some(MeshConfigAction::Set { setting }) => {
                    resources::set_mesh_config(&client, &setting).await?;
                }
            }
        }
        Command::Dashboard { no_browser } => {
            let client = lab::client(&lab::docker().await?, lab).await?;
            if !client.healthy().await {
                anyhow::bail!(
                    "the dashboard of lab {lab:?} does not answer (hint: `meshlab --name {lab} status`)"
                );
            }
            dashboard::open(&client.dashboard_url(), no_browser);
        }
        Command::Lab { action } => match action {
            LabAction::List => labs::list()?,
            LabAction::Describe { name } => labs::describe(&name)?,
            LabAction::Run {
                name,
                step,
                interactive,
                json,
                junit,
            } => {
                let client = lab::client(&lab::docker().await?, lab).await?;
                let options = labs::RunOptions {
                    step,
                    interactive,
                    json,
                    junit,
                };
                return labs::run(&client, &name, &options).await;
            }
            LabAction::Reset { name } => {
                let client = lab::client(&lab::docker().await?, lab).await?;
                labs::reset(&client, &name).await?;
            }
        },
        Command::Curl { .. } | Command::Run { .. } | Command::GenJwt { .. } => {
            unreachable!("handled before the runtime starts")
        }
    }
    Ok(0)
}

/// `meshlab gen-jwt`: prints the token; writes the JWKS when asked.
fn gen_jwt(
    key: Option<&OsString>,
    jwks: Option<&std::path::Path>,
    request: &meshlab_apps::gen_jwt::Request,
) -> anyhow::Result<u8> {
    use meshlab_apps::gen_jwt::{SigningKey, key_pem, now};
    let key = SigningKey::from_pem(&key_pem(key)?)?;
    if let Some(path) = jwks {
        std::fs::write(path, key.jwks())
            .with_context(|| format!("cannot write the JWKS to {}", path.display()))?;
    }
    println!("{}", key.sign(request, now())?);
    Ok(0)
}

fn run_role(role: Role) -> anyhow::Result<u8> {
    match role {
        Role::App { app, port } => block_on(meshlab_apps::run(app, port))?
            .with_context(|| format!("{} stopped", app.name()))?,
        Role::Probe { spec } => return labs::probe(&spec),
        Role::Pause { forwards } if forwards.is_empty() => {
            match meshlab_apps::sleep::main(vec!["infinity".into()]) {
                0 => {}
                code => anyhow::bail!("pause stopped with status {code}"),
            }
        }
        Role::Pause { forwards } => block_on_one_thread(crate::pause::run(forwards))??,
        Role::Init(args) => {
            // Like istio-init, print what was installed: the pod's init log shows it.
            println!("{}", capture::install(&args.into())?);
            for line in capture::list()? {
                println!("{line}");
            }
        }
        Role::Control => {
            let config = meshlab_control::run::Config::from_env()?;
            block_on(meshlab_control::run::run(config, meshlab_web::router()))?
                .context("the control plane stopped")?;
        }
        Role::Internet { cert, key } => {
            let config = meshlab_apps::internet::Config::new(cert, key);
            block_on(meshlab_apps::internet::run(config))?
                .context("the simulated internet stopped")?;
        }
        Role::Bookinfo { port, reviews } => block_on(run_bookinfo(port, &reviews))??,
        Role::Proxy { router } => block_on_one_thread(run_proxy(router))??,
    }
    Ok(0)
}

/// Runs a long-lived role on a multi-threaded runtime, logging at info.
fn block_on<F: Future>(future: F) -> anyhow::Result<F::Output> {
    run_long_lived(tokio::runtime::Builder::new_multi_thread(), future)
}

/// Runs a proxy on one thread, as linkerd2-proxy does by default: a sidecar shares
/// its pod's CPU with the app, and one event loop without cross-thread wake-ups and
/// work stealing keeps the latency it adds low (Envoy's `concurrency` is 2 in
/// Istio; meshlab's pods are small, so one is enough).
fn block_on_one_thread<F: Future>(future: F) -> anyhow::Result<F::Output> {
    run_long_lived(tokio::runtime::Builder::new_current_thread(), future)
}

fn run_long_lived<F: Future>(
    mut builder: tokio::runtime::Builder,
    future: F,
) -> anyhow::Result<F::Output> {
    init_tracing("info");
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(runtime.block_on(future))
}

/// A sidecar or gateway: configuration from the control plane, traffic from capture
/// (sidecars) or from its published ports (gateways).
async fn run_proxy(router: bool) -> anyhow::Result<()> {
    use meshlab_proxy::discovery::{ClientSettings, DiscoveryClient, default_endpoint};
    use meshlab_proxy::identity::{CertificateSettings, run_certificate_client};
    use meshlab_proxy::{Identity, OriginalDst, ProxyOptions, Sidecar, capture, dns};
    use meshlab_proxy_config::{ProxyConfig, ProxyKind, ProxyNode};

    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let node = ProxyNode {
        kind: if router {
            ProxyKind::Router
        } else {
            ProxyKind::Sidecar
        },
        pod: env("POD_NAME").context("POD_NAME is not set (the proxy runs inside a lab pod)")?,
        namespace: env("POD_NAMESPACE").unwrap_or_else(|| "default".to_owned()),
        ip: env("INSTANCE_IP").unwrap_or_default(),
        // The pod's labels name its app and version in metrics (`source_app`, …).
        labels: env("POD_LABELS")
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default(),
        service_account: env("SERVICE_ACCOUNT").unwrap_or_default(),
    };
    let endpoint = env("MESHLAB_DISCOVERY_ADDRESS").unwrap_or_else(default_endpoint);
    let client = DiscoveryClient::new(
        ClientSettings::new(endpoint.clone(), node.clone()),
        ProxyConfig::default(),
    )?;
    let configs = client.config();
    tokio::spawn(client.run());
    // The mesh identity: a SPIFFE certificate from the control plane's CA, for
    // the pod's service account, proven by the pod's token.
    let identity = env("MESHLAB_POD_TOKEN").map(|token| {
        let identity = Identity::new(format!(
            "spiffe://cluster.local/ns/{}/sa/{}",
            node.namespace, node.service_account
        ));
        let settings = CertificateSettings {
            endpoint: endpoint.clone(),
            token,
            ttl: None,
        };
        tokio::spawn(run_certificate_client(identity.clone(), settings));
        identity
    });
    let mut options = ProxyOptions::new(node);
    options.identity = identity;
    if !router {
        options.original_dst = OriginalDst::Lookup(capture::original_destination);
        let bind = std::net::SocketAddr::from(([0, 0, 0, 0], 15053));
        tokio::spawn(async move {
            if let Err(err) = dns::serve(bind, dns::system_resolver()).await {
                tracing::error!(%err, "the dns proxy stopped");
            }
        });
    }
    let _proxy = Sidecar::start(options, configs).await?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

/// Starts ratings, details and the chosen reviews on loopback ports picked by the
/// system, and productpage on `port` in front of them.
async fn run_bookinfo(port: u16, version: &str) -> anyhow::Result<()> {
    use meshlab_apps::{details, productpage, ratings, reviews, serve};
    use tokio::net::TcpListener;

    async fn spawn(router: axum::Router) -> anyhow::Result<String> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(serve(listener, router));
        Ok(url)
    }

    let ratings = spawn(ratings::router(ratings::Config::default())).await?;
    let reviews = spawn(reviews::router(reviews::Config {
        ratings_enabled: version != "v1",
        star_color: if version == "v3" { "red" } else { "black" }.to_owned(),
        ratings: ratings.clone(),
        podname: format!("reviews-{version}"),
        clustername: None,
    }))
    .await?;
    let details = spawn(details::router(details::Config::default())).await?;
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| {
            format!("cannot listen on 127.0.0.1:{port} (hint: pick another with --port)")
        })?;
    let router = productpage::router(productpage::Config {
        details,
        reviews,
        ratings,
        flood_factor: 0,
    });
    println!("Bookinfo (reviews {version}, no mesh): http://localhost:{port}/productpage");
    serve(listener, router).await?;
    Ok(())
}

/// Logs to stderr; `MESHLAB_LOG` (or `RUST_LOG`) overrides the level, e.g. `debug`.
fn init_tracing(default: &str) {
    let filter = std::env::var("MESHLAB_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}
