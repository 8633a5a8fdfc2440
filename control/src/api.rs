//! The control plane's HTTP API, used by the CLI and the dashboard.
//!
//! It answers in the words the CLI prints: apply and delete return kubectl's lines,
//! `get` returns the rendered table or document, errors return every diagnostic
//! already formatted with file, line, resource and field. Keeping the rendering here
//! means the CLI, the labs and the dashboard show exactly the same text.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

use std::path::PathBuf;

use crate::analyze;
use crate::diagnostic::Diagnostic;
use crate::discovery::DiscoveryStatus;
use crate::inspect;
use crate::labs::{ControlEnvironment, Kept, LabsRuntime};
use crate::mesh_config::MeshConfig;
use crate::output::{self, DeploymentStatus, Format, LiveStatus, Table};
use crate::pod::{Pod, Pods};
use crate::resource::{Kind, ObjectKey, Resource};
use crate::store::{ApplyError, DeleteError, Store};
use crate::telemetry::Telemetry;
use crate::translate::View;
use crate::yaml;

mod dashboard;

pub use dashboard::{
    Certificate, LogFilter, MAX_TRAFFIC, ObjectRef, ProxyInfo, TrafficReport, TrafficRequest,
};

/// One manifest file sent by the CLI.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// The file name (`-` for standard input), for error locations.
    pub file: String,
    /// The file's text.
    pub yaml: String,
}

/// `POST /api/v1/apply` and `POST /api/v1/delete` with manifests.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ManifestsRequest {
    /// The files, applied or deleted together, all or nothing.
    pub manifests: Vec<Manifest>,
    /// The namespace for objects that name none (`-n`); `default` when absent.
    pub namespace: Option<String>,
}

/// `POST /api/v1/delete` by kind and name.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeleteByName {
    /// A kind as the user typed it (`vs`, `virtualservice`, …).
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// The namespace; `default` when absent.
    pub namespace: Option<String>,
}

/// What a delete request names.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DeleteRequest {
    /// Everything in these manifests.
    Manifests(ManifestsRequest),
    /// One object.
    ByName(DeleteByName),
}

/// A successful apply or delete: kubectl's lines, and warnings.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Lines {
    /// One line per object.
    pub lines: Vec<String>,
    /// Non-blocking diagnostics, formatted.
    pub warnings: Vec<String>,
}

/// `GET /api/v1/get` parameters.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GetQuery {
    /// A kind as typed (`pods`, `vs`, `deploy`, …).
    pub kind: String,
    /// One object's name.
    pub name: Option<String>,
    /// The namespace; `default` when absent.
    pub namespace: Option<String>,
    /// All namespaces (`-A`).
    #[serde(default)]
    pub all_namespaces: bool,
    /// `yaml` or `json`; a table when absent.
    pub output: Option<String>,
}

/// Rendered output.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Text {
    /// What to print.
    pub text: String,
}

/// A failed request: every error, formatted, and what to do.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Failure {
    /// One line per problem.
    pub errors: Vec<String>,
    /// What to do next.
    pub hint: Option<String>,
    /// The problems with their structure (file, position, resource, field), for
    /// tools that show them in place.
    #[serde(default)]
    pub diagnostics: Vec<Value>,
}

impl Failure {
    pub(crate) fn response(
        status: StatusCode,
        error: &dyn ToString,
        hint: Option<String>,
    ) -> Response {
        let failure = Failure {
            errors: vec![error.to_string()],
            hint,
            diagnostics: Vec::new(),
        };
        (status, Json(failure)).into_response()
    }

    fn invalid(diagnostics: &[Diagnostic]) -> Response {
        let failure = Failure {
            errors: diagnostics
                .iter()
                .filter(|d| d.is_error())
                .map(ToString::to_string)
                .collect(),
            hint: None,
            diagnostics: diagnostics
                .iter()
                .filter_map(|d| serde_json::to_value(d).ok())
                .collect(),
        };
        (StatusCode::UNPROCESSABLE_ENTITY, Json(failure)).into_response()
    }
}

