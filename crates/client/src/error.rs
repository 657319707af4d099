//! The client's errors: a problem the service answered with (its stable `code` is a
//! [`ProblemCode`], the same list the server writes from), no answer at all, or retries
//! given up on, with the last cause.

use std::time::Duration;

use serde::Deserialize;

use super::transport::{Answer, Attempt, Sent};
pub use leasehold_wire::problem::{Current, ProblemCode};

/// An `application/problem+json` answer (RFC 9457), as the service sends it.
#[derive(Debug, Clone, Deserialize)]
pub struct Problem {
    /// The HTTP status.
    #[serde(skip)]
    pub status: u16,
    /// The stable code: match on this.
    pub code: ProblemCode,
    /// Words for people; not stable.
    #[serde(default)]
    pub detail: String,
    /// For `invalid_request`: the field and the rule it broke.
    #[serde(default)]
    pub field: Option<String>,
    /// For 409 and 412: what the item looks like now (version, state, holder), so the
    /// caller can show "now assigned to Jane" and retry from fresh state.
    #[serde(default)]
    pub current: Option<Current>,
    /// For `holder_at_capacity`: the holder's lease limit.
    #[serde(default)]
    pub limit: Option<u64>,
    /// For 429 and 503: when the service asked to be called again.
    #[serde(skip)]
    pub retry_after: Option<Duration>,
}

impl Problem {
    /// Reads a non-2xx answer. A body that is not problem+json (a load balancer's page)
    /// becomes code `Unknown` with the start of the body as its detail.
    pub fn from_answer(answer: &Answer) -> Problem {
        let mut problem = serde_json::from_slice::<Problem>(&answer.body).unwrap_or_else(|_| {
            let text = String::from_utf8_lossy(&answer.body);
            Problem {
                status: 0,
                code: ProblemCode::Unknown,
                detail: text.chars().take(200).collect(),
                field: None,
                current: None,
                limit: None,
                retry_after: None,
            }
        });
        problem.status = answer.status.as_u16();
        problem.retry_after = answer.retry_after();
        problem
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.code)?;
        if let Some(field) = &self.field {
            write!(f, " ({field})")?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// Every way a call can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The service answered with a problem; `code` says which (`lease_lost`,
    /// `version_conflict`, …). Match with [`Error::code`].
    #[error("{0}")]
    Problem(Box<Problem>),
    /// No answer: the connection failed or broke, or the attempt timed out. A write may
    /// have been applied; the same call again (a new `Idempotency-Key`) may apply it twice.
    #[error("no answer from Leasehold: {0}")]
    Transport(#[source] reqwest::Error),
    /// The request was retried until the retry policy's attempts or time ran out;
    /// `last` is the last attempt's error. `outcome_unknown` is true when a write may have
    /// been applied (an attempt got no answer or a 5xx).
    #[error("gave up after {attempts} attempts in {elapsed:?}: {last}")]
    GaveUp {
        attempts: u32,
        elapsed: Duration,
        outcome_unknown: bool,
        last: Box<Error>,
    },
    /// A 2xx answer this client could not read.
    #[error("unexpected answer ({status}): {detail}")]
    Unexpected { status: u16, detail: String },
    /// The client was built or called with something that cannot be sent (a base URL, an
    /// API key or a header value that is not valid).
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// The problem code, also when it was the last cause of retries given up on.
    pub fn code(&self) -> Option<ProblemCode> {
        self.problem().map(|p| p.code)
    }

    /// The problem body, also when it was the last cause of retries given up on.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Error::Problem(problem) => Some(problem),
            Error::GaveUp { last, .. } => last.problem(),
            _ => None,
        }
    }

    /// What the item looks like now, for 409 and 412.
    pub fn current(&self) -> Option<&Current> {
        self.problem().and_then(|p| p.current.as_ref())
    }

    /// Whether a write may have been applied although the call failed: no answer, a 5xx,
    /// or retries given up on after one of those. Calling again with a new
    /// `Idempotency-Key` may then apply it twice; with the same one (see
    /// [`super::Client::with_idempotency_key`]) it is applied at most once.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Error::Transport(_) => true,
            Error::GaveUp {
                outcome_unknown, ..
            } => *outcome_unknown,
            Error::Problem(p) => p.status >= 500,
            _ => false,
        }
    }

    /// The answer of a request the transport has finished with: the 2xx answer, or the
    /// error it amounts to.
    pub(super) fn check(sent: Sent) -> Result<Answer, Error> {
        match sent.last {
            Attempt::Answer(answer) if answer.status.is_success() => Ok(answer),
            _ => Err(Error::of_failed(sent)),
        }
    }

    /// The error a request amounts to that the transport has finished with, its last
    /// attempt not a 2xx answer.
    pub(super) fn of_failed(sent: Sent) -> Error {
        let outcome_unknown = sent.outcome_unknown();
        let error = match sent.last {
            Attempt::Answer(answer) if answer.status.is_success() => Error::Unexpected {
                status: answer.status.as_u16(),
                detail: "a success counted as a failure".to_owned(),
            },
            Attempt::Answer(answer) => Error::Problem(Box::new(Problem::from_answer(&answer))),
            Attempt::NoAnswer(e) => Error::Transport(e),
        };
        if sent.gave_up {
            return Error::GaveUp {
                attempts: sent.attempts,
                elapsed: sent.elapsed,
                outcome_unknown,
                last: Box::new(error),
            };
        }
        error
    }
}
