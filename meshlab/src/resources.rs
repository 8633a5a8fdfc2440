//! `meshlab apply`, `get` and `delete`: kubectl's verbs against the lab's store.
//!
//! The files are read here and sent whole, with their names, so that the control
//! plane reports every problem at its file and line; what it answers is printed as it
//! comes, in kubectl's words.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use meshlab_control::api::{
    DeleteByName, DeleteRequest, GetQuery, Lines, Manifest, ManifestsRequest, Text,
};

use crate::client::{Client, Refused};

/// Reads `-f` arguments: files, directories (their `.yaml`, `.yml` and `.json` files,
/// sorted, not recursive, as kubectl does) and `-` for standard input.
pub fn read_manifests(paths: &[PathBuf]) -> anyhow::Result<Vec<Manifest>> {
    let mut manifests = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut yaml = String::new();
            std::io::stdin()
                .read_to_string(&mut yaml)
                .context("cannot read the manifest from standard input")?;
            manifests.push(Manifest {
                file: "-".to_owned(),
                yaml,
            });
        } else if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot read directory {}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension()
                        .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
                })
                .collect();
            files.sort();
            if files.is_empty() {
                bail!(
                    "directory {} holds no .yaml, .yml or .json files",
                    path.display()
                );
            }
            for file in files {
                manifests.push(read_file(&file)?);
            }
        } else {
            manifests.push(read_file(path)?);
        }
    }
    Ok(manifests)
}

fn read_file(path: &Path) -> anyhow::Result<Manifest> {
    let yaml = std::fs::read_to_string(path).with_context(|| {
        format!(
            "the path {:?} does not exist or cannot be read",
            path.display().to_string()
        )
    })?;
    Ok(Manifest {
        file: path.display().to_string(),
        yaml,
    })
}

/// Prints a refused request as kubectl does and turns it into the command's failure.
fn refused(err: anyhow::Error) -> anyhow::Error {
    match err.downcast::<Refused>() {
        Ok(refused) => {
            for line in &refused.failure.errors {
                eprintln!("error: {line}");
            }
            if let Some(hint) = &refused.failure.hint {
                eprintln!("hint: {hint}");
            }
            anyhow::Error::new(Reported)
        }
        Err(err) => err,
    }
}

/// An error already printed; the command only needs to fail.
#[derive(Debug, thiserror::Error)]
#[error("the request failed")]
pub struct Reported;

/// `meshlab apply -f …`.
pub async fn apply(
    client: &Client,
    paths: &[PathBuf],
    namespace: Option<String>,
) -> anyhow::Result<()> {
    let request = ManifestsRequest {
        manifests: read_manifests(paths)?,
        namespace,
    };
    let lines: Lines = client
        .post("/api/v1/apply", &request)
        .await
        .map_err(refused)?;
    for warning in &lines.warnings {
        eprintln!("Warning: {warning}");
    }
    for line in &lines.lines {
        println!("{line}");
    }
    Ok(())
}

/// `meshlab analyze FILE…`: the files over what is applied, nothing applied.
pub async fn analyze_files(
    client: &Client,
    paths: &[PathBuf],
    namespace: Option<String>,
    all_namespaces: bool,
) -> anyhow::Result<meshlab_control::api::Analysis> {
    let request = meshlab_control::api::AnalyzeFilesRequest {
        manifests: read_manifests(paths)?,
        namespace,
        all_namespaces,
    };
    client
        .post("/api/v1/analyze", &request)
        .await
        .map_err(refused)
}

/// `meshlab get KIND [NAME]`.
pub async fn get(client: &Client, query: &GetQuery) -> anyhow::Result<()> {
    let mut path = format!("/api/v1/get?kind={}", encode(&query.kind));
    if let Some(name) = &query.name {
        path.push_str(&format!("&name={}", encode(name)));
    }
    if let Some(namespace) = &query.namespace {
        path.push_str(&format!("&namespace={}", encode(namespace)));
    }
    if query.all_namespaces {
        path.push_str("&all_namespaces=true");
    }
    if let Some(output) = &query.output {
        path.push_str(&format!("&output={}", encode(output)));
    }
    let text: Text = client.get(&path).await.map_err(refused)?;
    let text = text.text;
    if text.starts_with("No resources found") {
        eprintln!("{text}");
    } else {
        print!("{text}");
        if !text.ends_with('\n') {
            println!();
        }
    }
    Ok(())
}

/// `meshlab delete -f …` or `meshlab delete KIND NAME`.
pub async fn delete(client: &Client, request: &DeleteRequest) -> anyhow::Result<()> {
    let lines: Lines = client
        .post("/api/v1/delete", request)
        .await
        .map_err(|err| match err.downcast::<Refused>() {
            Ok(refused) if refused.status == http::StatusCode::NOT_FOUND => {
                for line in &refused.failure.errors {
                    eprintln!("Error from server (NotFound): {line}");
                }
                anyhow::Error::new(Reported)
            }
            Ok(other) => refused(anyhow::Error::new(other)),
            Err(err) => err,
        })?;
    for line in &lines.lines {
        println!("{line}");
    }
    Ok(())
}

