//! The gate in front of a target's requests: each request holds a permit
//! while it is on the wire; its end feeds the controller, and the gate's
//! size follows the controller's limit. Fixed when adaptation is off.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::controller::{Controller, Signal};

/// How a request ended, as far as the server's load goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered (whatever it said).
    Answered,
    /// 408, 429, 5xx, a timeout, a dropped or refused connection.
    Overload,
}

pub struct Limiter {
    semaphore: Arc<Semaphore>,
    state: Mutex<State>,
    adaptive: bool,
    ceiling: usize,
    epoch: Instant,
}

struct State {
    controller: Controller,
    /// The limit the semaphore's permits stand for.
    limit: usize,
    /// Permits out beyond a lowered limit: forgotten as they come back.
    debt: usize,
    in_flight: usize,
    completed: u64,
    first: Option<Duration>,
    last_change: Duration,
    /// Σ limit × time, for the mean limit of the run.
    weighted: f64,
    low: usize,
    high: usize,
    /// What the target has to say about its pace (a server's rate limit).
    note: Option<String>,
}

/// What the limiter has seen, for progress and the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub adaptive: bool,
    pub ceiling: usize,
    pub limit: usize,
    pub in_flight: usize,
    pub completed: u64,
    /// Requests per second since the first request.
    pub rate: f64,
    /// The limit averaged over the time requests ran: where it settled.
    pub settled: f64,
    pub low: usize,
    pub high: usize,
    /// How many times overload cut the limit.
    pub cuts: u64,
    /// The target's word on its pace, for the progress line and the summary.
    pub note: Option<String>,
}

/// Where an adaptive limit starts: low enough for a fragile server,
/// doubling per round trip from there.
pub const INITIAL: usize = 4;

impl Limiter {
    /// At most `ceiling` in flight; adaptive: starting at [`INITIAL`].
    pub fn new(ceiling: usize, adaptive: bool) -> Arc<Limiter> {
        let ceiling = ceiling.max(1);
        let start = if adaptive {
            INITIAL.min(ceiling)
        } else {
            ceiling
        };
        Arc::new(Limiter {
            semaphore: Arc::new(Semaphore::new(start)),
            state: Mutex::new(State {
                controller: Controller::new(start, ceiling),
                limit: start,
                debt: 0,
                in_flight: 0,
                completed: 0,
                first: None,
                last_change: Duration::ZERO,
                weighted: 0.0,
                low: start,
                high: start,
                note: None,
            }),
            adaptive,
            ceiling,
            epoch: Instant::now(),
        })
    }

    /// Wait for room for one more request.
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        let permit = self
            .semaphore
            .clone()
            .acquire_owned()
            .await
            .expect("the limiter's semaphore is never closed");
        let now = self.epoch.elapsed();
        let mut state = self.lock();
        state.in_flight += 1;
        if state.first.is_none() {
            state.first = Some(now);
            state.last_change = now;
        }
        drop(state);
        Permit {
            limiter: self.clone(),
            permit: Some(permit),
            start: Instant::now(),
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let now = self.epoch.elapsed();
        let state = self.lock();
        let span = state
            .first
            .map_or(0.0, |first| now.saturating_sub(first).as_secs_f64());
        let weighted = state.weighted
            + state.limit as f64 * now.saturating_sub(state.last_change).as_secs_f64();
        Snapshot {
            adaptive: self.adaptive,
            ceiling: self.ceiling,
            limit: state.limit,
            in_flight: state.in_flight,
            completed: state.completed,
            rate: if span > 0.0 {
                state.completed as f64 / span
            } else {
                0.0
            },
            settled: if span > 0.0 {
                weighted / span
            } else {
                state.limit as f64
            },
            low: state.low,
            high: state.high,
            cuts: state.controller.cuts(),
            note: state.note.clone(),
        }
    }