/// What the API reads.
#[derive(Clone, Debug)]
pub struct ApiState {
    /// The resource store.
    pub store: Arc<Store>,
    /// The reconciler's view of the pods.
    pub pods: watch::Receiver<Pods>,
    /// The mesh as proxies are configured from it.
    pub views: watch::Receiver<Arc<View>>,
    /// The proxies' sync state.
    pub discovery: DiscoveryStatus,
    /// The mesh configuration, changed by `mesh-config set`.
    pub mesh_config: watch::Sender<MeshConfig>,
    /// Where the mesh configuration is kept.
    pub state_dir: PathBuf,
    /// The proxies' access logs, live.
    pub telemetry: Telemetry,
    /// The guided labs' runner (Docker access, one lab at a time).
    pub labs: LabsRuntime,
    /// The workload certificates the CA issued (certificates only; no key is ever
    /// known here).
    pub certificates: Arc<crate::certificates::IssuedCertificates>,
    /// The mesh's root certificate (PEM).
    pub mesh_root: String,
}

/// `GET /api/v1/proxy-config` parameters.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProxyConfigQuery {
    /// The pod.
    pub pod: String,
    /// Its namespace; `default` when absent.
    pub namespace: Option<String>,
    /// `listeners`, `routes`, `clusters`, `endpoints` or `all`.
    pub kind: String,
    /// `json` for the configuration itself; a table when absent.
    pub output: Option<String>,
}

/// `GET /api/v1/analyze` parameters.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AnalyzeQuery {
    /// The namespace; `default` when absent.
    pub namespace: Option<String>,
    /// All namespaces (`-A`).
    #[serde(default)]
    pub all_namespaces: bool,
}

/// `POST /api/v1/analyze`: files analysed over what is applied, without applying
/// them (`istioctl analyze FILE…`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AnalyzeFilesRequest {
    /// The files.
    pub manifests: Vec<Manifest>,
    /// The namespace of objects that name none, and the one analysed; `default`.
    pub namespace: Option<String>,
    /// All namespaces (`-A`).
    #[serde(default)]
    pub all_namespaces: bool,
}

/// `GET /api/v1/analyze`: istioctl's report, and whether it holds an error.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Analysis {
    /// What to print: one line per finding, or the all-clear.
    pub text: String,
    /// Whether any finding is an error (`meshlab analyze` then exits 79).
    pub errors: bool,
}

/// `POST /api/v1/mesh-config`: one `key=value` as `--set meshConfig.<key>=<value>`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MeshConfigSet {
    /// E.g. `outboundTrafficPolicy.mode`.
    pub key: String,
    /// E.g. `REGISTRY_ONLY`.
    pub value: String,
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/v1/apply", post(apply))
        .route("/api/v1/delete", post(delete))
        .route("/api/v1/get", get(get_objects))
        .route("/api/v1/pods", get(pods))
        .route("/api/v1/proxy-status", get(proxy_status))
        .route("/api/v1/analyze", get(analyze).post(analyze_files))
        .route("/api/v1/proxy-config", get(proxy_config))
        .route(
            "/api/v1/mesh-config",
            get(mesh_config).post(set_mesh_config),
        )
        .merge(dashboard::routes())
        .route("/api/v1/labs", get(labs))
        .route("/api/v1/labs/{name}", get(describe_lab))
        .route("/api/v1/labs/{name}/run", post(run_lab))
        .route("/api/v1/labs/{name}/reset", post(reset_lab))
        .with_state(state)
}

fn namespace_of(namespace: Option<&str>) -> String {
    namespace
        .filter(|n| !n.is_empty())
        .unwrap_or("default")
        .to_owned()
}

/// Parses every manifest; all diagnostics of all files when any has an error.
fn load(manifests: &[Manifest]) -> Result<(Vec<Resource>, Vec<String>), Vec<Diagnostic>> {
    let (documents, warnings) = load_documents(manifests)?;
    Ok((
        documents.into_iter().map(|d| d.resource).collect(),
        warnings,
    ))
}

/// Every manifest's documents, with their sources, and the warnings; or every error.
fn load_documents(
    manifests: &[Manifest],
) -> Result<(Vec<yaml::Document>, Vec<String>), Vec<Diagnostic>> {
    let mut documents = Vec::new();
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    for manifest in manifests {
        match yaml::load(&manifest.file, &manifest.yaml) {
            Ok(loaded) => {
                warnings.extend(loaded.warnings.iter().map(ToString::to_string));
                documents.extend(loaded.documents);
            }
            Err(diagnostics) => errors.extend(diagnostics),
        }
    }
    if errors.iter().any(Diagnostic::is_error) {
        return Err(errors);
    }
    Ok((documents, warnings))
}

