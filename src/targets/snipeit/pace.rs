//! Pacing for one Snipe-IT API user: a token bucket shared by every request
//! of the target, kept just under the server's throttle and adjusted from
//! what the server answers.
//!
//! Snipe-IT throttles per API user with Laravel's limiter: a fixed window
//! that opens with the first request, `API_THROTTLE_PER_MINUTE` requests in
//! it (120 by default), then 429 with `Retry-After` until the window ends.
//! Every answer carries `X-RateLimit-Limit` and `X-RateLimit-Remaining`.
//!
//! - The bucket refills at [`HEADROOM`] of the configured rate. It holds one
//!   token until the server has said its limit, then 1 % of that limit (half
//!   the headroom): requests go out evenly spaced, a moment without requests
//!   can be made up, and neither that nor the jitter of their arrival can
//!   push a window over the limit.
//! - When `X-RateLimit-Limit` changes during a run (an admin lowers the
//!   throttle), the rate follows in proportion. Only changes count: the
//!   header's window is the server's business, the configured rate is ours.
//! - A 429 holds every request of the target until its `Retry-After` has
//!   passed; requests that were waiting take new turns after it.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The share of the allowed rate homebase uses.
pub const HEADROOM: f64 = 0.98;

pub struct Pace {
    state: Mutex<State>,
}

struct State {
    /// Requests per minute the configuration allows.
    configured: f64,
    /// Requests per second the bucket refills with now.
    per_second: f64,
    /// The first and the latest `X-RateLimit-Limit` seen.
    first_limit: Option<u32>,
    last_limit: Option<u32>,
    /// May go below zero: each waiting request has reserved its token.
    tokens: f64,
    /// How many tokens the bucket holds.
    capacity: f64,
    updated: Instant,
    paused_until: Option<Instant>,
    throttled: u64,
}

/// What the bucket has seen, for tests.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaceStats {
    pub per_minute: f64,
    pub throttled: u64,
}

