//! Pacing for one Snipe-IT API user: turns shared by every request of the
//! target, kept just under the server's throttle and adjusted from
//! what the server answers.
//!
//! Snipe-IT throttles per API user with Laravel's limiter: a fixed window of
//! a minute that opens with the user's first request, `API_THROTTLE_PER_MINUTE`
//! requests in it (120 by default; v8.1 and older also have Laravel's 60 a
//! minute in front), then 429 until the window ends. The budget belongs to
//! the Snipe-IT user, not to homebase: the web UI and other integrations of
//! the same user spend it too. Every answer that got through carries
//! `X-RateLimit-Limit` and `X-RateLimit-Remaining`.
//!
//! - The pace is min(`requests_per_minute`, `X-RateLimit-Limit`) at
//!   [`HEADROOM`], from the first answer on; a later change of the header is
//!   followed the same way.
//! - Requests go out evenly spaced, a time made up after a pause neither,
//!   so that no minute, wherever it starts, holds more than `1 + rate × 60 s`.
//!   A turn reserved at a rate that has since fallen, or before a 429, is
//!   reserved again.
//! - Each answer's `X-RateLimit-Remaining` is compared with what homebase
//!   sent since the window opened (a rise of `Remaining` opens a window).
//!   Fewer left than homebase used means another client shares the budget:
//!   what is left of the window's budget, less what the other client will
//!   spend at the pace it went so far, is spread over the rest of the
//!   window, and nothing goes out once it is spent.
//! - A 429 holds every request of the target: until `Retry-After` or
//!   `X-RateLimit-Reset` (capped at [`MAX_HOLD`]; a longer one is reported),
//!   or, when the answer says neither (Snipe-IT up to 8.1), until the window
//!   that homebase saw open ends (a minute when it saw none open).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The share of the allowed rate homebase uses.
pub const HEADROOM: f64 = 0.98;

/// Laravel's throttle window in Snipe-IT.
pub const WINDOW: Duration = Duration::from_secs(60);

/// The longest one 429 holds the target: two windows. A `Retry-After` or
/// `X-RateLimit-Reset` further away is not believed (one Snipe-IT answered
/// 367,946,340 s) and is reported.
pub const MAX_HOLD: Duration = Duration::from_secs(120);

/// Requests not ours before homebase believes another client is at work:
/// answers can overtake each other by the requests in flight.
fn foreign_threshold(limit: u32) -> u32 {
    (limit / 50).max(3)
}

pub struct Pace {
    state: Mutex<State>,
}

struct State {
    /// Requests per minute the configuration allows.
    configured: f64,
    /// The latest `X-RateLimit-Limit`.
    server_limit: Option<u32>,
    /// Requests per second now.
    per_second: f64,
    /// The earliest time of the next turn; each waiting request has
    /// reserved the one before it.
    next: Instant,
    /// The latest turn given.
    last: Option<Instant>,
    /// Bumped when a pause or a new rate voids the turns reserved so far:
    /// their requests reserve again.
    generation: u64,
    paused_until: Option<Instant>,
    throttled: u64,
    /// Requests given a turn so far: the sequence number of the next one.
    sent: u64,
    window: Option<WindowSeen>,
    /// The most requests of another client seen in one window.
    foreign_most: u32,
    /// The longest wait the server asked for beyond [`MAX_HOLD`], in seconds.
    absurd: Option<u64>,
}

/// The server's window as homebase sees it.
#[derive(Debug, Clone, Copy)]
struct WindowSeen {
    /// When the request that found the window fresh was sent (the window
    /// opened at that moment or a little before).
    opened: Instant,
    /// The sequence number of our first request counted in it.
    first_seq: u64,
    remaining: u32,
    /// Requests of others counted in it, as of the latest answer.
    foreign: u32,
    /// The latest request whose answer counted: earlier ones answered
    /// later say less.
    latest_seq: u64,
}

/// One request's turn: its sequence number, for [`Pace::observe`].
#[derive(Debug, Clone, Copy)]
pub struct Turn {
    pub seq: u64,
    pub at: Instant,
}

