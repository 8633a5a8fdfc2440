//! Which built-in app an image name stands for, and how its container starts.
//!
//! Istio's samples name images from registries meshlab never contacts. Each image we
//! can provide maps to an app inside the meshlab binary, with the environment the
//! original image bakes in (spec `bookinfo.md` §0: versions are not in the manifests
//! but in each image's `ENV`). A manifest's own `env` comes after those defaults and
//! overrides them, as it does in Kubernetes. An image we cannot provide is an error
//! for the pod, never a pull.

use crate::resource::core::Container;

/// Where the meshlab binary lives inside every image.
pub const MESHLAB: &str = "/usr/local/bin/meshlab";

/// fortio's program in its image, a link to meshlab's binary in ours.
const FORTIO: &str = "/usr/bin/fortio";

/// Commands a manifest may name: the image holds the meshlab binary and links to it.
const COMMANDS: &[&str] = &[
    MESHLAB,
    "meshlab",
    "/bin/sleep",
    "sleep",
    "/usr/bin/curl",
    "curl",
    FORTIO,
    "fortio",
];

/// A container, ready to be started from meshlab's image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    /// The built-in app, e.g. `reviews`; `sleep` for the curl and sleep images.
    pub app: &'static str,
    /// The full command line.
    pub cmd: Vec<String>,
    /// Environment: the image's defaults, then the manifest's `env`.
    pub env: Vec<(String, String)>,
    /// The port the app listens on, if any.
    pub port: Option<u16>,
}

/// Why a container cannot be started.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// The image is not one meshlab provides.
    #[error(
        "image {image:?} is not one meshlab provides (it runs Bookinfo's examples-bookinfo-* images, \
         httpbin (mccutchen/go-httpbin, kennethreitz/httpbin, kong/httpbin), fortio \
         (fortio/fortio) and curl/sleep (curlimages/curl); nothing is ever pulled)"
    )]
    UnknownImage {
        /// The image as the manifest names it.
        image: String,
    },
    /// The image stands for an app variant that needs something the lab lacks.
    #[error("image {image:?} is not available in a lab: {reason}")]
    Unavailable {
        /// The image.
        image: String,
        /// Why.
        reason: &'static str,
    },
    /// `command` names a program meshlab's image does not have.
    #[error(
        "command {command:?} of container {container:?} is not in meshlab's image \
         (it has /bin/sleep, /usr/bin/curl, {FORTIO} and {MESHLAB})"
    )]
    UnknownCommand {
        /// The container's name.
        container: String,
        /// The program named.
        command: String,
    },
    /// `args` were given for a built-in app, which takes none.
    #[error(
        "container {container:?} passes args {args:?} to {image:?}, which meshlab runs as its \
         built-in {app} app that takes no arguments (hint: remove args, or use command)"
    )]
    UnsupportedArgs {
        /// The container's name.
        container: String,
        /// The image.
        image: String,
        /// The built-in app.
        app: &'static str,
        /// The arguments.
        args: Vec<String>,
    },
}

