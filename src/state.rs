//! `AppState`: what every handler shares (the store, the key table and a few settings),
//! cheap to clone. Routers import it from here; `app` builds it and the router.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::Auth;
use crate::metrics::Metrics;
use crate::names::Tenant;
use crate::store::{Quotas, RateLimit, Store};

/// What every handler shares: the store, the key table and a few settings.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    store: Store,
    metrics: Metrics,
    auth: Auth,
    max_body_bytes: usize,
    rate_limit: Option<RateLimit>,
    stream_max: Duration,
    body_timeout: Duration,
}

impl AppState {
    pub fn new(
        store: Store,
        metrics: Metrics,
        auth: Auth,
        max_body_bytes: usize,
        rate_limit: Option<RateLimit>,
        stream_max: Duration,
        body_timeout: Duration,
    ) -> AppState {
        AppState(Arc::new(Inner {
            store,
            metrics,
            auth,
            max_body_bytes,
            rate_limit,
            stream_max,
            body_timeout,
        }))
    }

    /// How long a request's body may take to arrive.
    pub fn body_timeout(&self) -> Duration {
        self.0.body_timeout
    }

    /// How long a live event stream lasts at most.
    pub fn stream_max(&self) -> Duration {
        self.0.stream_max
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    pub fn auth(&self) -> &Auth {
        &self.0.auth
    }

    /// The limits a tenant's writes are held to.
    pub fn quotas(&self, tenant: &Tenant) -> Quotas {
        self.0.auth.quotas(tenant)
    }

    pub fn max_body_bytes(&self) -> usize {
        self.0.max_body_bytes
    }

    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.0.rate_limit
    }
}