async fn apply(State(state): State<ApiState>, Json(request): Json<ManifestsRequest>) -> Response {
    let (resources, warnings) = match load(&request.manifests) {
        Ok(loaded) => loaded,
        Err(diagnostics) => return Failure::invalid(&diagnostics),
    };
    if resources.is_empty() {
        return Failure::response(StatusCode::BAD_REQUEST, &"no objects passed to apply", None);
    }
    let namespace = namespace_of(request.namespace.as_deref());
    match state.store.apply(resources, &namespace) {
        Ok(outcomes) => Json(Lines {
            lines: outcomes.iter().map(ToString::to_string).collect(),
            warnings,
        })
        .into_response(),
        Err(ApplyError::Invalid(diagnostics)) => Failure::invalid(&diagnostics),
        Err(err @ ApplyError::NamespaceNotFound { .. }) => {
            let hint = err.hint();
            Failure::response(StatusCode::NOT_FOUND, &err, hint)
        }
        Err(err @ ApplyError::Store(_)) => {
            Failure::response(StatusCode::INTERNAL_SERVER_ERROR, &err, None)
        }
    }
}

async fn delete(State(state): State<ApiState>, Json(request): Json<DeleteRequest>) -> Response {
    let keys: Vec<ObjectKey> = match &request {
        DeleteRequest::Manifests(request) => {
            let namespace = namespace_of(request.namespace.as_deref());
            match load(&request.manifests) {
                Ok((resources, _)) => resources
                    .iter()
                    .map(|r| ObjectKey::of(r, &namespace))
                    .collect(),
                Err(diagnostics) => return Failure::invalid(&diagnostics),
            }
        }
        DeleteRequest::ByName(target) => {
            let Some(kind) = Kind::lookup(&target.kind) else {
                return unknown_kind(&target.kind);
            };
            vec![ObjectKey::new(
                kind,
                &namespace_of(target.namespace.as_deref()),
                &target.name,
            )]
        }
    };
    match state.store.delete_all(&keys) {
        Ok(deleted) => Json(Lines {
            lines: deleted.iter().map(ToString::to_string).collect(),
            warnings: Vec::new(),
        })
        .into_response(),
        Err(err @ DeleteError::NotFound { .. }) => {
            Failure::response(StatusCode::NOT_FOUND, &err, None)
        }
        Err(err @ DeleteError::Forbidden { .. }) => {
            Failure::response(StatusCode::FORBIDDEN, &err, None)
        }
        Err(err @ DeleteError::Store(_)) => {
            Failure::response(StatusCode::INTERNAL_SERVER_ERROR, &err, None)
        }
    }
}

fn unknown_kind(kind: &str) -> Response {
    Failure::response(StatusCode::NOT_FOUND, &format!("the server doesn't have a resource type {kind:?}"),
        Some("meshlab knows pods, namespaces (ns), serviceaccounts (sa), services (svc), deployments (deploy), \
              virtualservices (vs), destinationrules (dr), gateways (gw), serviceentries (se), sidecars, \
              workloadentries (we), peerauthentications (pa), authorizationpolicies (ap), requestauthentications (ra)"
            .to_owned()),
    )
}

async fn pods(State(state): State<ApiState>) -> Json<Vec<Pod>> {
    Json(state.pods.borrow().as_ref().clone())
}

/// Deployment counts from the reconciler's pods.
struct Live<'a>(&'a [Pod]);

impl LiveStatus for Live<'_> {
    fn deployment(&self, namespace: &str, name: &str) -> Option<DeploymentStatus> {
        let pods = self
            .0
            .iter()
            .filter(|p| p.namespace == namespace && p.deployment.as_deref() == Some(name));
        let (mut total, mut ready) = (0, 0);
        for pod in pods {
            total += 1;
            ready += u32::from(pod.is_ready());
        }
        Some(DeploymentStatus {
            ready,
            up_to_date: total,
            available: ready,
        })
    }
}

