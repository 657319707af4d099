//! `ApiError`: one variant per problem, and the single place where a problem becomes an
//! HTTP status, a stable `code` and an `application/problem+json` body (RFC 9457).
//!
//! Expected refusals decided inside Redis (a lease lost, a version conflict, …) arrive as
//! a [`Refusal`] decoded by `store`; internal faults are logged here with their cause and
//! answered with a generic body, so no Redis error text ever reaches a client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::metrics::Conflict;

/// What an item looked like when a request was refused, so the caller can show "now
/// assigned to Jane" and retry from fresh state. A missing item has version 0.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct Current {
    pub version: u64,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub holder: Option<String>,
}

/// The refusals a script can answer with, by their stable problem code.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// 404: the pool, item or counter does not exist.
    NotFound,
    /// 409: the item is leased by another holder.
    AlreadyLeased,
    /// 409: the lease has expired, was released, or the token is not the current one.
    LeaseLost,
    /// 409: `expected_version` does not match the item's version.
    VersionConflict,
    /// 409: the holder already has `max_leases_per_holder` leases in this pool.
    HolderAtCapacity,
    /// 409: the item is `done` or `dead`; requeue it first.
    InvalidState,
    /// 409: this `Idempotency-Key` was used before for a different request.
    IdempotencyKeyReused,
    /// 412: `If-Match` / `If-None-Match` did not hold.
    PreconditionFailed,
    /// 428: the pool requires a precondition on writes and none was given.
    PreconditionRequired,
}

impl RefusalCode {
    /// Every refusal, so the API description can list them all.
    pub const ALL: [RefusalCode; 9] = [
        RefusalCode::NotFound,
        RefusalCode::AlreadyLeased,
        RefusalCode::LeaseLost,
        RefusalCode::VersionConflict,
        RefusalCode::HolderAtCapacity,
        RefusalCode::InvalidState,
        RefusalCode::IdempotencyKeyReused,
        RefusalCode::PreconditionFailed,
        RefusalCode::PreconditionRequired,
    ];

    fn status(self) -> StatusCode {
        match self {
            RefusalCode::NotFound => StatusCode::NOT_FOUND,
            RefusalCode::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            RefusalCode::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            RefusalCode::AlreadyLeased
            | RefusalCode::LeaseLost
            | RefusalCode::VersionConflict
            | RefusalCode::HolderAtCapacity
            | RefusalCode::InvalidState
            | RefusalCode::IdempotencyKeyReused => StatusCode::CONFLICT,
        }
    }

    fn detail(self) -> &'static str {
        match self {
            RefusalCode::NotFound => "no such resource",
            RefusalCode::AlreadyLeased => "the item is leased by another holder",
            RefusalCode::LeaseLost => {
                "the lease has expired, was released or reassigned, or the token is not current"
            }
            RefusalCode::VersionConflict => "expected_version does not match the item's version",
            RefusalCode::HolderAtCapacity => "the holder has max_leases_per_holder leases already",
            RefusalCode::InvalidState => "the item is done or dead: requeue it first",
            RefusalCode::IdempotencyKeyReused => {
                "this Idempotency-Key was used for a different request"
            }
            RefusalCode::PreconditionFailed => "a precondition (If-Match / If-None-Match) failed",
            RefusalCode::PreconditionRequired => {
                "this pool requires If-Match, If-None-Match, expected_version or Lease-Token on writes"
            }
        }
    }
}

/// Every problem `code` an answer can carry: the one list, used by the server to write
/// answers and by [`crate::client`] to read them. A code this build does not know (from a
/// newer server) reads as `Unknown`, so a client keeps working as codes are added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    /// 400: the field and the rule it broke.
    InvalidRequest,
    /// 401: a missing, malformed or unknown API key.
    Unauthorized,
    /// 404: no such pool, item, counter or route.
    NotFound,
    /// 405: the route exists, not with this method.
    MethodNotAllowed,
    /// 409: the item is leased by another holder.
    AlreadyLeased,
    /// 409: the lease has expired, was released or reassigned, or the token is not current.
    LeaseLost,
    /// 409: `expected_version` does not match.
    VersionConflict,
    /// 409: the holder already has `max_leases_per_holder` leases in this pool.
    HolderAtCapacity,
    /// 409: the item is `done` or `dead`; requeue it first.
    InvalidState,
    /// 409: this `Idempotency-Key` was used before for a different request.
    IdempotencyKeyReused,
    /// 412: `If-Match` / `If-None-Match` did not hold.
    PreconditionFailed,
    /// 413: the body is too large.
    PayloadTooLarge,
    /// 415: the body is not JSON.
    UnsupportedMediaType,
    /// 428: the pool requires a precondition on writes.
    PreconditionRequired,
    /// 429: over the tenant's rate limit; `Retry-After` says when to come back.
    RateLimited,
    /// 503: Redis could not be reached in time; the outcome of a write is unknown.
    BackendUnavailable,
    /// 503: too few replicas acknowledged a write in time; the outcome is unknown.
    DurabilityTimeout,
    /// 500: a fault of the server's.
    Internal,
    /// A code this build does not know (never sent by this server).
    #[serde(other)]
    Unknown,
}

