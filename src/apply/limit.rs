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
    /// The target's `max_concurrency`, capped by `-j`; default 16.
    pub fn new(
        max_concurrency: Option<usize>,
        jobs: Option<usize>,
        rate_limit: Option<f64>,
    ) -> Limits {
        let max = match (max_concurrency, jobs) {
            (Some(m), Some(j)) => m.min(j),
            (Some(m), None) => m,
            (None, Some(j)) => j,
            (None, None) => 16,
        }
        .max(1);
        Limits {
            in_flight: Arc::new(Semaphore::new(max)),
            rate: rate_limit.and_then(RateLimiter::new),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_caps_the_target() {
        assert_eq!(
            Limits::new(Some(32), Some(4), None)
                .in_flight
                .available_permits(),
            4
        );
        assert_eq!(
            Limits::new(Some(2), Some(8), None)
                .in_flight
                .available_permits(),
            2
        );
        assert_eq!(
            Limits::new(None, None, None).in_flight.available_permits(),
            16
        );
        assert_eq!(
            Limits::new(None, Some(0), None)
                .in_flight
                .available_permits(),
            1
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