async fn get_objects(State(state): State<ApiState>, Query(query): Query<GetQuery>) -> Response {
    let namespace = namespace_of(query.namespace.as_deref());
    let scope = (!query.all_namespaces).then_some(namespace.as_str());
    let format = match query.output.as_deref() {
        None | Some("" | "wide") => None,
        Some("yaml") => Some(Format::Yaml),
        Some("json") => Some(Format::Json),
        Some(other) => {
            return Failure::response(
                StatusCode::BAD_REQUEST,
                &format!("unable to match a printer suitable for the output format {other:?}"),
                Some("allowed formats are: json, yaml".to_owned()),
            );
        }
    };
    let pods = state.pods.borrow().clone();
    if matches!(
        query.kind.to_ascii_lowercase().as_str(),
        "pods" | "pod" | "po"
    ) {
        return pod_listing(&pods, scope, query.name.as_deref(), format);
    }
    let Some(kind) = Kind::lookup(&query.kind) else {
        return unknown_kind(&query.kind);
    };
    let snapshot = state.store.snapshot();
    let objects: Vec<&Resource> = match &query.name {
        Some(name) => match snapshot.get(kind, &namespace, name) {
            Some(object) => vec![object.as_ref()],
            None => {
                return Failure::response(
                    StatusCode::NOT_FOUND,
                    &format!("{} {name:?} not found", kind.plural_name()),
                    None,
                );
            }
        },
        None => snapshot.list(kind, scope).map(AsRef::as_ref).collect(),
    };
    let text = match format {
        Some(format) => match output::render(&objects, query.name.is_some(), format) {
            Ok(text) => text,
            Err(err) => return Failure::response(StatusCode::INTERNAL_SERVER_ERROR, &err, None),
        },
        None if objects.is_empty() => output::no_resources_found(kind, scope),
        None => output::table(
            kind,
            &objects,
            SystemTime::now(),
            query.all_namespaces,
            &Live(&pods),
        )
        .to_string(),
    };
    Json(Text { text }).into_response()
}

