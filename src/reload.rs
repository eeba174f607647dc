//! Applying a changed config to a running server without dropping a
//! connection: routes and their handlers, the route selection expression,
//! the `$connect` authorizer, throttling, the access log format and the
//! `[[credentials]]` keys. What cannot change in place (the address, the
//! name, the stage, the domain, limits, the cluster...) is named, so the
//! operator knows a restart is needed.

use crate::api::{BuildError, Server, WebSocketApi};
use crate::config::Config;
use crate::gateway::throttle::TokenBucket;
use crate::gateway::{Route, Routing};
use crate::integrations::function::Hosting;
use std::collections::HashMap;
use std::sync::Arc;

/// What a reload did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Routes added, changed (new handler or settings) and removed.
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// Other settings applied in place (e.g. "throttling").
    pub settings: Vec<&'static str>,
}

impl Applied {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.changed.is_empty()
            && self.removed.is_empty()
            && self.settings.is_empty()
    }
}

impl Server {
    /// Applies `new` (the config `old` was) to this server. Unchanged
    /// routes keep their integration and warm function instances; changed
    /// ones are built and pass their start-up check first, and if any
    /// fails nothing changes. Messages being handled finish on the routing
    /// they started with; the replaced instances end after them.
    pub async fn reload(
        &self,
        old: &Config,
        new: &Config,
        hosting: &Hosting,
    ) -> Result<Applied, BuildError> {
        let gateway = self.gateway();
        let current = gateway.routing();
        let mut applied = Applied::default();
        let built =
            WebSocketApi::handlers_from_config(new, hosting, Arc::clone(&gateway.auth.keyring))?;
        built.set_outputs(self.outputs());
        let (built_routes, built_auth) = built.into_handlers();

        let old_routes: HashMap<&str, _> = old.routes.iter().map(|r| (r.key.as_str(), r)).collect();
        let mut routes = HashMap::new();
        for route in &new.routes {
            let key = route.key.clone();
            let kept = old_routes
                .get(key.as_str())
                .filter(|before| same_route(before, route))
                .and_then(|_| current.routes.get(&key));
            match kept {
                Some(kept) => {
                    routes.insert(key, kept.clone());
                }
                None => {
                    let fresh: Route = built_routes
                        .get(&key)
                        .cloned()
                        .expect("every config route is built");
                    fresh
                        .integration
                        .check()
                        .await
                        .map_err(|why| BuildError::Route {
                            at: format!("{}:{}: ", new.file.display(), route.line),
                            key: key.clone(),
                            why,
                        })?;
                    match old_routes.contains_key(key.as_str()) {
                        true => applied.changed.push(key.clone()),
                        false => applied.added.push(key.clone()),
                    }
                    routes.insert(key, fresh);
                }
            }
        }
        applied.removed = old
            .routes
            .iter()
            .filter(|r| !routes.contains_key(&r.key))
            .map(|r| r.key.clone())
            .collect();

        let connect_auth = if same_connect_auth(old, new) {
            current.connect_auth.clone()
        } else {
            if let Some(crate::gateway::ConnectAuth::Lambda(authorizer)) = &built_auth {
                authorizer
                    .integration
                    .check()
                    .await
                    .map_err(|why| BuildError::Route {
                        at: String::new(),
                        key: format!("$connect authorizer {}", authorizer.name),
                        why,
                    })?;
            }
            applied.settings.push("$connect auth");
            built_auth
        };
        let throttle = if old.limits.throttle == new.limits.throttle {
            current.throttle.clone()
        } else {
            applied.settings.push("throttling");
            new.limits.throttle.map(|t| Arc::new(TokenBucket::new(t)))
        };
        if old.route_selection_expression != new.route_selection_expression {
            applied.settings.push("route selection expression");
        }
        let selector =
            crate::gateway::router::RouteSelector::parse(&new.route_selection_expression)
                .map_err(BuildError::Selector)?;

        // Everything is built and checked: from here on nothing fails.
        gateway.routing.store(Arc::new(Routing::new(
            routes,
            selector,
            connect_auth,
            throttle,
        )));
        if let Some(log) = &gateway.access_log
            && old.access_log_format != new.access_log_format
        {
            log.set_format(new.access_log_format.clone());
            applied.settings.push("access log format");
        }
        if credentials_differ(old, new) {
            let keyring = &gateway.auth.keyring;
            // The key generated for a config without any goes once the
            // config names its own.
            if old.credentials.is_empty()
                && let Some(generated) = self.generated_credentials()
            {
                keyring.remove(&generated.access_key_id);
            }
            for gone in &old.credentials {
                if !new
                    .credentials
                    .iter()
                    .any(|k| k.access_key_id == gone.access_key_id)
                {
                    keyring.remove(&gone.access_key_id);
                }
            }
            for key in &new.credentials {
                keyring.insert_user(
                    &key.access_key_id,
                    &key.secret_access_key,
                    &key.user,
                    crate::auth::policy::Policy {
                        allow: key.allow.clone(),
                        deny: Vec::new(),
                    },
                );
            }
            applied.settings.push("credentials");
        }
        Ok(applied)
    }
}