/// An image we provide: the app and the environment the original image sets.
struct BuiltIn {
    app: &'static str,
    env: Vec<(&'static str, String)>,
    port: Option<u16>,
}

/// How to start `container`.
pub fn launch(container: &Container) -> Result<Launch, CatalogError> {
    let built_in = resolve(&container.image)?;
    let declared_port = container
        .ports
        .first()
        .and_then(|p| u16::try_from(p.container_port).ok());
    let port = match built_in.app {
        "sleep" => None,
        // A gateway listens where its Gateways say; it is ready when its proxy is.
        "gateway" => built_in.port,
        _ => declared_port.or(built_in.port),
    };
    let mut env: Vec<(String, String)> = built_in
        .env
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    for var in &container.env {
        env.retain(|(k, _)| k != &var.name);
        env.push((var.name.clone(), var.value.clone().unwrap_or_default()));
    }

    let cmd = if let Some(bind) = gunicorn_bind(built_in.app, container)? {
        // The Python httpbin images' own server line (Istio's mirroring task names
        // it): the built-in httpbin on the port gunicorn was told to bind.
        vec![
            MESHLAB.to_owned(),
            "run".into(),
            "app".into(),
            "httpbin".into(),
            "--port".into(),
            bind.to_string(),
        ]
    } else if let Some(program) = container.command.first() {
        if !COMMANDS.contains(&program.as_str()) {
            return Err(CatalogError::UnknownCommand {
                container: container.name.clone(),
                command: program.clone(),
            });
        }
        container
            .command
            .iter()
            .chain(&container.args)
            .cloned()
            .collect()
    } else if built_in.app == "sleep" {
        // The curl image's own entrypoint is curl; the samples always give a command.
        // Without one, keep the container alive the way the samples intend.
        container
            .args
            .iter()
            .cloned()
            .chain(container.args.is_empty().then(|| "infinity".to_owned()))
            .fold(vec!["/bin/sleep".to_owned()], |mut cmd, arg| {
                cmd.push(arg);
                cmd
            })
    } else if built_in.app == "fortio" {
        // The image's entrypoint is fortio and its default arguments `server`; a
        // manifest's `args` replace those, as they do in Kubernetes.
        let args = if container.args.is_empty() {
            vec!["server".to_owned()]
        } else {
            container.args.clone()
        };
        std::iter::once(FORTIO.to_owned()).chain(args).collect()
    } else if built_in.app == "gateway" {
        // The gateway image's own arguments (`proxy router …`) are Istio's agent's;
        // meshlab's gateway takes its identity from the control plane instead.
        vec![
            MESHLAB.to_owned(),
            "run".into(),
            "proxy".into(),
            "--router".into(),
        ]
    } else if !container.args.is_empty() {
        return Err(CatalogError::UnsupportedArgs {
            container: container.name.clone(),
            image: container.image.clone(),
            app: built_in.app,
            args: container.args.clone(),
        });
    } else {
        let mut cmd = vec![
            MESHLAB.to_owned(),
            "run".into(),
            "app".into(),
            built_in.app.into(),
        ];
        if let Some(port) = port {
            cmd.extend(["--port".to_owned(), port.to_string()]);
        }
        cmd
    };
    Ok(Launch {
        app: built_in.app,
        cmd,
        env,
        port,
    })
}

/// The port of `gunicorn … -b HOST:PORT … httpbin:app`, the command Istio's samples
/// give the Python httpbin image (gunicorn binds `127.0.0.1:8000` when told nothing;
/// the samples always say `0.0.0.0:80`).
fn gunicorn_bind(app: &str, container: &Container) -> Result<Option<u16>, CatalogError> {
    let mut line = container.command.iter().chain(&container.args);
    if app != "httpbin" || container.command.first().map(String::as_str) != Some("gunicorn") {
        return Ok(None);
    }
    let mut port = 8000;
    while let Some(arg) = line.next() {
        let bind = match arg.as_str() {
            "-b" | "--bind" => line.next().map(String::as_str),
            other => other.strip_prefix("--bind="),
        };
        if let Some(bind) = bind {
            port = bind
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| CatalogError::UnsupportedArgs {
                    container: container.name.clone(),
                    image: container.image.clone(),
                    app: "httpbin",
                    args: vec![arg.clone(), bind.to_owned()],
                })?;
        }
    }
    Ok(Some(port))
}

/// The repository path of an image reference, lower case, without registry port, tag
/// or digest: `docker.io/istio/examples-bookinfo-reviews-v2:1.20.3` →
/// `docker.io/istio/examples-bookinfo-reviews-v2`.
fn repository(image: &str) -> String {
    let image = image.split('@').next().unwrap_or(image);
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    let without_tag = match image[last_slash..].find(':') {
        Some(colon) => &image[..last_slash + colon],
        None => image,
    };
    without_tag.to_ascii_lowercase()
}

/// Whether `image` is Istio's proxy image (`istio/proxyv2`), which meshlab runs as
/// a gateway: its own proxy, and no sidecar beside it.
pub fn is_gateway(image: &str) -> bool {
    repository(image).rsplit('/').next() == Some("proxyv2")
}

/// Whether a pod with these labels is a gateway (Istio's gateway pods carry an
/// `istio` label such as `ingressgateway`).
pub fn is_gateway_pod(labels: &std::collections::BTreeMap<String, String>) -> bool {
    labels.get("istio").is_some_and(|v| v.ends_with("gateway"))
}

