//! The dashboard at `/ui/`: one static page (HTML, CSS and plain JavaScript, no build
//! step) compiled into the binary, so every replica serves it and nothing else has to
//! be deployed.
//!
//! The page holds no data of its own and has no server side: the browser reads the
//! public API (`/v1/pools…` with the operator's key, `/metrics` without) every few
//! seconds and follows one pool's event stream (`fetch`, since `EventSource` cannot send
//! the key), so it sees exactly what any client would, under the same keys and limits.
//! What the browser may do is pinned by a strict Content-Security-Policy: scripts,
//! styles and requests from this origin only, nothing inline, no frames.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;

/// Only the page's own files and its own origin's API (`connect-src` covers the event
/// stream, read with `fetch`); no inline script or style (so a name that slipped through
/// unescaped still could not run), no frames, no forms.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// One embedded file, with a validator derived from its bytes at compile time, so a
/// browser revalidates cheaply and a new binary's page is never served from a cache.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    etag: &'static str,
}

/// FNV-1a: not a security measure, only a compile-time fingerprint for the ETag.
const fn fingerprint(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

/// The ETag `"<16 hex digits>"` of `body`, built at compile time.
const fn etag(body: &str) -> [u8; 18] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hash = fingerprint(body.as_bytes());
    let mut out = [b'"'; 18];
    let mut i = 0;
    while i < 16 {
        out[1 + i] = HEX[((hash >> (60 - 4 * i)) & 0xf) as usize];
        i += 1;
    }
    out
}

macro_rules! asset {
    ($file:literal, $content_type:literal) => {{
        const BODY: &str = include_str!($file);
        const TAG: [u8; 18] = etag(BODY);
        Asset {
            body: BODY,
            content_type: $content_type,
            etag: match std::str::from_utf8(&TAG) {
                Ok(tag) => tag,
                Err(_) => panic!("an ETag is ASCII"),
            },
        }
    }};
}

const INDEX: Asset = asset!("index.html", "text/html; charset=utf-8");
const SCRIPT: Asset = asset!("app.js", "text/javascript; charset=utf-8");
const STYLE: Asset = asset!("style.css", "text/css; charset=utf-8");

/// `/ui` redirects to `/ui/`, the page itself; its files sit beside it, referred to by
/// relative URLs, so the dashboard also works behind a proxy that adds a path prefix.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(root))
        .route("/ui", get(to_index))
        .route(
            "/ui/",
            get(|headers: HeaderMap| async move { serve(&INDEX, &headers) }),
        )
        .route(
            "/ui/app.js",
            get(|headers: HeaderMap| async move { serve(&SCRIPT, &headers) }),
        )
        .route(
            "/ui/style.css",
            get(|headers: HeaderMap| async move { serve(&STYLE, &headers) }),
        )
}

/// `/`: a browser (asking for HTML) is sent to the dashboard; anyone else gets where
/// things are, as JSON.
async fn root(headers: HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_html {
        return (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, HeaderValue::from_static("ui/"))],
        )
            .into_response();
    }
    let index = serde_json::json!({
        "name": "Leasehold",
        "dashboard": "/ui/",
        "docs": "/docs",
        "openapi": "/openapi.json",
        "health": "/healthz",
        "ready": "/readyz",
        "metrics": "/metrics",
        "api": "/v1/pools",
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        index.to_string(),
    )
        .into_response()
}

/// A relative `Location` (`ui/` from `/ui`), so a path prefix added by a proxy is kept;
/// the browser carries a `#key=` fragment over to the new URL.
async fn to_index() -> Response {
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, HeaderValue::from_static("ui/"))],
    )
        .into_response()
}

/// The file, or 304 when the browser's copy is current; always revalidated
/// (`no-cache`), since the page changes with the binary, not with time.
fn serve(asset: &Asset, headers: &HeaderMap) -> Response {
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == asset.etag)
        });
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.body,
        )
            .into_response()
    };
    let out = response.headers_mut();
    out.insert(header::ETAG, HeaderValue::from_static(asset.etag));
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    out.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    out.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_quoted_hex_and_differ_between_files() {
        for asset in [&INDEX, &SCRIPT, &STYLE] {
            assert_eq!(asset.etag.len(), 18);
            assert!(asset.etag.starts_with('"') && asset.etag.ends_with('"'));
            assert!(asset.etag[1..17].bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_ne!(INDEX.etag, SCRIPT.etag);
        assert_ne!(SCRIPT.etag, STYLE.etag);
    }
}