/// The delete request for `delete KIND NAME`.
pub fn delete_by_name(kind: String, name: String, namespace: Option<String>) -> DeleteRequest {
    DeleteRequest::ByName(DeleteByName {
        kind,
        name,
        namespace,
    })
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Prints the text an API endpoint renders (`proxy-status`, `proxy-config`).
pub async fn print_text(client: &Client, path: &str) -> anyhow::Result<()> {
    let text: Text = client.get(path).await.map_err(refused)?;
    print!("{}", text.text);
    if !text.text.ends_with('\n') {
        println!();
    }
    Ok(())
}

/// `meshlab mesh-config set KEY=VALUE`.
pub async fn set_mesh_config(client: &Client, setting: &str) -> anyhow::Result<()> {
    let Some((key, value)) = setting.split_once('=') else {
        bail!("expected KEY=VALUE, e.g. outboundTrafficPolicy.mode=REGISTRY_ONLY");
    };
    let set = meshlab_control::api::MeshConfigSet {
        key: key.trim().to_owned(),
        value: value.trim().to_owned(),
    };
    let lines: Lines = client
        .post("/api/v1/mesh-config", &set)
        .await
        .map_err(refused)?;
    for line in &lines.lines {
        println!("{line}");
    }
    Ok(())
}

/// `meshlab create secret generic NAME --from-file=[KEY=]PATH --from-literal=KEY=VALUE`:
/// an Opaque Secret document.
pub fn generic_secret(
    name: &str,
    from_file: &[String],
    from_literal: &[String],
) -> anyhow::Result<serde_json::Value> {
    use base64::Engine as _;
    let mut data = serde_json::Map::new();
    for source in from_file {
        let (key, path) = match source.split_once('=') {
            Some((key, path)) => (key.to_owned(), PathBuf::from(path)),
            None => {
                let path = PathBuf::from(source);
                let key = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .with_context(|| format!("--from-file={source}: no file name to use as the key (hint: write KEY=PATH)"))?;
                (key, path)
            }
        };
        let bytes = std::fs::read(&path)
            .with_context(|| format!("--from-file={source}: cannot read {}", path.display()))?;
        let value = base64::engine::general_purpose::STANDARD.encode(bytes);
        if data.insert(key.clone(), value.into()).is_some() {
            bail!("cannot add key {key}, another key by that name already exists");
        }
    }
    for literal in from_literal {
        let Some((key, value)) = literal.split_once('=') else {
            bail!("--from-literal={literal}: expected KEY=VALUE");
        };
        let value = base64::engine::general_purpose::STANDARD.encode(value);
        if data.insert(key.to_owned(), value.into()).is_some() {
            bail!("cannot add key {key}, another key by that name already exists");
        }
    }
    Ok(secret_document(name, "Opaque", data))
}

/// `meshlab create secret tls NAME --cert=FILE --key=FILE`: a `kubernetes.io/tls`
/// Secret document (`tls.crt`, `tls.key`).
pub fn tls_secret(name: &str, cert: &Path, key: &Path) -> anyhow::Result<serde_json::Value> {
    use base64::Engine as _;
    let read = |path: &Path, what: &str, marker: &str| -> anyhow::Result<String> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the {what} {}", path.display()))?;
        if !text.contains(marker) {
            bail!(
                "failed to load key pair: no PEM {what} in {} (hint: pass PEM files, as openssl writes them)",
                path.display()
            );
        }
        Ok(base64::engine::general_purpose::STANDARD.encode(text))
    };
    let mut data = serde_json::Map::new();
    data.insert(
        "tls.crt".into(),
        read(cert, "certificate", "-----BEGIN CERTIFICATE-----")?.into(),
    );
    data.insert(
        "tls.key".into(),
        read(key, "private key", "PRIVATE KEY-----")?.into(),
    );
    Ok(secret_document(name, "kubernetes.io/tls", data))
}

fn secret_document(
    name: &str,
    secret_type: &str,
    data: serde_json::Map<String, serde_json::Value>,
) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": name },
        "type": secret_type,
        "data": serde_json::Value::Object(data),
    })
}

/// Creates the Secret `document` in `namespace`; like `kubectl create`, an
/// existing one is an error rather than replaced.
pub async fn create_secret(
    client: &Client,
    document: serde_json::Value,
    namespace: Option<String>,
) -> anyhow::Result<()> {
    let name = document["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut path = format!("/api/v1/get?kind=secret&name={}", encode(&name));
    if let Some(namespace) = &namespace {
        path.push_str(&format!("&namespace={}", encode(namespace)));
    }
    if client.get::<Text>(&path).await.is_ok() {
        eprintln!(
            "Error from server (AlreadyExists): secrets {name:?} already exists (hint: `meshlab delete secret {name}` first, or apply a manifest to change it)"
        );
        return Err(anyhow::Error::new(Reported));
    }
    let request = ManifestsRequest {
        manifests: vec![Manifest {
            file: format!("secret/{name}"),
            yaml: serde_json::to_string_pretty(&document)?,
        }],
        namespace,
    };
    let lines: Lines = client
        .post("/api/v1/apply", &request)
        .await
        .map_err(refused)?;
    for line in &lines.lines {
        println!("{line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generic_secret_keys_files_by_name_and_encodes_literals() {
        let dir = std::env::temp_dir().join(format!("meshlab-secret-doc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ca.crt");
        std::fs::write(&file, "CA").unwrap();
        let document = generic_secret(
            "example-ca",
            &[file.display().to_string()],
            &["greeting=hi".to_owned()],
        )
        .unwrap();
        assert_eq!(
            document,
            serde_json::json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "example-ca"},
                "type": "Opaque",
                "data": {"ca.crt": "Q0E=", "greeting": "aGk="},
            })
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
