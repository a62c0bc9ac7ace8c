//! Per-target bounds: how many actions in flight, and how many per second.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;

/// Paces calls to at most `per_second`, evenly spaced.
pub struct RateLimiter {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateLimiter {
    pub fn new(per_second: f64) -> Option<RateLimiter> {
        (per_second > 0.0 && per_second.is_finite()).then(|| RateLimiter {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: Mutex::new(Instant::now()),
        })
    }

    /// Wait for this call's slot.
    pub async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

pub struct Limits {
    pub in_flight: Arc<Semaphore>,
    pub rate: Option<RateLimiter>,
}

impl Limits {
    /// At most `ceiling` actions in flight, `rate_limit` per second.
    pub fn new(ceiling: usize, rate_limit: Option<f64>) -> Limits {
        Limits {
            in_flight: Arc::new(Semaphore::new(ceiling.max(1))),
            rate: rate_limit.and_then(RateLimiter::new),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_caps_the_target() {
        let limits = |max_concurrency, adaptive| crate::config::Limits {
            max_concurrency,
            rate_limit: None,
            adaptive,
        };
        assert_eq!(limits(Some(32), None).ceiling(Some(4)), 4);
        assert_eq!(limits(Some(2), None).ceiling(Some(8)), 2);
        assert_eq!(limits(None, None).ceiling(None), 64);
        assert_eq!(limits(None, Some(false)).ceiling(None), 16);
        assert_eq!(limits(None, None).ceiling(Some(0)), 1);
        assert_eq!(
            Limits::new(limits(None, None).ceiling(Some(3)), None)
                .in_flight
                .available_permits(),
            3
        );
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limiter_spaces_calls() {
        let limiter = RateLimiter::new(10.0).unwrap();
        let start = Instant::now();
        for _ in 0..5 {
            limiter.wait().await;
        }
        // Five calls at 10/s: the fifth starts 400 ms after the first.
        assert_eq!(start.elapsed(), Duration::from_millis(400));
    }
}