fn resolve(image: &str) -> Result<BuiltIn, CatalogError> {
    let repository = repository(image);
    let mut segments = repository.rsplit('/');
    let name = segments.next().unwrap_or_default();
    let owner = segments.next().unwrap_or_default();
    let unknown = || CatalogError::UnknownImage {
        image: image.to_owned(),
    };
    let bookinfo = |app: &'static str, env: &[(&'static str, &str)]| BuiltIn {
        app,
        env: env.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        port: Some(9080),
    };

    if let Some(rest) = name.strip_prefix("examples-bookinfo-") {
        let (app, version) = rest.split_once('-').ok_or_else(unknown)?;
        return match (app, version) {
            ("productpage", "v1") => Ok(bookinfo("productpage", &[("FLOOD_FACTOR", "0")])),
            ("productpage", "v-flooding") => {
                Ok(bookinfo("productpage", &[("FLOOD_FACTOR", "100")]))
            }
            ("details", "v1") => Ok(bookinfo(
                "details",
                &[
                    ("SERVICE_VERSION", "v1"),
                    ("ENABLE_EXTERNAL_BOOK_SERVICE", "false"),
                ],
            )),
            ("details", "v2") => Ok(bookinfo(
                "details",
                &[
                    ("SERVICE_VERSION", "v2"),
                    ("ENABLE_EXTERNAL_BOOK_SERVICE", "true"),
                ],
            )),
            ("reviews", "v1") => Ok(bookinfo(
                "reviews",
                &[
                    ("SERVICE_VERSION", "v1"),
                    ("ENABLE_RATINGS", "false"),
                    ("STAR_COLOR", "black"),
                ],
            )),
            ("reviews", "v2") => Ok(bookinfo(
                "reviews",
                &[
                    ("SERVICE_VERSION", "v2"),
                    ("ENABLE_RATINGS", "true"),
                    ("STAR_COLOR", "black"),
                ],
            )),
            ("reviews", "v3") => Ok(bookinfo(
                "reviews",
                &[
                    ("SERVICE_VERSION", "v3"),
                    ("ENABLE_RATINGS", "true"),
                    ("STAR_COLOR", "red"),
                ],
            )),
            (
                "ratings",
                v @ ("v1" | "v-faulty" | "v-delayed" | "v-unavailable" | "v-unhealthy"),
            ) => Ok(bookinfo("ratings", &[("SERVICE_VERSION", v)])),
            ("ratings", "v2" | "v2-mysql" | "v2-mysql-vm") | ("mongodb" | "mysqldb", _) => {
                Err(CatalogError::Unavailable {
                    image: image.to_owned(),
                    reason: "it needs MongoDB or MySQL, which meshlab does not run \
                             (hint: use ratings v1 or a test variant: v-faulty, v-delayed, \
                             v-unavailable, v-unhealthy)",
                })
            }
            _ => Err(unknown()),
        };
    }
    match (owner, name) {
        // Ready when the proxy's readiness endpoint answers.
        (_, "proxyv2") => Ok(BuiltIn {
            app: "gateway",
            env: Vec::new(),
            port: Some(crate::reconciler::READINESS_PORT),
        }),
        // go-httpbin listens on 8080; the older Python images on 80.
        (_, "go-httpbin") => Ok(BuiltIn {
            app: "httpbin",
            env: Vec::new(),
            port: Some(8080),
        }),
        ("kennethreitz" | "kong" | "citizenstig", "httpbin") => Ok(BuiltIn {
            app: "httpbin",
            env: Vec::new(),
            port: Some(80),
        }),
        ("fortio" | "istio", "fortio") => Ok(BuiltIn {
            app: "fortio",
            env: Vec::new(),
            port: Some(8080),
        }),
        ("curlimages", "curl") | ("governmentpaas", "curl-ssl") | ("pstauffer", "curl") => {
            Ok(BuiltIn {
                app: "sleep",
                env: Vec::new(),
                port: None,
            })
        }
        _ => Err(unknown()),
    }
}

#[cfg(test)]
mod tests;