fn pod_listing(
    pods: &[Pod],
    scope: Option<&str>,
    name: Option<&str>,
    format: Option<Format>,
) -> Response {
    let selected: Vec<&Pod> = pods
        .iter()
        .filter(|p| scope.is_none_or(|ns| p.namespace == ns))
        .filter(|p| name.is_none_or(|n| p.name == n))
        .collect();
    if let Some(name) = name
        && selected.is_empty()
    {
        return Failure::response(
            StatusCode::NOT_FOUND,
            &format!("pods {name:?} not found"),
            None,
        );
    }
    if let Some(format) = format {
        let value = serde_json::to_value(&selected).unwrap_or_default();
        let text = match format {
            Format::Json => serde_json::to_string_pretty(&value).unwrap_or_default(),
            Format::Yaml => yaml::to_yaml(&value).unwrap_or_default(),
        };
        return Json(Text { text }).into_response();
    }
    if selected.is_empty() {
        return Json(Text {
            text: match scope {
                Some(ns) => format!("No resources found in {ns} namespace."),
                None => "No resources found".to_owned(),
            },
        })
        .into_response();
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut headers = vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"];
    if scope.is_none() {
        headers.insert(0, "NAMESPACE");
    }
    let rows = selected
        .iter()
        .map(|pod| {
            let mut row = vec![
                pod.name.clone(),
                pod.ready_column(),
                pod.status.clone(),
                pod.restarts().to_string(),
                output::age(std::time::Duration::from_secs(
                    now.saturating_sub(pod.created),
                )),
            ];
            if scope.is_none() {
                row.insert(0, pod.namespace.clone());
            }
            row
        })
        .collect();
    let table = Table {
        headers: headers.into_iter().map(str::to_owned).collect(),
        rows,
    };
    Json(Text {
        text: table.to_string(),
    })
    .into_response()
}

async fn analyze(
    State(state): State<ApiState>,
    Query(query): Query<AnalyzeQuery>,
) -> Json<Analysis> {
    let namespace = (!query.all_namespaces).then(|| namespace_of(query.namespace.as_deref()));
    let findings = analyze::analyze(&state.store.snapshot(), namespace.as_deref());
    Json(Analysis {
        text: analyze::render(&findings, namespace.as_deref()),
        errors: analyze::has_errors(&findings),
    })
}

async fn analyze_files(
    State(state): State<ApiState>,
    Json(request): Json<AnalyzeFilesRequest>,
) -> Response {
    // Loading validates too: an invalid file is refused as `apply` refuses it.
    let documents = match load_documents(&request.manifests) {
        Ok((documents, _)) => documents,
        Err(diagnostics) => return Failure::invalid(&diagnostics),
    };
    let namespace = namespace_of(request.namespace.as_deref());
    let scope = (!request.all_namespaces).then(|| namespace.clone());
    let findings = analyze::analyze_files(
        &state.store.snapshot(),
        &documents,
        &namespace,
        scope.as_deref(),
    );
    Json(Analysis {
        text: analyze::render(&findings, scope.as_deref()),
        errors: analyze::has_errors(&findings),
    })
    .into_response()
}

async fn proxy_status(State(state): State<ApiState>) -> Json<Text> {
    let statuses = state.discovery.proxy_status();
    let text = if statuses.is_empty() {
        "No proxies are connected.".to_owned()
    } else {
        inspect::proxy_status(&statuses).to_string()
    };
    Json(Text { text })
}

async fn proxy_config(
    State(state): State<ApiState>,
    Query(query): Query<ProxyConfigQuery>,
) -> Response {
    let namespace = namespace_of(query.namespace.as_deref());
    let view = state.views.borrow().clone();
    let Some(pod) = view
        .pods
        .iter()
        .find(|p| p.namespace == namespace && p.name == query.pod)
    else {
        return Failure::response(
            StatusCode::NOT_FOUND,
            &format!("pods {:?} not found in namespace {namespace:?}", query.pod),
            None,
        );
    };
    let kind = if crate::catalog::is_gateway_pod(&pod.labels) {
        meshlab_proxy_config::ProxyKind::Router
    } else {
        meshlab_proxy_config::ProxyKind::Sidecar
    };
    let node = meshlab_proxy_config::ProxyNode {
        kind,
        pod: pod.name.clone(),
        namespace: namespace.clone(),
        ip: pod.ip.clone().unwrap_or_default(),
        labels: pod.labels.clone(),
        service_account: pod.service_account.clone(),
    };
    let config = view.config_for(&node);
    if matches!(query.kind.as_str(), "secret" | "secrets") {
        let issued = state.certificates.get(&namespace, &pod.name);
        let entries = inspect::secrets(
            issued.as_ref().map(|i| i.chain.as_slice()),
            &state.mesh_root,
            &config.secrets,
        );
        let text = if query.output.as_deref() == Some("json") {
            serde_json::to_string_pretty(&entries).unwrap_or_default()
        } else {
            inspect::secrets_table(&entries).to_string()
        };
        return Json(Text { text }).into_response();
    }
    let text = match (query.kind.as_str(), query.output.as_deref()) {
        ("all", Some("json")) => serde_json::to_string_pretty(config.as_ref()).unwrap_or_default(),
        ("listeners" | "listener", Some("json")) => {
            serde_json::to_string_pretty(&config.listeners).unwrap_or_default()
        }
        ("routes" | "route", Some("json")) => {
            serde_json::to_string_pretty(&config.routes).unwrap_or_default()
        }
        ("clusters" | "cluster", Some("json")) => {
            serde_json::to_string_pretty(&config.clusters).unwrap_or_default()
        }
        ("endpoints" | "endpoint", Some("json")) => {
            serde_json::to_string_pretty(&config.endpoints).unwrap_or_default()
        }
        ("listeners" | "listener", _) => inspect::listeners(&config).to_string(),
        ("routes" | "route", _) => inspect::routes(&config).to_string(),
        ("clusters" | "cluster", _) => inspect::clusters(&config).to_string(),
        ("endpoints" | "endpoint", _) => inspect::endpoints(&config).to_string(),
        (other, _) => {
            return Failure::response(
                StatusCode::BAD_REQUEST,
                &format!("unknown proxy-config type {other:?}"),
                Some(
                    "use listeners, routes, clusters, endpoints, secret or all (with -o json)"
                        .to_owned(),
                ),
            );
        }
    };
    Json(Text { text }).into_response()
}

async fn mesh_config(State(state): State<ApiState>) -> Json<MeshConfig> {
    Json(*state.mesh_config.borrow())
}

async fn set_mesh_config(
    State(state): State<ApiState>,
    Json(set): Json<MeshConfigSet>,
) -> Response {
    let mut config = *state.mesh_config.borrow();
    if let Err(err) = config.set(&set.key, &set.value) {
        return Failure::response(StatusCode::BAD_REQUEST, &err, None);
    }
    if let Err(err) = config.save(&state.state_dir) {
        return Failure::response(StatusCode::INTERNAL_SERVER_ERROR, &err, None);
    }
    state.mesh_config.send_replace(config);
    Json(Lines {
        lines: vec![format!(
            "meshConfig.{} set to {}",
            set.key.trim_start_matches("meshConfig."),
            set.value
        )],
        warnings: Vec::new(),
    })
    .into_response()
}

// === Labs ===

/// `POST /api/v1/labs/{name}/run`.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct RunLab {
    /// Only this step (1-based); the steps before it are applied without checks.
    #[serde(default)]
    pub step: Option<usize>,
    /// Keep what the lab applied (an interactive run); `reset` restores it later.
    #[serde(default)]
    pub keep: bool,
}

