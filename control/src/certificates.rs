//! The certificate service on the discovery port (15010): Istio's
//! `IstioCertificateService.CreateCertificate`, in front of the [`MeshCa`].
//!
//! The caller authenticates with its pod token in the `authorization: Bearer …`
//! metadata; the answer is the workload certificate and the root, or a gRPC status
//! that says why not (UNAUTHENTICATED for a bad token, PERMISSION_DENIED for a CSR
//! naming another identity, INVALID_ARGUMENT for a CSR that does not parse). Each
//! certificate issued is remembered per pod, newest only, so `meshlab proxy-config
//! secret` can show what a proxy holds.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use meshlab_control_api::v1::{
    IstioCertificateRequest, IstioCertificateResponse,
    istio_certificate_service_server::{IstioCertificateService, IstioCertificateServiceServer},
};
use tonic::{Request, Response, Status};

use crate::ca::{CaError, Issued, MeshCa};

/// The certificates issued, by `(namespace, pod)`: the newest of each pod, kept in
/// a file of the state volume so a restarted control plane still shows what each
/// proxy holds (proxies keep their certificates across the restart).
#[derive(Debug, Default)]
pub struct IssuedCertificates {
    by_pod: Mutex<BTreeMap<String, Issued>>,
    file: Option<PathBuf>,
}

impl IssuedCertificates {
    /// The record kept in `file`, empty when there is none yet (or it is unreadable,
    /// which is logged: proxies renew their certificates, refilling it).
    pub fn open(file: PathBuf) -> Self {
        let by_pod = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|err| {
                tracing::warn!(file = %file.display(), %err, "ignoring an unreadable record of issued certificates");
                BTreeMap::new()
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(err) => {
                tracing::warn!(file = %file.display(), %err, "cannot read the record of issued certificates");
                BTreeMap::new()
            }
        };
        IssuedCertificates {
            by_pod: Mutex::new(by_pod),
            file: Some(file),
        }
    }

    /// The newest certificate issued to `pod` in `namespace`.
    pub fn get(&self, namespace: &str, pod: &str) -> Option<Issued> {
        self.lock().get(&key(namespace, pod)).cloned()
    }

    fn record(&self, namespace: &str, pod: &str, issued: Issued) {
        let mut by_pod = self.lock();
        by_pod.insert(key(namespace, pod), issued);
        let Some(file) = &self.file else { return };
        let temp = file.with_extension("tmp");
        let written = serde_json::to_vec(&*by_pod)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&temp, bytes))
            .and_then(|()| std::fs::rename(&temp, file));
        if let Err(err) = written {
            tracing::warn!(file = %file.display(), %err, "cannot keep the record of issued certificates");
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Issued>> {
        self.by_pod
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn key(namespace: &str, pod: &str) -> String {
    format!("{namespace}/{pod}")
}

/// The gRPC service.
#[derive(Debug, Clone)]
pub struct CertificateService {
    ca: Arc<MeshCa>,
    issued: Arc<IssuedCertificates>,
}

impl CertificateService {
    /// A service signing with `ca`, remembering what it issues in `issued`.
    pub fn new(ca: Arc<MeshCa>, issued: Arc<IssuedCertificates>) -> Self {
        CertificateService { ca, issued }
    }

    /// The tonic server for it.
    pub fn into_server(self) -> IstioCertificateServiceServer<Self> {
        IstioCertificateServiceServer::new(self)
    }

    /// Signs one request (the RPC without the transport), for tests.
    pub fn create(
        &self,
        token: Option<&str>,
        request: &IstioCertificateRequest,
    ) -> Result<Issued, Status> {
        let token = token.ok_or_else(|| {
            Status::unauthenticated("no pod token (send `authorization: Bearer TOKEN`)")
        })?;
        let ttl = u64::try_from(request.validity_duration)
            .ok()
            .filter(|s| *s > 0)
            .map(Duration::from_secs);
        let identity = self.ca.tokens().verify(token);
        match self.ca.sign(token, &request.csr, ttl) {
            Ok(issued) => {
                if let Ok(identity) = identity {
                    self.issued
                        .record(&identity.namespace, &identity.pod, issued.clone());
                }
                Ok(issued)
            }
            Err(err) => {
                tracing::warn!(%err, "refused a certificate signing request");
                Err(match err {
                    CaError::Token(_) => Status::unauthenticated(err.to_string()),
                    CaError::WrongIdentity { .. } => Status::permission_denied(err.to_string()),
                    CaError::Csr(_) => Status::invalid_argument(err.to_string()),
                    CaError::Sign(_) => Status::internal(err.to_string()),
                })
            }
        }
    }
}

#[tonic::async_trait]
impl IstioCertificateService for CertificateService {
    async fn create_certificate(
        &self,
        request: Request<IstioCertificateRequest>,
    ) -> Result<Response<IstioCertificateResponse>, Status> {
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        let issued = self.create(token.as_deref(), request.get_ref())?;
        Ok(Response::new(IstioCertificateResponse {
            cert_chain: issued.chain,
        }))
    }
}
