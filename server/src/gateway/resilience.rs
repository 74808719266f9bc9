//! Retries and circuit breaking for provider calls: which failures are transient, how long to
//! wait before the next attempt (exponential backoff with full jitter, honouring `Retry-After`),
//! and a per-provider circuit breaker that opens after repeated failures and lets one trial call
//! through after a cool-down. Time comes from `tokio::time`, so tests run with paused time.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::gateway::RetryConfig;

/// True for HTTP statuses worth retrying: 408, 425, 429 and the 5xx family. Client errors such as
/// 400, 401, 403 and 404 fail at once.
pub fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 425 | 429) || (500..=599).contains(&status)
}

/// What to do after a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wait this long, then try the same provider again.
    RetryAfter(Duration),
    /// Retries are used up (or the server asked for too long a pause): try the next provider.
    NextProvider,
}

/// Decides the pause before retry number `attempt` (0 for the first retry). `retry_after` is the
/// server's `Retry-After`, honoured when it is within `retry_after_max_ms`; `unit` is a random
/// number in `[0, 1)` for the jitter.
pub fn next_step(
    policy: &RetryConfig,
    attempt: u32,
    retry_after: Option<Duration>,
    unit: f64,
) -> Next {
    if attempt >= policy.max_retries {
        return Next::NextProvider;
    }
    if let Some(wait) = retry_after {
        return if wait <= Duration::from_millis(policy.retry_after_max_ms) {
            Next::RetryAfter(wait)
        } else {
            Next::NextProvider
        };
    }
    let ceiling = policy
        .backoff_base_ms
        .saturating_mul(1u64 << attempt.min(32))
        .min(policy.backoff_max_ms);
    let jittered = (ceiling as f64 * unit.clamp(0.0, 1.0)) as u64;
    Next::RetryAfter(Duration::from_millis(jittered))
}

/// Parses a `Retry-After` header given in seconds (HTTP dates are treated as absent).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { trial_running: bool },
}

/// A provider's circuit breaker.
#[derive(Debug)]
pub struct CircuitBreaker {
    failures_to_open: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

/// The circuit refused a call; it may be tried again after `retry_in`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit open: provider failed repeatedly; next trial in {retry_in:?}")]
pub struct CircuitOpen {
    pub retry_in: Duration,
}

/// Breaker states as shown to users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitBreaker {
    pub fn new(failures_to_open: u32, cooldown: Duration) -> CircuitBreaker {
        CircuitBreaker {
            failures_to_open: failures_to_open.max(1),
            cooldown,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a plain value: a panic elsewhere cannot leave it half-updated.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks to make a call. Closed: yes. Open: no, until the cool-down has passed; then one
    /// trial call is let through (half-open) while others are still refused.
    pub fn try_acquire(&self) -> Result<(), CircuitOpen> {
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => Ok(()),
            State::Open { until } => {
                let now = Instant::now();
                if now >= until {
                    *state = State::HalfOpen {
                        trial_running: true,
                    };
                    Ok(())
                } else {
                    Err(CircuitOpen {
                        retry_in: until - now,
                    })
                }
            }
            State::HalfOpen { trial_running } => {
                if trial_running {
                    Err(CircuitOpen {
                        retry_in: Duration::ZERO,
                    })
                } else {
                    *state = State::HalfOpen {
                        trial_running: true,
                    };
                    Ok(())
                }
            }
        }
    }

    /// A call succeeded: the circuit closes.
    pub fn record_success(&self) {
        *self.lock() = State::Closed { failures: 0 };
    }

    /// A call failed transiently: counts towards opening; a failed trial reopens at once.
    pub fn record_failure(&self) {
        let mut state = self.lock();
        let open = State::Open {
            until: Instant::now() + self.cooldown,
        };
        *state = match *state {
            State::Closed { failures } if failures + 1 >= self.failures_to_open => open,
            State::Closed { failures } => State::Closed {
                failures: failures + 1,
            },
            State::HalfOpen { .. } | State::Open { .. } => open,
        };
    }

    /// The current state (an open circuit whose cool-down passed reads as half-open).
    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until } if Instant::now() >= until => BreakerState::HalfOpen,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_and_permanent_statuses() {
        for s in [408, 425, 429, 500, 502, 503, 504] {
            assert!(is_transient_status(s), "{s}");
        }
        for s in [400, 401, 403, 404, 422] {
            assert!(!is_transient_status(s), "{s}");
        }
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = RetryConfig {
            max_retries: 10,
            backoff_base_ms: 500,
            backoff_max_ms: 4_000,
            ..RetryConfig::default()
        };
        let full = |attempt| next_step(&p, attempt, None, 0.999_999);
        assert_eq!(full(0), Next::RetryAfter(Duration::from_millis(499)));
        assert_eq!(full(2), Next::RetryAfter(Duration::from_millis(1_999)));
        assert_eq!(full(9), Next::RetryAfter(Duration::from_millis(3_999)));
        assert_eq!(
            next_step(&p, 3, None, 0.0),
            Next::RetryAfter(Duration::ZERO)
        );
        assert_eq!(next_step(&p, 10, None, 0.5), Next::NextProvider);
    }

    #[test]
    fn retry_after_is_honoured_within_its_bound() {
        let p = RetryConfig::default();
        let two = Some(Duration::from_secs(2));
        assert_eq!(
            next_step(&p, 0, two, 0.5),
            Next::RetryAfter(Duration::from_secs(2))
        );
        let long = Some(Duration::from_secs(3_600));
        assert_eq!(next_step(&p, 0, long, 0.5), Next::NextProvider);
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_breaker_opens_then_half_opens_after_the_cooldown() {
        let b = CircuitBreaker::new(3, Duration::from_secs(30));
        for _ in 0..2 {
            b.try_acquire().unwrap();
            b.record_failure();
        }
        assert_eq!(b.state(), BreakerState::Closed);
        b.try_acquire().unwrap();
        b.record_failure();
        assert_eq!(b.state(), BreakerState::Open);
        let refused = b.try_acquire().unwrap_err();
        assert_eq!(refused.retry_in, Duration::from_secs(30));

        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.try_acquire().expect("one trial call goes through");
        assert!(b.try_acquire().is_err(), "only one trial at a time");
        b.record_failure();
        assert_eq!(b.state(), BreakerState::Open, "a failed trial reopens");

        tokio::time::advance(Duration::from_secs(31)).await;
        b.try_acquire().unwrap();
        b.record_success();
        assert_eq!(b.state(), BreakerState::Closed);
        b.try_acquire().unwrap();
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let b = CircuitBreaker::new(2, Duration::from_secs(1));
        b.record_failure();
        b.record_success();
        b.record_failure();
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
