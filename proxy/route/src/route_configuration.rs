//! A route configuration (one RDS resource) and route selection.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::{domain::strip_port, request::RequestHead, route::Route, virtual_host::VirtualHost};

/// A route configuration (Envoy's `RouteConfiguration`), named as Istio names them:
/// `9080` or `http.8080` for outbound HTTP ports,
/// `inbound|9080||reviews.default.svc.cluster.local` for inbound ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteConfiguration {
    /// The resource name.
    pub name: String,
    /// Virtual hosts; at most one per domain.
    pub virtual_hosts: Vec<VirtualHost>,
    /// Envoy's `ignore_port_in_host_matching`: strip the port from the authority
    /// before matching domains (Istio sets it for Gateway API gateways).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_port_in_host_matching: bool,
}

/// The virtual host and route chosen for a request.
#[derive(Clone, Copy, Debug)]
pub struct Selected<'c> {
    /// The virtual host whose domain matched the authority.
    pub virtual_host: &'c VirtualHost,
    /// The first route of that virtual host that matched the request.
    pub route: &'c Route,
}

// === impl RouteConfiguration ===

impl RouteConfiguration {
    /// The virtual host and route for `request`, as Envoy picks them: the virtual
    /// host by authority (exact, then longest suffix wildcard, then longest prefix
    /// wildcard, then `*`; see [`crate::domain`]), then the **first** of its routes
    /// that matches. `None` means Envoy's 404 with response flag `NR` (answering is
    /// the caller's job); Envoy does not try other virtual hosts when the chosen one
    /// has no matching route.
    pub fn select(&self, request: &RequestHead<'_>) -> Option<Selected<'_>> {
        let virtual_host = self.virtual_host_for(request.authority)?;
        let route = virtual_host.route_for(request)?;
        Some(Selected {
            virtual_host,
            route,
        })
    }

    /// The virtual host Envoy picks for `authority`, if any.
    pub fn virtual_host_for(&self, authority: &str) -> Option<&VirtualHost> {
        let authority = if self.ignore_port_in_host_matching {
            strip_port(authority)
        } else {
            authority
        };
        let host = if authority.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(authority.to_ascii_lowercase())
        } else {
            Cow::Borrowed(authority)
        };
        self.virtual_hosts
            .iter()
            .filter_map(|virtual_host| Some((virtual_host.specificity(&host)?, virtual_host)))
            .min_by_key(|(specificity, _)| *specificity)
            .map(|(_, virtual_host)| virtual_host)
    }
}

#[cfg(test)]
mod tests;
