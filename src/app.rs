//! The application: `AppState` (cheap to clone), the router with its layers, serving
//! with graceful shutdown on Ctrl-C or SIGTERM.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::auth::Auth;
use crate::config::Settings;
use crate::store::{StartError, Store};

/// What every handler shares: the store, the key table and a few settings.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    store: Store,
    auth: Auth,
    max_body_bytes: usize,
}

impl AppState {
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub fn auth(&self) -> &Auth {
        &self.0.auth
    }

    pub fn max_body_bytes(&self) -> usize {
        self.0.max_body_bytes
    }
}

/// Connects to Redis (checking its settings and loading the scripts) and builds the router.
pub async fn build(settings: &Settings) -> Result<Router, StartError> {
    let store = Store::connect(settings.store.clone()).await?;
    let state = AppState(Arc::new(Inner {
        store,
        auth: settings.auth.clone(),
        max_body_bytes: settings.max_body_bytes,
    }));
    Ok(crate::api::router()
        .with_state(state)
        // Bodies are read and limited by `api::extract::Write`, which answers problem+json.
        .layer(DefaultBodyLimit::disable())
        .layer(TraceLayer::new_for_http()))
}

/// Serves until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
