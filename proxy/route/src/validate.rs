//! Checks a route configuration the way Envoy checks it before accepting it.
//!
//! A proxy that gets a configuration failing these checks NACKs it with the
//! error's text and keeps serving its last good one, as Envoy does. Regexes and
//! rewrite substitutions are already checked when they are built
//! ([`crate::Pattern`], [`crate::RegexRewrite`]).

use std::{collections::HashMap, fmt};

use crate::{
    action::{Action, ClusterSpecifier},
    domain::Domain,
    header::HeaderOps,
    route::Route,
    route_configuration::RouteConfiguration,
    virtual_host::VirtualHost,
};

/// A route configuration Envoy would reject, and where.
#[derive(Debug, thiserror::Error)]
#[error("{location}: {problem}")]
pub struct InvalidRouteConfiguration {
    /// Where the problem is.
    pub location: Box<Location>,
    /// What it is.
    pub problem: Problem,
}

/// Where in a route configuration a problem is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The route configuration's name.
    pub route_configuration: String,
    /// The virtual host's name, if the problem is inside one.
    pub virtual_host: Option<String>,
    /// The route's position, name and origin, if the problem is inside one.
    pub route: Option<(usize, String, String)>,
}

/// What is wrong.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Problem {
    /// Two virtual hosts (or one, twice) list the same domain; Envoy accepts each
    /// domain once per route configuration.
    #[error("domain {domain:?} is already served by virtual host {first:?}")]
    DuplicateDomain {
        /// The domain.
        domain: String,
        /// The virtual host that listed it first.
        first: String,
    },
    /// A virtual host without domains can never be chosen; Envoy requires one.
    #[error("virtual host has no domains")]
    NoDomains,
    /// A route forwards to a cluster with an empty name.
    #[error("route forwards to a cluster with an empty name")]
    EmptyClusterName,
    /// Weighted clusters whose weights are all 0 (or that list no cluster).
    #[error(
        "weighted clusters have a total weight of 0 (hint: give at least one destination a weight)"
    )]
    ZeroTotalWeight,
    /// A redirect code Envoy cannot send.
    #[error("redirect code {0} is not one of 301, 302, 303, 307, 308")]
    RedirectCode(u16),
    /// A fault abort or direct response status outside 200–599.
    #[error("{what} status {status} is outside 200-599")]
    Status {
        /// `fault abort` or `direct response`.
        what: &'static str,
        /// The status.
        status: u16,
    },
    /// A percentage outside 0–100.
    #[error("{what} percentage {percent} is outside 0-100")]
    Percent {
        /// `fault delay`, `fault abort` or `mirror`.
        what: &'static str,
        /// The percentage.
        percent: f64,
    },
    /// A header operation on `host`, which only a host rewrite may change.
    #[error("header {0:?} cannot be set, added or removed (hint: rewrite the authority instead)")]
    HostHeader(String),
    /// A retry back-off with a zero base or a max below the base.
    #[error("retry back-off base must be above 0 and at most the max interval")]
    Backoff,
}

// === impl RouteConfiguration ===

impl RouteConfiguration {
    /// Checks this configuration as Envoy would before accepting it.
    pub fn validate(&self) -> Result<(), InvalidRouteConfiguration> {
        let mut owners: HashMap<&Domain, &str> = HashMap::new();
        for virtual_host in &self.virtual_hosts {
            let at_host = |problem| InvalidRouteConfiguration {
                location: Box::new(Location {
                    route_configuration: self.name.clone(),
                    virtual_host: Some(virtual_host.name.clone()),
                    route: None,
                }),
                problem,
            };
            if virtual_host.domains.is_empty() {
                return Err(at_host(Problem::NoDomains));
            }
            for domain in &virtual_host.domains {
                if let Some(first) = owners.insert(domain, &virtual_host.name) {
                    return Err(at_host(Problem::DuplicateDomain {
                        domain: domain.to_string(),
                        first: first.to_owned(),
                    }));
                }
            }
            self.validate_routes(virtual_host)?;
        }
        Ok(())
    }

    fn validate_routes(&self, virtual_host: &VirtualHost) -> Result<(), InvalidRouteConfiguration> {
        for (index, route) in virtual_host.routes.iter().enumerate() {
            validate_route(route).map_err(|problem| InvalidRouteConfiguration {
                location: Box::new(Location {
                    route_configuration: self.name.clone(),
                    virtual_host: Some(virtual_host.name.clone()),
                    route: Some((index, route.name.clone(), route.origin.clone())),
                }),
                problem,
            })?;
        }
        Ok(())
    }
}

fn validate_route(route: &Route) -> Result<(), Problem> {
    validate_headers(&route.request_headers)?;
    validate_headers(&route.response_headers)?;
    if let Some(fault) = &route.fault {
        if let Some(delay) = &fault.delay {
            percent("fault delay", delay.percent)?;
        }
        if let Some(abort) = &fault.abort {
            status("fault abort", abort.http_status)?;
            percent("fault abort", abort.percent)?;
        }
    }
    match &route.action {
        Action::Route(action) => {
            match &action.cluster {
                ClusterSpecifier::Cluster(name) if name.is_empty() => {
                    return Err(Problem::EmptyClusterName);
                }
                ClusterSpecifier::Cluster(_) => {}
                ClusterSpecifier::Weighted(clusters) => {
                    if action.cluster.total_weight() == 0 {
                        return Err(Problem::ZeroTotalWeight);
                    }
                    for cluster in clusters {
                        if cluster.name.is_empty() {
                            return Err(Problem::EmptyClusterName);
                        }
                        validate_headers(&cluster.request_headers)?;
                        validate_headers(&cluster.response_headers)?;
                    }
                }
            }
            for mirror in &action.mirrors {
                if mirror.cluster.is_empty() {
                    return Err(Problem::EmptyClusterName);
                }
                percent("mirror", mirror.percent)?;
            }
            if let Some(retry) = &action.retry
                && (retry.backoff.base.is_zero() || retry.backoff.max < retry.backoff.base)
            {
                return Err(Problem::Backoff);
            }
        }
        Action::Redirect(redirect) => {
            if ![301, 302, 303, 307, 308].contains(&redirect.response_code) {
                return Err(Problem::RedirectCode(redirect.response_code));
            }
        }
        Action::Direct { status: code, .. } => status("direct response", *code)?,
        Action::NonForwarding => {}
    }
    Ok(())
}

fn validate_headers(ops: &HeaderOps) -> Result<(), Problem> {
    match ops.names().find(|name| **name == http::header::HOST) {
        Some(name) => Err(Problem::HostHeader(name.as_str().to_owned())),
        None => Ok(()),
    }
}

fn status(what: &'static str, status: u16) -> Result<(), Problem> {
    if (200..600).contains(&status) {
        Ok(())
    } else {
        Err(Problem::Status { what, status })
    }
}

fn percent(what: &'static str, percent: f64) -> Result<(), Problem> {
    if (0.0..=100.0).contains(&percent) {
        Ok(())
    } else {
        Err(Problem::Percent { what, percent })
    }
}

// === impl Location ===

impl fmt::Display for Location {
    /// `route configuration "9080", virtual host "reviews…:9080", route #1 "name" (VirtualService/default/reviews#1)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "route configuration {:?}", self.route_configuration)?;
        if let Some(virtual_host) = &self.virtual_host {
            write!(f, ", virtual host {virtual_host:?}")?;
        }
        if let Some((index, name, origin)) = &self.route {
            write!(f, ", route #{index}")?;
            if !name.is_empty() {
                write!(f, " {name:?}")?;
            }
            if !origin.is_empty() {
                write!(f, " ({origin})")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