impl Pace {
    pub fn new(requests_per_minute: u32) -> Pace {
        let configured = f64::from(requests_per_minute.max(1));
        Pace {
            state: Mutex::new(State {
                configured,
                per_second: configured * HEADROOM / 60.0,
                first_limit: None,
                last_limit: None,
                tokens: 1.0,
                capacity: 1.0,
                updated: Instant::now(),
                paused_until: None,
                throttled: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves consistent numbers behind.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Wait for this request's turn.
    pub async fn acquire(&self) {
        loop {
            let turn = {
                let mut state = self.lock();
                let now = Instant::now();
                match state.paused_until {
                    Some(until) if until > now => Err(until),
                    _ => {
                        state.refill(now);
                        state.tokens -= 1.0;
                        Ok((state.tokens < 0.0).then(|| {
                            now + Duration::from_secs_f64(-state.tokens / state.per_second)
                        }))
                    }
                }
            };
            match turn {
                Ok(None) => return,
                Ok(Some(at)) => {
                    tokio::time::sleep_until(at).await;
                    // A 429 while this request waited: take a new turn after it.
                    let paused = self
                        .lock()
                        .paused_until
                        .is_some_and(|until| until > Instant::now());
                    if !paused {
                        return;
                    }
                }
                Err(until) => tokio::time::sleep_until(until).await,
            }
        }
    }

    /// The server's `X-RateLimit-Limit` of an answer.
    pub fn observe_limit(&self, limit: u32) {
        let mut state = self.lock();
        let first = *state.first_limit.get_or_insert(limit);
        if state.last_limit != Some(limit) && first > 0 {
            let now = Instant::now();
            state.refill(now);
            let per_minute = state.configured * f64::from(limit) / f64::from(first);
            state.per_second = per_minute.max(1.0) * HEADROOM / 60.0;
        }
        state.last_limit = Some(limit);
        state.capacity = (f64::from(limit) * (1.0 - HEADROOM) / 2.0).floor().max(1.0);
    }

    /// A 429: nothing goes out before `retry_after` has passed.
    pub fn throttled(&self, retry_after: Duration) {
        let mut state = self.lock();
        let until = Instant::now() + retry_after;
        state.paused_until = Some(state.paused_until.map_or(until, |p| p.max(until)));
        state.tokens = 0.0;
        state.updated = state.paused_until.unwrap_or(until);
        state.throttled += 1;
    }

    #[cfg(test)]
    pub fn stats(&self) -> PaceStats {
        let state = self.lock();
        PaceStats {
            per_minute: state.per_second * 60.0 / HEADROOM,
            throttled: state.throttled,
        }
    }
}

impl State {
    fn refill(&mut self, now: Instant) {
        if now > self.updated {
            let earned = (now - self.updated).as_secs_f64() * self.per_second;
            self.tokens = (self.tokens + earned).min(self.capacity);
            self.updated = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Start `n` requests at once and record when each got its turn.
    async fn turns(pace: &Pace, n: usize) -> Vec<Duration> {
        let start = Instant::now();
        let mut at = Vec::new();
        for _ in 0..n {
            pace.acquire().await;
            at.push(start.elapsed());
        }
        at
    }

    #[tokio::test(start_paused = true)]
    async fn spaces_requests_just_under_the_rate() {
        let pace = Pace::new(120);
        let at = turns(&pace, 5).await;
        // 120/min at 98 %: one request every 0.5102 s, the first at once.
        assert_eq!(at[0], Duration::ZERO);
        let step = at[4].as_secs_f64() / 4.0;
        assert!((step - 60.0 / (120.0 * HEADROOM)).abs() < 1e-3, "{step}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_minute_stays_under_the_limit_and_uses_almost_all_of_it() {
        let pace = Pace::new(120);
        let start = Instant::now();
        let mut count = 0;
        while start.elapsed() < Duration::from_secs(60) {
            pace.acquire().await;
            if start.elapsed() < Duration::from_secs(60) {
                count += 1;
            }
        }
        assert!((115..=120).contains(&count), "{count} requests in a minute");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_waiters_share_one_bucket() {
        let pace = std::sync::Arc::new(Pace::new(600));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let pace = pace.clone();
            tasks.push(tokio::spawn(async move {
                pace.acquire().await;
                start.elapsed()
            }));
        }
        let mut at = Vec::new();
        for task in tasks {
            at.push(task.await.unwrap());
        }
        at.sort();
        // 600/min at 98 %: ten turns over 9 × 0.102 s.
        assert!(at[9] >= Duration::from_millis(900), "{at:?}");
        assert!(at[9] <= Duration::from_millis(950), "{at:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lower_limit_slows_down_in_proportion() {
        let pace = Pace::new(120);
        pace.observe_limit(120);
        pace.observe_limit(120);
        assert!((pace.stats().per_minute - 120.0).abs() < 1e-9);
        pace.observe_limit(60);
        assert!((pace.stats().per_minute - 60.0).abs() < 1e-9);
        let at = turns(&pace, 3).await;
        let step = (at[2] - at[1]).as_secs_f64();
        assert!((step - 60.0 / (60.0 * HEADROOM)).abs() < 1e-3, "{step}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_is_made_up_within_one_percent_of_the_limit() {
        let pace = Pace::new(4800);
        pace.observe_limit(480);
        tokio::time::sleep(Duration::from_secs(1)).await;
        // 480 per window: four requests at once after a second without any.
        let at = turns(&pace, 6).await;
        assert_eq!(&at[..4], &[Duration::ZERO; 4]);
        assert!(at[4] > Duration::ZERO);
        // 120 per window: no burst at all.
        let pace = Pace::new(120);
        pace.observe_limit(120);
        tokio::time::sleep(Duration::from_secs(10)).await;
        let at = turns(&pace, 2).await;
        assert!(at[1] > Duration::from_millis(500), "{at:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_holds_every_request() {
        let pace = std::sync::Arc::new(Pace::new(6000));
        let start = Instant::now();
        pace.acquire().await;
        pace.throttled(Duration::from_secs(3));
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let pace = pace.clone();
            tasks.push(tokio::spawn(async move {
                pace.acquire().await;
                start.elapsed()
            }));
        }
        for task in tasks {
            assert!(task.await.unwrap() >= Duration::from_secs(3));
        }
        assert_eq!(pace.stats().throttled, 1);
    }
}
