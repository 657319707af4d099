//! When to send a request again: exponential backoff with full jitter, capped, bounded in
//! attempts and in total time, and `Retry-After` honoured whenever the service sends it.

use std::time::Duration;

use rand::Rng;

/// How a request is retried. Which attempts are retried at all is fixed (no answer, 429,
/// 502, 503, 504; never another 4xx): this only says how often and how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1: never retry).
    pub max_attempts: u32,
    /// The backoff before the first retry; it doubles with each retry.
    pub base_delay: Duration,
    /// The longest backoff (`Retry-After` is honoured even when longer).
    pub max_delay: Duration,
    /// The most time one request may take, from its first attempt to its last answer: no
    /// attempt starts, and no attempt runs, past it. A `Retry-After` that would end past
    /// it is not waited for: the request gives up at once with that answer.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, backoff from 100 ms up to 5 s, at most 30 s in all.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_elapsed: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// One attempt, never repeated.
    pub fn never() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The backoff ceiling before retry number `retry` (0 for the first retry):
    /// `base_delay * 2^retry`, at most `max_delay`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// How long to wait before retry number `retry`: a uniformly random time up to the
    /// ceiling ("full jitter", so that clients that failed together do not come back
    /// together); or, when the service sent `Retry-After`, that long plus a jitter of up to
    /// `base_delay` (never earlier than it asked).
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let mut rng = rand::rng();
        match retry_after {
            Some(after) => after.saturating_add(jitter(&mut rng, self.base_delay)),
            None => jitter(&mut rng, self.ceiling(retry)),
        }
    }
}

fn jitter(rng: &mut impl Rng, ceiling: Duration) -> Duration {
    let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(rng.random_range(0..=micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_elapsed: Duration::from_secs(60),
        }
    }

    #[test]
    fn the_ceiling_doubles_up_to_the_cap() {
        let p = policy();
        let ceilings: Vec<u128> = (0..6).map(|n| p.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.ceiling(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn backoff_is_jittered_within_the_ceiling() {
        let p = policy();
        let delays: Vec<Duration> = (0..200).map(|_| p.delay(2, None)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(400)));
        let distinct: std::collections::HashSet<_> = delays.iter().collect();
        assert!(distinct.len() > 100, "not jittered: {distinct:?}");
        assert!(delays.iter().any(|d| *d < Duration::from_millis(200)));
    }

    #[test]
    fn retry_after_is_never_shortened_even_past_the_cap() {
        let p = policy();
        for _ in 0..100 {
            let d = p.delay(0, Some(Duration::from_secs(3)));
            assert!(d >= Duration::from_secs(3), "{d:?}");
            assert!(d <= Duration::from_millis(3100), "{d:?}");
        }
    }

    #[test]
    fn a_retry_after_past_any_clock_does_not_overflow() {
        let huge = Duration::from_secs(u64::MAX);
        assert!(policy().delay(0, Some(huge)) >= huge);
    }
}
