//! The circuit breaker in front of a shared token source (the gateway's broker, the
//! client's store): after a failure the caller fetches its own tokens for a while, so a
//! source that is down or slow costs one deadline per [`BREAKER_OPEN_MS`], not one per
//! call; then one call tries the source again.

/// How long a failing source is left alone. The store promises at most 30 s (README); with
/// 5 s a process that finds the source down pays its deadline once per 5 s, and sees it
/// back within 5 s of its return.
pub const BREAKER_OPEN_MS: u64 = 5_000;

/// Open after a failure for [`BREAKER_OPEN_MS`], closed again by the next success.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Breaker {
    open_until: u64,
}

impl Breaker {
    /// Whether to use the source now.
    pub fn allows(&self, now: u64) -> bool {
        now >= self.open_until
    }

    /// The source failed (an error, overload, a timeout, an answer of the wrong shape).
    pub fn failed(&mut self, now: u64) {
        self.open_until = now.saturating_add(BREAKER_OPEN_MS);
    }

    /// The source answered.
    pub fn succeeded(&mut self) {
        self.open_until = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_on_failure_for_at_most_30_s_and_closes_on_success() {
        let mut b = Breaker::default();
        assert!(b.allows(0));
        b.failed(1_000);
        assert!(!b.allows(1_000 + BREAKER_OPEN_MS - 1));
        assert!(b.allows(1_000 + BREAKER_OPEN_MS));
        const { assert!(BREAKER_OPEN_MS <= 30_000) };
        b.failed(10_000);
        b.succeeded();
        assert!(b.allows(10_001));
    }
}