impl ProblemCode {
    /// The code as it appears in a problem body.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemCode::InvalidRequest => "invalid_request",
            ProblemCode::Unauthorized => "unauthorized",
            ProblemCode::NotFound => "not_found",
            ProblemCode::MethodNotAllowed => "method_not_allowed",
            ProblemCode::AlreadyLeased => "already_leased",
            ProblemCode::LeaseLost => "lease_lost",
            ProblemCode::VersionConflict => "version_conflict",
            ProblemCode::HolderAtCapacity => "holder_at_capacity",
            ProblemCode::InvalidState => "invalid_state",
            ProblemCode::IdempotencyKeyReused => "idempotency_key_reused",
            ProblemCode::PreconditionFailed => "precondition_failed",
            ProblemCode::PayloadTooLarge => "payload_too_large",
            ProblemCode::UnsupportedMediaType => "unsupported_media_type",
            ProblemCode::PreconditionRequired => "precondition_required",
            ProblemCode::RateLimited => "rate_limited",
            ProblemCode::BackendUnavailable => "backend_unavailable",
            ProblemCode::DurabilityTimeout => "durability_timeout",
            ProblemCode::Internal => "internal",
            ProblemCode::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<RefusalCode> for ProblemCode {
    fn from(code: RefusalCode) -> Self {
        match code {
            RefusalCode::NotFound => ProblemCode::NotFound,
            RefusalCode::AlreadyLeased => ProblemCode::AlreadyLeased,
            RefusalCode::LeaseLost => ProblemCode::LeaseLost,
            RefusalCode::VersionConflict => ProblemCode::VersionConflict,
            RefusalCode::HolderAtCapacity => ProblemCode::HolderAtCapacity,
            RefusalCode::InvalidState => ProblemCode::InvalidState,
            RefusalCode::IdempotencyKeyReused => ProblemCode::IdempotencyKeyReused,
            RefusalCode::PreconditionFailed => ProblemCode::PreconditionFailed,
            RefusalCode::PreconditionRequired => ProblemCode::PreconditionRequired,
        }
    }
}

/// A refusal decided by a script, as stored for idempotent replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: RefusalCode,
    pub current: Option<Current>,
    /// The holder's lease limit, for `holder_at_capacity`.
    pub limit: Option<u64>,
    /// True when this answer is a replay of an earlier request with the same key.
    pub replayed: bool,
}

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `invalid_request`: the field and the rule it broke.
    #[error("{field}: {detail}")]
    InvalidRequest { field: String, detail: String },
    /// 401 `unauthorized`: a missing, malformed or unknown API key.
    #[error("a valid API key is required (Authorization: Bearer <key>)")]
    Unauthorized,
    /// 404 `not_found` for a route that does not exist.
    #[error("no such route")]
    NoRoute,
    /// 405 `method_not_allowed`.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// 404, 409, 412, 428: decided inside Redis.
    #[error("{}", .0.code.detail())]
    Refused(Refusal),
    /// 413 `payload_too_large`.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 429 `rate_limited`: the tenant is over its rate limit; Retry-After says when the
    /// next request would be admitted.
    #[error("too many requests for this tenant: retry in {} ms", .retry_after.as_millis())]
    RateLimited { retry_after: std::time::Duration },
    /// 415 `unsupported_media_type`.
    #[error("the body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// 503 `backend_unavailable`: Redis could not be reached in time; the outcome of a
    /// write is unknown, so retry it with the same `Idempotency-Key`.
    #[error("the backend is unavailable; retry with the same Idempotency-Key")]
    BackendUnavailable(String),
    /// 503 `durability_timeout`: the write ran but too few replicas acknowledged it in
    /// time; the outcome is unknown, so retry with the same `Idempotency-Key`.
    #[error("too few replicas acknowledged the write in time; retry with the same Idempotency-Key")]
    DurabilityTimeout(String),
    /// 500 `internal`: a fault of ours, logged with its cause.
    #[error("internal error")]
    Internal(String),
}

