//! Retry policy for token requests: capped exponential backoff with jitter.
//!
//! Network errors, 5xx and 429 are retried (at most `max_retries` times); other 4xx
//! never are (a wrong secret does not get righter). `Retry-After` is honoured up to a
//! cap; a server asking for longer than the cap gets no retry from us, so a caller
//! is not left waiting minutes inside one `getToken`.

/// Backoff settings. Randomness comes in as an argument (sans-I/O, testable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (default 3).
    pub max_retries: u32,
    /// First backoff step in ms (default 250).
    pub base_ms: u64,
    /// Largest backoff step in ms (default 4 s).
    pub cap_ms: u64,
    /// Largest `Retry-After` we wait for (default 20 s).
    pub retry_after_cap_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_retries: 3, base_ms: 250, cap_ms: 4_000, retry_after_cap_ms: 20_000 }
    }
}

impl RetryPolicy {
    /// Delay before retry number `retry` (0 = the first retry), or `None` to give up.
    /// `random` is uniform in [0, 1). "Equal jitter": half the step fixed, half random,
    /// so retries spread out but never collapse to zero.
    pub fn delay(&self, retry: u32, retry_after_ms: Option<u64>, random: f64) -> Option<u64> {
        if retry >= self.max_retries {
            return None;
        }
        let step = self.base_ms.saturating_mul(1u64 << retry.min(20)).min(self.cap_ms);
        let jitter = (step as f64 / 2.0 * random.clamp(0.0, 1.0)) as u64;
        let backoff = step / 2 + jitter;
        match retry_after_ms {
            Some(ra) if ra > self.retry_after_cap_ms => None,
            Some(ra) => Some(backoff.max(ra)),
            None => Some(backoff),
        }
    }

    /// When to try a failed background refresh again while the cached token is still
    /// valid: doubling from 1 s with the number of consecutive failures, at most 30 s,
    /// and never later than the token's hard margin would need.
    pub fn background_retry_in(failures: u32) -> u64 {
        (1_000u64 << failures.saturating_sub(1).min(5)).min(30_000)
    }

    /// How long a key waits before its next token request after VCC rejected a token it
    /// had just issued, for the `streak`-th time in a row: 1 s, doubling, at most 60 s.
    pub fn rejected_cooldown(streak: u32) -> u64 {
        (1_000u64 << streak.saturating_sub(1).min(6)).min(60_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_stops_after_max() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(0, None, 0.0), Some(125));
        assert_eq!(p.delay(0, None, 0.999_999), Some(249));
        assert_eq!(p.delay(1, None, 0.0), Some(250));
        assert_eq!(p.delay(2, None, 0.0), Some(500));
        assert_eq!(p.delay(3, None, 0.0), None);
        let big = RetryPolicy { max_retries: 30, ..p };
        assert_eq!(big.delay(25, None, 0.0), Some(2_000));
        assert!(big.delay(25, None, 1.0).unwrap() <= 4_000);
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(0, Some(3_000), 0.5), Some(3_000));
        assert_eq!(p.delay(0, Some(0), 0.0), Some(125));
        assert_eq!(p.delay(0, Some(20_000), 0.0), Some(20_000));
        assert_eq!(p.delay(0, Some(20_001), 0.0), None);
    }

    #[test]
    fn background_retry_is_bounded() {
        assert_eq!(RetryPolicy::background_retry_in(1), 1_000);
        assert_eq!(RetryPolicy::background_retry_in(2), 2_000);
        assert_eq!(RetryPolicy::background_retry_in(50), 30_000);
        assert_eq!(RetryPolicy::rejected_cooldown(1), 1_000);
        assert_eq!(RetryPolicy::rejected_cooldown(3), 4_000);
        assert_eq!(RetryPolicy::rejected_cooldown(40), 60_000);
    }
}