/// What a 429 said about how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// `Retry-After` (seconds or a date).
    RetryAfter(Duration),
    /// `X-RateLimit-Reset`, as seconds from now.
    Reset(Duration),
    /// Nothing: Snipe-IT up to 8.1.
    Unsaid,
}

/// What the pace has seen, for tests.
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
                server_limit: None,
                per_second: configured * HEADROOM / 60.0,
                next: Instant::now(),
                last: None,
                generation: 0,
                paused_until: None,
                throttled: 0,
                sent: 0,
                window: None,
                foreign_most: 0,
                absurd: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves consistent numbers behind.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Wait for this request's turn: evenly spaced after the one before,
    /// never inside a pause. A turn reserved before the rate fell or a 429
    /// came is reserved again.
    pub async fn acquire(&self) -> Turn {
        loop {
            let (until, generation) = {
                let mut state = self.lock();
                let now = Instant::now();
                match state.paused_until {
                    Some(until) if until > now => (until, None),
                    _ => {
                        let slot = state.next.max(now);
                        state.next = slot + state.interval();
                        if slot <= now {
                            return state.take_turn(now);
                        }
                        (slot, Some(state.generation))
                    }
                }
            };
            tokio::time::sleep_until(until).await;
            if let Some(generation) = generation {
                let mut state = self.lock();
                let now = Instant::now();
                let paused = state.paused_until.is_some_and(|p| p > now);
                if state.generation == generation && !paused {
                    return state.take_turn(now);
                }
            }
        }
    }

    /// The rate-limit headers of an answer to the request of `turn`.
    pub fn observe(&self, turn: Turn, limit: Option<u32>, remaining: Option<u32>) {
        let mut state = self.lock();
        let now = Instant::now();
        if let Some(limit) = limit {
            state.server_limit = Some(limit);
        }
        let base = state.base_per_minute();
        let mut per_minute = base;
        if let (Some(limit), Some(remaining)) = (state.server_limit, remaining) {
            let used = limit.saturating_sub(remaining);
            let stale = state.window.is_some_and(|w| turn.seq < w.latest_seq);
            let fresh = match state.window {
                None => true,
                Some(w) => !stale && (remaining > w.remaining || turn.at >= w.opened + WINDOW),
            };
            if fresh {
                // Count what the window holds as ours: a stranger is only
                // believed once the count says so.
                state.window = Some(WindowSeen {
                    opened: turn.at,
                    first_seq: (turn.seq + 1).saturating_sub(u64::from(used)),
                    remaining,
                    foreign: 0,
                    latest_seq: turn.seq,
                });
            }
            let mut window = state.window.expect("set above");
            window.latest_seq = window.latest_seq.max(turn.seq);
            let ours = (turn.seq + 1).saturating_sub(window.first_seq);
            let foreign = u64::from(used).saturating_sub(ours) as u32;
            window.remaining = window.remaining.min(remaining);
            window.foreign = window.foreign.max(foreign);
            state.window = Some(window);
            if window.foreign >= foreign_threshold(limit) {
                state.foreign_most = state.foreign_most.max(window.foreign);
                // Spread what is left over what is left of the window.
                // The other client goes on at the pace it went so far.
                let left = (window.opened + WINDOW).saturating_duration_since(now);
                let gone = now.saturating_duration_since(window.opened).as_secs_f64();
                let theirs = f64::from(window.foreign) / gone.max(1.0) * left.as_secs_f64();
                let spendable = f64::from(window.remaining) - theirs - 2.0;
                if spendable <= 0.0 {
                    let until = window.opened + WINDOW + Duration::from_secs(1);
                    state.pause_until(until);
                } else {
                    let fair = spendable * 60.0 / left.as_secs_f64().max(1.0) / HEADROOM;
                    per_minute = base.min(fair.max(1.0));
                }
            }
        }
        state.set_rate(per_minute * HEADROOM / 60.0, now);
    }

    /// A 429: nothing goes out before the wait it implies has passed.
    /// Returns the hold and, if the server asked for more than
    /// [`MAX_HOLD`], what it asked for.
    pub fn throttled(&self, wait: Wait) -> (Duration, Option<Duration>) {
        let mut state = self.lock();
        let now = Instant::now();
        let (hold, asked) = match wait {
            Wait::RetryAfter(d) | Wait::Reset(d) if d > MAX_HOLD => (MAX_HOLD, Some(d)),
            Wait::RetryAfter(d) | Wait::Reset(d) => (d.max(Duration::from_secs(1)), None),
            Wait::Unsaid => {
                let end = state
                    .window
                    .map(|w| w.opened + WINDOW + Duration::from_secs(1))
                    .filter(|end| *end > now)
                    .map_or(WINDOW, |end| end - now);
                (end.clamp(Duration::from_secs(1), WINDOW), None)
            }
        };
        if let Some(asked) = asked {
            let secs = asked.as_secs();
            state.absurd = Some(state.absurd.map_or(secs, |a| a.max(secs)));
        }
        state.pause_until(now + hold);
        // The next answer opens a new window.
        state.window = None;
        state.throttled += 1;
        (hold, asked)
    }

    /// What the progress line and the summary should say about the pace,
    /// if anything is out of the ordinary.
    pub fn note(&self) -> Option<String> {
        let state = self.lock();
        let mut notes = Vec::new();
        if let Some(limit) = state.server_limit {
            if f64::from(limit) < state.configured {
                notes.push(format!(
                    "Snipe-IT allows {limit} requests/min (X-RateLimit-Limit), fewer than requests_per_minute {}: paced to {limit}",
                    state.configured
                ));
            }
        }
        if state.foreign_most > 0 {
            notes.push(format!(
                "another client of the same Snipe-IT API user spent up to {} requests of a window: slowed down to share the budget (a dedicated API user avoids this)",
                state.foreign_most
            ));
        }
        if state.throttled > 0 {
            notes.push(format!("{} × HTTP 429 waited out", state.throttled));
        }
        if let Some(secs) = state.absurd {
            notes.push(format!(
                "Snipe-IT asked to wait {secs} s; waited {} s at most",
                MAX_HOLD.as_secs()
            ));
        }
        (!notes.is_empty()).then(|| notes.join("; "))
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
    fn base_per_minute(&self) -> f64 {
        match self.server_limit {
            Some(limit) if limit > 0 => self.configured.min(f64::from(limit)),
            _ => self.configured,
        }
    }

    fn interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.per_second)
    }

    fn take_turn(&mut self, now: Instant) -> Turn {
        let seq = self.sent;
        self.sent += 1;
        self.last = Some(now);
        Turn { seq, at: now }
    }

    /// Nothing goes out before `until`; turns reserved so far are void.
    fn pause_until(&mut self, until: Instant) {
        let until = self.paused_until.map_or(until, |p| p.max(until));
        self.paused_until = Some(until);
        self.next = until;
        self.generation += 1;
    }

    /// A new rate: a change of more than 2 % voids the turns reserved at
    /// the old one (the next one comes an interval after the last).
    fn set_rate(&mut self, per_second: f64, now: Instant) {
        let old = self.per_second;
        self.per_second = per_second;
        if (per_second - old).abs() > old * 0.02 {
            let after_last = self.last.map_or(now, |l| l + self.interval());
            let paused = self.paused_until.filter(|p| *p > now);
            self.next = paused.map_or(after_last, |p| p.max(after_last));
            self.generation += 1;
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
        assert!((115..=119).contains(&count), "{count} requests in a minute");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_waiters_share_one_pace() {
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
    async fn the_server_limit_caps_the_configured_rate_from_the_first_answer() {
        let pace = Pace::new(600);
        let turn = pace.acquire().await;
        pace.observe(turn, Some(120), Some(119));
        assert!((pace.stats().per_minute - 120.0).abs() < 1e-9);
        assert!(pace.note().unwrap().contains("paced to 120"));
        let at = turns(&pace, 3).await;
        let step = (at[2] - at[1]).as_secs_f64();
        assert!((step - 60.0 / (120.0 * HEADROOM)).abs() < 1e-3, "{step}");
        // A higher limit than configured does not raise the pace.
        let pace = Pace::new(120);
        let turn = pace.acquire().await;
        pace.observe(turn, Some(600), Some(599));
        assert!((pace.stats().per_minute - 120.0).abs() < 1e-9);
        assert_eq!(pace.note(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn turns_reserved_before_a_lower_limit_are_reserved_again() {
        let pace = std::sync::Arc::new(Pace::new(1200));
        let start = Instant::now();
        let first = pace.acquire().await;
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let pace = pace.clone();
            tasks.push(tokio::spawn(async move {
                pace.acquire().await;
                start.elapsed()
            }));
        }
        tokio::task::yield_now().await;
        // All ten have their turns at 1200/min; then the server says 60.
        pace.observe(first, Some(60), Some(59));
        let mut at = Vec::new();
        for task in tasks {
            at.push(task.await.unwrap());
        }
        at.sort();
        // 60/min at 98 %: one every 1.02 s, the first of them a step after the first turn.
        assert!(at[0] >= Duration::from_millis(1000), "{at:?}");
        assert!(at[9] >= Duration::from_millis(10_000), "{at:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_is_not_made_up_with_a_burst() {
        let pace = Pace::new(120);
        let turn = pace.acquire().await;
        pace.observe(turn, Some(120), Some(119));
        tokio::time::sleep(Duration::from_secs(10)).await;
        let at = turns(&pace, 2).await;
        assert!(at[1] > Duration::from_millis(500), "{at:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_holds_every_request_and_is_capped() {
        let pace = std::sync::Arc::new(Pace::new(6000));
        let start = Instant::now();
        pace.acquire().await;
        let (hold, asked) = pace.throttled(Wait::RetryAfter(Duration::from_secs(3)));
        assert_eq!((hold, asked), (Duration::from_secs(3), None));
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
        let (hold, asked) = pace.throttled(Wait::RetryAfter(Duration::from_secs(367_946_340)));
        assert_eq!(hold, MAX_HOLD);
        assert_eq!(asked, Some(Duration::from_secs(367_946_340)));
        assert!(pace.note().unwrap().contains("asked to wait 367946340 s"));
        let (hold, _) = pace.throttled(Wait::Reset(Duration::from_secs(7)));
        assert_eq!(hold, Duration::from_secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_without_headers_holds_to_the_end_of_the_window_seen() {
        let pace = Pace::new(60);
        let start = Instant::now();
        let turn = pace.acquire().await;
        pace.observe(turn, Some(60), Some(59));
        tokio::time::sleep(Duration::from_secs(20)).await;
        // The window opened with the first request: 40 s of it are left.
        let (hold, _) = pace.throttled(Wait::Unsaid);
        assert_eq!(hold, Duration::from_secs(41));
        pace.acquire().await;
        assert!(
            start.elapsed() >= Duration::from_secs(61),
            "{:?}",
            start.elapsed()
        );
        // Nothing seen of the window: a whole one.
        let pace = Pace::new(60);
        pace.acquire().await;
        assert_eq!(pace.throttled(Wait::Unsaid).0, WINDOW);
    }

    #[tokio::test(start_paused = true)]
    async fn another_client_on_the_budget_slows_homebase_down() {
        let pace = Pace::new(120);
        let mut foreign = 0;
        let start = Instant::now();
        let mut ours = 0u32;
        // Another client spends one request a second of the same 120.
        while start.elapsed() < Duration::from_secs(59) {
            let turn = pace.acquire().await;
            ours += 1;
            foreign = start.elapsed().as_secs() as u32;
            let remaining = 120u32.saturating_sub(ours + foreign);
            pace.observe(turn, Some(120), Some(remaining));
            assert!(
                ours + foreign <= 120,
                "{ours} + {foreign} by {:?}",
                start.elapsed()
            );
        }
        assert!(
            ours <= 70,
            "{ours} requests of homebase in the shared window"
        );
        let note = pace.note().unwrap();
        assert!(note.contains("another client"), "{note}");
        assert!(
            ours + foreign >= 100,
            "{ours} + {foreign}: the budget was not used"
        );
    }
}