impl From<crate::names::Invalid> for ApiError {
    fn from(invalid: crate::names::Invalid) -> Self {
        ApiError::InvalidRequest {
            field: invalid.field,
            detail: invalid.detail,
        }
    }
}

impl ApiError {
    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        ApiError::InvalidRequest {
            field: field.to_owned(),
            detail: detail.into(),
        }
    }

    pub fn refused(code: RefusalCode) -> Self {
        ApiError::Refused(Refusal {
            code,
            current: None,
            limit: None,
            replayed: false,
        })
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NoRoute => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Refused(r) => r.code.status(),
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BackendUnavailable(_) | ApiError::DurabilityTimeout(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        self.problem_code().as_str()
    }

    /// The problem code this error is answered with.
    pub fn problem_code(&self) -> ProblemCode {
        match self {
            ApiError::InvalidRequest { .. } => ProblemCode::InvalidRequest,
            ApiError::Unauthorized => ProblemCode::Unauthorized,
            ApiError::NoRoute => ProblemCode::NotFound,
            ApiError::MethodNotAllowed => ProblemCode::MethodNotAllowed,
            ApiError::Refused(r) => r.code.into(),
            ApiError::PayloadTooLarge(_) => ProblemCode::PayloadTooLarge,
            ApiError::UnsupportedMediaType => ProblemCode::UnsupportedMediaType,
            ApiError::RateLimited { .. } => ProblemCode::RateLimited,
            ApiError::BackendUnavailable(_) => ProblemCode::BackendUnavailable,
            ApiError::DurabilityTimeout(_) => ProblemCode::DurabilityTimeout,
            ApiError::Internal(_) => ProblemCode::Internal,
        }
    }

    /// What the problem means to the caller, for the API description.
    fn meaning(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest { .. } => {
                "the request broke a rule: `field` names the field (or header, or path) and `detail` the rule"
            }
            ApiError::Unauthorized => {
                "a missing, malformed, unknown or revoked API key (Authorization: Bearer <key>)"
            }
            ApiError::NoRoute => "no such route",
            ApiError::MethodNotAllowed => "the route does not take this method",
            ApiError::Refused(r) => r.code.detail(),
            ApiError::PayloadTooLarge(_) => {
                "the body is larger than --max-body-bytes, or item data is over 64 KiB as compact JSON"
            }
            ApiError::RateLimited { .. } => {
                "the tenant is over its rate limit: Retry-After says when to try again"
            }
            ApiError::UnsupportedMediaType => {
                "a body that is not JSON (Content-Type application/json or application/*+json)"
            }
            ApiError::BackendUnavailable(_) => {
                "Redis could not be reached in time; a write's outcome is unknown: retry it with the same Idempotency-Key"
            }
            ApiError::DurabilityTimeout(_) => {
                "too few replicas acknowledged the write in time (--durability replicas:N); retry with the same Idempotency-Key"
            }
            ApiError::Internal(_) => "a fault of the server, logged with its cause",
        }
    }

    /// Every problem Leasehold answers with: its status, its stable `code` and what it
    /// means, one entry per code, so the API description lists each exactly once.
    pub fn catalogue() -> Vec<(StatusCode, &'static str, &'static str)> {
        let mut errors = vec![
            ApiError::invalid("field", "rule"),
            ApiError::Unauthorized,
            ApiError::NoRoute,
            ApiError::MethodNotAllowed,
            ApiError::PayloadTooLarge(String::new()),
            ApiError::UnsupportedMediaType,
            ApiError::RateLimited {
                retry_after: std::time::Duration::ZERO,
            },
            ApiError::BackendUnavailable(String::new()),
            ApiError::DurabilityTimeout(String::new()),
            ApiError::Internal(String::new()),
        ];
        // `NoRoute` and the refusal `NotFound` share the code `not_found`.
        errors.extend(
            RefusalCode::ALL
                .into_iter()
                .filter(|code| *code != RefusalCode::NotFound)
                .map(ApiError::refused),
        );
        errors
            .iter()
            .map(|e| (e.status(), e.code(), e.meaning()))
            .collect()
    }
}

