//! Problem codes: every `code` an error answer can carry, declared once with its HTTP
//! status and what it means. The server answers with them, the scripts refuse with them,
//! the API description lists them, and clients branch on them.

use serde::{Deserialize, Serialize};

/// Declares every problem code once: its variant, its spelling on the wire, its status and
/// what it means to a caller.
macro_rules! problem_codes {
    ($($(#[$doc:meta])* $variant:ident = $code:literal, $status:literal, $meaning:literal;)*) => {
        /// Every problem `code` an answer can carry. A code this build does not know (from
        /// a newer server) reads as `Unknown`, so a client keeps working as codes are added.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum ProblemCode {
            $($(#[$doc])* #[serde(rename = $code)] $variant,)*
            /// A code this build does not know (never sent by this server).
            #[serde(other, rename = "unknown")]
            Unknown,
        }

        impl ProblemCode {
            /// Every code this server answers with, in the order declared.
            pub const ALL: &[ProblemCode] = &[$(ProblemCode::$variant),*];

            /// The code as it appears in a problem body.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ProblemCode::$variant => $code,)*
                    ProblemCode::Unknown => "unknown",
                }
            }

            /// The HTTP status it is answered with (500 for a code this build does not
            /// know).
            pub fn status(self) -> u16 {
                match self {
                    $(ProblemCode::$variant => $status,)*
                    ProblemCode::Unknown => 500,
                }
            }

            /// What it means to the caller: the API description's words, and the
            /// `detail` of a refusal decided inside Redis.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(ProblemCode::$variant => $meaning,)*
                    ProblemCode::Unknown => "a problem this client does not know",
                }
            }
        }
    };
}

problem_codes! {
    /// The field and the rule it broke.
    InvalidRequest = "invalid_request", 400,
        "the request broke a rule: `field` names the field (or header, or path) and `detail` the rule";
    /// A missing, malformed or unknown API key.
    Unauthorized = "unauthorized", 401,
        "a missing, malformed, unknown or revoked API key (Authorization: Bearer <key>)";
    /// No such pool, item, counter or route.
    NotFound = "not_found", 404, "no such resource";
    /// The route exists, not with this method.
    MethodNotAllowed = "method_not_allowed", 405, "the route does not take this method";
    /// The item is leased by another holder.
    AlreadyLeased = "already_leased", 409, "the item is leased by another holder";
    /// The lease has expired, was released or reassigned, or the token is not current.
    LeaseLost = "lease_lost", 409,
        "the lease has expired, was released or reassigned, or the token is not current";
    /// `expected_version` does not match.
    VersionConflict = "version_conflict", 409,
        "expected_version does not match the item's version";
    /// The holder already has `max_leases_per_holder` leases in this pool.
    HolderAtCapacity = "holder_at_capacity", 409,
        "the holder has max_leases_per_holder leases already";
    /// The pool is paused: nothing is granted until it is resumed.
    PoolPaused = "pool_paused", 409, "the pool is paused: claims grant nothing until it is resumed";
    /// The item is `done` or `dead`; requeue it first.
    InvalidState = "invalid_state", 409, "the item is done or dead: requeue it first";
    /// This `Idempotency-Key` was used before for a different request.
    IdempotencyKeyReused = "idempotency_key_reused", 409,
        "this Idempotency-Key was used for a different request";
    /// The write would take the pool or the tenant past a limit (`quota` names it).
    QuotaExceeded = "quota_exceeded", 409,
        "the write would pass a limit of the pool or the tenant (`quota` names it, with `limit` and `usage`): free room or raise the limit";
    /// `If-Match` / `If-None-Match` did not hold.
    PreconditionFailed = "precondition_failed", 412,
        "a precondition (If-Match / If-None-Match) failed";
    /// The body is too large.
    PayloadTooLarge = "payload_too_large", 413,
        "the body is larger than --max-body-bytes, or item data is over 64 KiB as compact JSON";
    /// The body is not JSON.
    UnsupportedMediaType = "unsupported_media_type", 415,
        "a body that is not JSON (Content-Type application/json or application/*+json)";
    /// The pool requires a precondition on writes.
    PreconditionRequired = "precondition_required", 428,
        "this pool requires If-Match, If-None-Match, expected_version or Lease-Token on writes";
    /// Over the tenant's rate limit; `Retry-After` says when to come back.
    RateLimited = "rate_limited", 429,
        "the tenant is over its rate limit: Retry-After says when to try again";
    /// Redis could not be reached in time; the outcome of a write is unknown.
    BackendUnavailable = "backend_unavailable", 503,
        "Redis could not be reached in time; a write's outcome is unknown: retry it with the same Idempotency-Key";
    /// Too few replicas acknowledged a write in time; the outcome is unknown.
    DurabilityTimeout = "durability_timeout", 503,
        "too few replicas acknowledged the write in time (--durability replicas:N); retry with the same Idempotency-Key";
    /// The request's body did not arrive in time.
    RequestTimeout = "request_timeout", 408,
        "the request's body did not arrive within the body timeout";
    /// A fault of the server's.
    Internal = "internal", 500, "a fault of the server, logged with its cause";
}

impl ProblemCode {
    /// Whether a script may answer with it: a refusal decided by the state inside Redis.
    pub fn is_refusal(self) -> bool {
        matches!(self.status(), 404 | 409 | 412 | 428)
    }
}

impl std::fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an item looked like when a request was refused, so the caller can show "now
/// assigned to Jane" and retry from fresh state. A missing item has version 0.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Current {
    pub version: u64,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub holder: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_codes_read_back_as_they_are_written() {
        for &code in ProblemCode::ALL {
            let json = serde_json::to_value(code).expect("serializes");
            assert_eq!(json, code.as_str());
            let back: ProblemCode = serde_json::from_value(json).expect("deserializes");
            assert_eq!(back, code);
        }
    }

    #[test]
    fn each_code_is_declared_once_with_a_status_and_a_meaning() {
        let mut spelled: Vec<&str> = ProblemCode::ALL.iter().map(|c| c.as_str()).collect();
        spelled.sort_unstable();
        spelled.dedup();
        assert_eq!(
            spelled.len(),
            ProblemCode::ALL.len(),
            "a code declared twice"
        );
        for &code in ProblemCode::ALL {
            assert!((400..600).contains(&code.status()), "{code}");
            assert!(!code.meaning().is_empty(), "{code}");
        }
    }

    #[test]
    fn a_code_from_a_newer_server_reads_as_unknown() {
        let code: ProblemCode =
            serde_json::from_str("\"role_forbidden_in_a_later_version\"").expect("reads");
        assert_eq!(code, ProblemCode::Unknown);
        assert_eq!(code.status(), 500);
    }

    #[test]
    fn only_refusals_decided_by_state_are_refusals() {
        assert!(ProblemCode::LeaseLost.is_refusal());
        assert!(ProblemCode::NotFound.is_refusal());
        assert!(!ProblemCode::InvalidRequest.is_refusal());
        assert!(!ProblemCode::BackendUnavailable.is_refusal());
    }
}
