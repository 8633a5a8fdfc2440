//! The manifests meshlab applies by itself, written in the shape of Istio's samples so
//! that what a learner sees with `meshlab get` matches what the Istio docs show.

/// A manifest file shipped inside the binary.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// The file name, used in apply messages and error locations.
    pub file: &'static str,
    /// The YAML text.
    pub yaml: &'static str,
}

/// Namespace `default`, labelled `istio-injection=enabled`.
pub const NAMESPACE_DEFAULT: Sample = Sample {
    file: "namespace-default.yaml",
    yaml: include_str!("../samples/namespace-default.yaml"),
};

/// Bookinfo as Istio's `bookinfo.yaml` declares it.
pub const BOOKINFO: Sample = Sample {
    file: "bookinfo.yaml",
    yaml: include_str!("../samples/bookinfo.yaml"),
};

/// The `sleep` client as Istio's `sleep.yaml` declares it.
pub const SLEEP: Sample = Sample {
    file: "sleep.yaml",
    yaml: include_str!("../samples/sleep.yaml"),
};

/// httpbin as Istio's `httpbin.yaml` declares it (the security tasks' server).
pub const HTTPBIN: Sample = Sample {
    file: "httpbin.yaml",
    yaml: include_str!("../samples/httpbin.yaml"),
};

/// The ingress gateway in `istio-system`, as Istio's default profile installs it.
pub const INGRESS_GATEWAY: Sample = Sample {
    file: "istio-ingressgateway.yaml",
    yaml: include_str!("../samples/istio-ingressgateway.yaml"),
};