/// The body of every error answer (RFC 9457 problem details plus a stable `code`).
#[derive(Serialize, ToSchema)]
pub(crate) struct Problem<'a> {
    /// `urn:leasehold:problem:<code>`.
    #[serde(rename = "type")]
    kind: String,
    /// The status's reason phrase.
    title: &'a str,
    status: u16,
    /// The stable code to branch on.
    code: &'a str,
    /// For a person: what went wrong.
    detail: String,
    /// With `invalid_request`: the field, header or parameter that broke a rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    /// With a 409 or 412 about an item: the item as it is now.
    #[serde(skip_serializing_if = "Option::is_none")]
    current: Option<&'a Current>,
    /// With `holder_at_capacity`: the holder's lease limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u64>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::BackendUnavailable(cause) => tracing::warn!(%cause, "backend unavailable"),
            ApiError::DurabilityTimeout(cause) => tracing::warn!(%cause, "durability timeout"),
            ApiError::Internal(cause) => tracing::error!(%cause, "internal error"),
            _ => {}
        }
        let status = self.status();
        let code = self.code();
        let (field, current, limit, replayed) = match &self {
            ApiError::InvalidRequest { field, .. } => (Some(field.as_str()), None, None, false),
            ApiError::Refused(r) => (None, r.current.as_ref(), r.limit, r.replayed),
            _ => (None, None, None, false),
        };
        let detail = match &self {
            ApiError::InvalidRequest { detail, .. } => detail.clone(),
            ApiError::PayloadTooLarge(detail) => detail.clone(),
            other => other.to_string(),
        };
        let problem = Problem {
            kind: format!("urn:leasehold:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            code,
            detail,
            field,
            current: current.filter(|_| status != StatusCode::NOT_FOUND),
            limit,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let ApiError::RateLimited { retry_after } = &self {
            // Whole seconds, rounded up: never earlier than the limiter would admit.
            let seconds = retry_after.as_micros().div_ceil(1_000_000).max(1);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds as u64));
        }
        if replayed {
            headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        if let ApiError::Refused(refusal) = &self {
            if refusal.code != RefusalCode::NotFound {
                response.extensions_mut().insert(Conflict(code));
            }
        }
        response
    }
}

#[cfg(test)]
mod catalogue_tests {
    use super::*;

    #[test]
    fn the_catalogue_lists_each_code_once_with_the_status_it_answers() {
        let catalogue = ApiError::catalogue();
        let mut codes: Vec<&str> = catalogue.iter().map(|(_, code, _)| *code).collect();
        codes.sort_unstable();
        let before = codes.len();
        codes.dedup();
        assert_eq!(codes.len(), before, "a code listed twice");
        for code in RefusalCode::ALL {
            let status = code.status();
            assert!(
                catalogue.contains(&(status, ProblemCode::from(code).as_str(), code.detail()))
                    || code == RefusalCode::NotFound,
                "{code:?} missing"
            );
        }
        assert!(
            catalogue
                .iter()
                .any(|(s, c, _)| *s == StatusCode::NOT_FOUND && *c == "not_found")
        );
        assert!(catalogue.iter().all(|(_, _, meaning)| !meaning.is_empty()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ProblemCode; 19] = [
        ProblemCode::InvalidRequest,
        ProblemCode::Unauthorized,
        ProblemCode::NotFound,
        ProblemCode::MethodNotAllowed,
        ProblemCode::AlreadyLeased,
        ProblemCode::LeaseLost,
        ProblemCode::VersionConflict,
        ProblemCode::HolderAtCapacity,
        ProblemCode::InvalidState,
        ProblemCode::IdempotencyKeyReused,
        ProblemCode::PreconditionFailed,
        ProblemCode::PayloadTooLarge,
        ProblemCode::UnsupportedMediaType,
        ProblemCode::PreconditionRequired,
        ProblemCode::RateLimited,
        ProblemCode::BackendUnavailable,
        ProblemCode::DurabilityTimeout,
        ProblemCode::Internal,
        ProblemCode::Unknown,
    ];

    #[test]
    fn problem_codes_read_back_as_they_are_written() {
        for code in ALL {
            let json = serde_json::to_value(code).expect("serializes");
            assert_eq!(json, code.as_str());
            let back: ProblemCode = serde_json::from_value(json).expect("deserializes");
            assert_eq!(back, code);
        }
    }

    #[test]
    fn a_refusal_code_is_spelled_as_its_problem_code() {
        let refusals: Vec<RefusalCode> = ALL
            .iter()
            .filter_map(|c| serde_json::from_value(serde_json::to_value(c).ok()?).ok())
            .collect();
        assert_eq!(refusals.len(), 9, "every refusal is a problem code");
        for refusal in refusals {
            let spelled = serde_json::to_value(refusal).expect("serializes");
            assert_eq!(spelled, ProblemCode::from(refusal).as_str());
        }
    }

    #[test]
    fn a_code_from_a_newer_server_reads_as_unknown() {
        let code: ProblemCode = serde_json::from_str("\"quota_exceeded\"").expect("reads");
        assert_eq!(code, ProblemCode::Unknown);
    }
}