/// Whether a route's handler and settings are the same (where it is
/// written in the file is not part of it).
fn same_route(a: &crate::config::RouteConfig, b: &crate::config::RouteConfig) -> bool {
    crate::config::RouteConfig {
        line: 0,
        ..a.clone()
    } == crate::config::RouteConfig {
        line: 0,
        ..b.clone()
    }
}

/// Whether `$connect` is authorized the same way, by the same authorizer.
fn same_connect_auth(old: &Config, new: &Config) -> bool {
    let auth = |c: &Config| {
        let route = c.routes.iter().find(|r| r.key == "$connect");
        let auth = route.and_then(|r| r.auth.clone());
        let authorizer = match &auth {
            Some(crate::config::RouteAuth::Lambda(name)) => {
                c.authorizers.iter().find(|a| a.name == *name).map(|a| {
                    (
                        a.identity_sources.clone(),
                        crate::config::RouteConfig {
                            line: 0,
                            ..a.handler.clone()
                        },
                    )
                })
            }
            _ => None,
        };
        (auth, authorizer)
    };
    auth(old) == auth(new)
}

/// Whether `new` could let in what `old` keeps out: `$connect`'s auth
/// or its authorizer changed, or a key was added or given more (only
/// taking keys away is not). Such a reload waits for the file to settle.
pub fn may_weaken_auth(old: &Config, new: &Config) -> bool {
    let kept = |k: &crate::config::CredentialConfig| {
        old.credentials.iter().any(|o| {
            o.access_key_id == k.access_key_id
                && o.secret_access_key == k.secret_access_key
                && o.user == k.user
                && o.allow == k.allow
        })
    };
    !same_connect_auth(old, new) || !new.credentials.iter().all(kept)
}

fn credentials_differ(old: &Config, new: &Config) -> bool {
    let keys = |c: &Config| {
        c.credentials
            .iter()
            .map(|k| {
                (
                    k.access_key_id.clone(),
                    k.secret_access_key.clone(),
                    k.user.clone(),
                    format!("{:?}", k.allow),
                )
            })
            .collect::<Vec<_>>()
    };
    keys(old) != keys(new)
}

/// Makes `new` keep what is fixed while serving (the address, the name,
/// the domain, limits...): those settings keep their running values, so
/// the config kept for the next reload is the one in force. Returns the
/// ones that changed, which apply at the next start. Taking every key
/// away is one of them: a start would generate one, a reload cannot hand
/// it out.
pub fn keep_fixed_settings(running: &Config, new: &mut Config) -> Vec<&'static str> {
    let changed = restart_only_changes(running, new);
    new.name.clone_from(&running.name);
    new.stage.clone_from(&running.stage);
    new.listen = running.listen;
    new.region.clone_from(&running.region);
    new.api_id.clone_from(&running.api_id);
    new.binary = running.binary;
    new.domain.clone_from(&running.domain);
    new.local_tls = running.local_tls;
    new.cluster.clone_from(&running.cluster);
    new.access_log_retention = running.access_log_retention;
    new.limits = crate::gateway::limits::Limits {
        throttle: new.limits.throttle,
        ..running.limits.clone()
    };
    if new.credentials.is_empty() {
        new.credentials.clone_from(&running.credentials);
    }
    changed
}

/// The settings that changed but are fixed while serving.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut check = |differs: bool, what: &'static str| {
        if differs {
            changed.push(what);
        }
    };
    check(
        new.credentials.is_empty() && !old.credentials.is_empty(),
        "removing every [[credentials]] key",
    );
    check(old.name != new.name, "name");
    check(old.stage != new.stage, "stage");
    check(old.listen != new.listen, "listen");
    check(old.region != new.region, "region");
    check(old.api_id != new.api_id, "transform.api.api_id");
    check(old.binary != new.binary, "binary");
    check(old.domain != new.domain, "domain");
    check(old.local_tls != new.local_tls, "tls");
    check(old.cluster != new.cluster, "cluster");
    check(
        old.access_log_retention != new.access_log_retention,
        "access_log.retention",
    );
    let limits = |c: &Config| crate::gateway::limits::Limits {
        throttle: None,
        ..c.limits.clone()
    };
    check(limits(old) != limits(new), "transform.stage limits");
    changed
}