fn find_lab(name: &str) -> Result<meshlab_labs::format::Lab, Box<Response>> {
    match meshlab_labs::catalog::find(name) {
        Some(Ok(lab)) => Ok(lab),
        Some(Err(err)) => Err(Box::new(Failure::response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &err,
            None,
        ))),
        None => Err(Box::new(Failure::response(
            StatusCode::NOT_FOUND,
            &format!("lab {name:?} not found"),
            Some(format!(
                "the labs are: {}",
                meshlab_labs::catalog::names()
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ))),
    }
}

async fn labs() -> Response {
    match meshlab_labs::catalog::all() {
        Ok(labs) => Json(
            labs.iter()
                .map(meshlab_labs::catalog::Summary::from)
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(err) => Failure::response(StatusCode::INTERNAL_SERVER_ERROR, &err, None),
    }
}

async fn describe_lab(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    match find_lab(&name) {
        Ok(lab) => Json(meshlab_labs::catalog::Description::from(&lab)).into_response(),
        Err(response) => *response,
    }
}

/// Runs a lab in a task of its own, so that a client going away cannot stop it
/// half-way (the environment is always restored), and streams its events as
/// NDJSON.
async fn run_lab(
    State(state): State<ApiState>,
    axum::extract::Path(name): axum::extract::Path<String>,
    body: Option<Json<RunLab>>,
) -> Response {
    use meshlab_labs::runner::{self, Environment, Options};

    let request = body.map(|Json(b)| b).unwrap_or_default();
    let lab = match find_lab(&name) {
        Ok(lab) => lab,
        Err(response) => return *response,
    };
    let Ok(mut guard) = state.labs.running.clone().try_lock_owned() else {
        return Failure::response(
            StatusCode::CONFLICT,
            &"another lab is running in this environment",
            Some("wait for it to finish, then run this one".to_owned()),
        );
    };
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let docker = state.labs.docker.clone();
        let env = ControlEnvironment::new(&state, &docker);
        if request.keep && guard.is_none() {
            match env.checkpoint().await {
                Ok(checkpoint) => {
                    *guard = Some(Kept {
                        lab: lab.name.clone(),
                        checkpoint,
                    });
                }
                Err(err) => tracing::warn!(%err, "cannot remember the environment"),
            }
        }
        let options = Options {
            step: request.step,
            keep: request.keep,
        };
        let passed = runner::run(&env, &lab, options, &sender).await;
        tracing::info!(lab = %lab.name, passed, "lab run");
        drop(guard);
    });
    let lines = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let event = receiver.recv().await?;
        let mut line = serde_json::to_string(&event).unwrap_or_default();
        line.push('\n');
        Some((Ok::<_, std::convert::Infallible>(line), receiver))
    });
    (
        [(http::header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(lines),
    )
        .into_response()
}

/// `POST /api/v1/labs/{name}/reset`: back to what a kept run found, or, with none,
/// without the objects the lab's manifests declare and with the default mesh
/// configuration if the lab changes it.
async fn reset_lab(
    State(state): State<ApiState>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    use meshlab_labs::runner::{Environment, ManifestFile};

    let lab = match find_lab(&name) {
        Ok(lab) => lab,
        Err(response) => return *response,
    };
    let mut guard = state.labs.running.clone().lock_owned().await;
    let docker = state.labs.docker.clone();
    let env = ControlEnvironment::new(&state, &docker);
    let result = match guard.take() {
        Some(kept) => env.restore(kept.checkpoint).await,
        None => {
            let files: Vec<ManifestFile> = lab
                .manifests
                .iter()
                .map(|(file, yaml)| ManifestFile {
                    file: file.clone(),
                    yaml: yaml.clone(),
                })
                .collect();
            let mut lines = match env.delete(&files).await {
                Ok(lines) => lines,
                Err(err) => return Failure::response(StatusCode::CONFLICT, &err, None),
            };
            let default = MeshConfig::default();
            let changes_mesh = lab.steps.iter().any(|s| !s.mesh_config.is_empty());
            if changes_mesh && *state.mesh_config.borrow() != default {
                if let Err(err) = default.save(&state.state_dir) {
                    return Failure::response(StatusCode::INTERNAL_SERVER_ERROR, &err, None);
                }
                state.mesh_config.send_replace(default);
                lines.push("meshConfig set back to its defaults".to_owned());
            }
            Ok(lines)
        }
    };
    match result {
        Ok(lines) => Json(Lines {
            lines,
            warnings: Vec::new(),
        })
        .into_response(),
        Err(err) => Failure::response(StatusCode::CONFLICT, &err, None),
    }
}