    /// What the target has to say about its pace, shown beside its limit.
    pub fn set_note(&self, note: Option<String>) {
        let mut state = self.lock();
        if state.note != note {
            state.note = note;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn release(&self, permit: OwnedSemaphorePermit, sample: Option<Signal>) {
        let now = self.epoch.elapsed();
        let mut state = self.lock();
        let in_flight = state.in_flight;
        state.in_flight -= 1;
        if sample.is_some() {
            state.completed += 1;
        }
        if let (true, Some(signal)) = (self.adaptive, sample) {
            let new = state.controller.record(now, signal, in_flight);
            if new != state.limit {
                let since = now.saturating_sub(state.last_change).as_secs_f64();
                state.weighted += state.limit as f64 * since;
                state.last_change = now;
                if new > state.limit {
                    let grow = new - state.limit;
                    let paid = grow.min(state.debt);
                    state.debt -= paid;
                    self.semaphore.add_permits(grow - paid);
                } else {
                    state.debt += state.limit - new;
                }
                state.limit = new;
                state.low = state.low.min(new);
                state.high = state.high.max(new);
            }
        }
        if state.debt > 0 {
            state.debt -= 1;
            permit.forget();
        }
    }
}

/// Room for one request. [`Permit::finish`] tells the limiter how it went;
/// a permit dropped unfinished (a cancelled request) teaches it nothing.
pub struct Permit {
    limiter: Arc<Limiter>,
    permit: Option<OwnedSemaphorePermit>,
    start: Instant,
}

impl Permit {
    pub fn finish(mut self, outcome: Outcome) {
        let signal = match outcome {
            Outcome::Answered => Signal::Answered(self.start.elapsed()),
            Outcome::Overload => Signal::Overload,
        };
        if let Some(permit) = self.permit.take() {
            self.limiter.release(permit, Some(signal));
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.limiter.release(permit, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_fixed_limiter_holds_its_ceiling() {
        let limiter = Limiter::new(3, false);
        let permits: Vec<Permit> =
            futures::future::join_all((0..3).map(|_| limiter.acquire())).await;
        assert_eq!(limiter.snapshot().in_flight, 3);
        // A fourth waits until one comes back.
        let fourth = tokio::spawn({
            let limiter = limiter.clone();
            async move { limiter.acquire().await }
        });
        tokio::task::yield_now().await;
        assert!(!fourth.is_finished());
        for p in permits {
            p.finish(Outcome::Overload);
        }
        let _fourth = fourth.await.unwrap();
        let snap = limiter.snapshot();
        assert_eq!((snap.limit, snap.in_flight, snap.completed), (3, 1, 3));
    }

    #[tokio::test(start_paused = true)]
    async fn the_gate_follows_the_limit_down_and_up() {
        let limiter = Limiter::new(16, true);
        assert_eq!(limiter.snapshot().limit, INITIAL);
        // Flat latency with the limit in use: slow start doubles it.
        for _ in 0..4 {
            let permits =
                futures::future::join_all((0..limiter.snapshot().limit).map(|_| limiter.acquire()))
                    .await;
            tokio::time::advance(Duration::from_millis(10)).await;
            for p in permits {
                p.finish(Outcome::Answered);
            }
        }
        assert_eq!(limiter.snapshot().limit, 16);
        assert_eq!(limiter.semaphore.available_permits(), 16);
        // An overload cuts it; permits out beyond the new limit are forgotten.
        let permits = futures::future::join_all((0..16).map(|_| limiter.acquire())).await;
        let mut permits = permits.into_iter();
        permits.next().unwrap().finish(Outcome::Overload);
        let cut = limiter.snapshot().limit;
        assert_eq!(cut, 11);
        for p in permits {
            drop(p);
        }
        assert_eq!(limiter.semaphore.available_permits(), cut);
        let snap = limiter.snapshot();
        assert_eq!((snap.low, snap.high, snap.cuts), (INITIAL, 16, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_request_teaches_nothing() {
        let limiter = Limiter::new(8, true);
        drop(limiter.acquire().await);
        let snap = limiter.snapshot();
        assert_eq!(
            (snap.completed, snap.in_flight, snap.limit),
            (0, 0, INITIAL)
        );
    }
}
