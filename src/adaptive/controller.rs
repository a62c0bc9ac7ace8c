//! The concurrency controller: pure arithmetic on completed requests, fed
//! the clock by its caller so that tests can simulate any server.
//!
//! Vegas-style (after TCP Vegas and Netflix's concurrency-limits): the
//! lowest mean latency seen is the server's no-load time; a window whose
//! mean lies above it says how many of the requests in flight were only
//! queueing (Little's law: `in_flight × (1 − base / mean)`). Few queued and
//! the limit in use → grow; many queued → shrink by one; overload signals
//! (429, 503, timeouts, resets) → shrink multiplicatively. Chosen over plain
//! AIMD because AIMD needs errors to find the top: against `scim2-server`,
//! whose listen queue holds five connections, the errors are resets that
//! cost a retry each. Latency says "enough" before the server has to.

use std::time::Duration;

/// What one completed request says about the server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Signal {
    /// An answer (success or a plain refusal such as 404 or 409), and how
    /// long it took.
    Answered(Duration),
    /// Back-pressure: 429, 503 (and other 5xx), a timeout, a reset.
    Overload,
}

/// Multiplicative decrease on overload.
const BACK_OFF: f64 = 0.7;
/// How fast the no-load latency follows a slower server (seconds): a store
/// that grows makes every request dearer, and that is not queueing.
const BASE_DRIFT_SECS: f64 = 30.0;
/// The shortest window: below this, timer noise decides.
const MIN_WINDOW: Duration = Duration::from_millis(2);

#[derive(Debug, Clone)]
pub struct Controller {
    limit: f64,
    ceiling: f64,
    /// Doubling per window until the first sign of queueing or overload.
    slow_start: bool,
    /// The no-load mean latency, seconds.
    base: Option<f64>,
    /// The last window's mean latency, seconds: the next window's length.
    rtt: f64,
    window: Window,
    /// When the limit was last cut for overload, and how often it was.
    last_cut: Option<Duration>,
    cuts: u64,
}

#[derive(Debug, Clone, Default)]
struct Window {
    start: Duration,
    answered: u32,
    latency_sum: f64,
    /// Most requests in flight seen while the window was open.
    peak: usize,
}

impl Controller {
    /// Start at `initial` (at least 1) below the hard `ceiling`.
    pub fn new(initial: usize, ceiling: usize) -> Controller {
        let ceiling = ceiling.max(1) as f64;
        Controller {
            limit: (initial.max(1) as f64).min(ceiling),
            ceiling,
            slow_start: true,
            base: None,
            rtt: 0.0,
            window: Window::default(),
            last_cut: None,
            cuts: 0,
        }
    }

    /// The requests allowed in flight now.
    pub fn limit(&self) -> usize {
        self.limit as usize
    }

    /// How many times overload cut the limit.
    pub fn cuts(&self) -> u64 {
        self.cuts
    }

    /// Record one completed request, `now` on the caller's monotonic clock,
    /// with `in_flight` requests (this one included) out at its end. Returns
    /// the limit from now on.
    pub fn record(&mut self, now: Duration, signal: Signal, in_flight: usize) -> usize {
        let length = Duration::from_secs_f64(self.rtt).max(MIN_WINDOW);
        let w = &mut self.window;
        w.peak = w.peak.max(in_flight);
        match signal {
            Signal::Answered(latency) => {
                w.answered += 1;
                w.latency_sum += latency.as_secs_f64();
                if now.saturating_sub(w.start) >= length {
                    self.close_window(now);
                }
            }
            // One cut per round trip: the refusals of requests sent before
            // the cut must not cut the limit again.
            Signal::Overload
                if self
                    .last_cut
                    .is_some_and(|t| now.saturating_sub(t) < length) => {}
            Signal::Overload => {
                self.slow_start = false;
                self.limit = (self.limit * BACK_OFF).floor().max(1.0);
                self.last_cut = Some(now);
                self.cuts += 1;
                self.window = Window {
                    start: now,
                    ..Window::default()
                };
            }
        }
        self.limit()
    }

    /// Judge a window's latency: grow, hold or shrink.
    fn close_window(&mut self, now: Duration) {
        let w = std::mem::take(&mut self.window);
        self.window.start = now;
        let mean = w.latency_sum / f64::from(w.answered);
        let elapsed = now.saturating_sub(w.start).as_secs_f64();
        let base = match self.base {
            Some(base) if mean > base => {
                base + (mean - base) * (elapsed / BASE_DRIFT_SECS).min(1.0)
            }
            _ => mean,
        };
        self.base = Some(base);
        self.rtt = mean;
        let queued = w.peak as f64 * (1.0 - base / mean.max(f64::MIN_POSITIVE));
        let log = self.limit.log10().max(0.0);
        let (alpha, beta) = ((3.0 * log).max(2.0), (6.0 * log).max(4.0));
        // Growth only when the limit was in use: an idle limit says nothing.
        let used = w.peak as f64 + 1.0 >= self.limit;
        if queued > beta {
            self.slow_start = false;
            self.limit = (self.limit - 1.0).max(1.0);
        } else if queued < alpha && used {
            self.limit = if self.slow_start {
                self.limit * 2.0
            } else {
                self.limit + 1.0
            }
            .min(self.ceiling);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A simulated server: `workers` requests served at once, each taking
    /// `service`, behind `delay` of network; `queue_limit` waiting at most
    /// (beyond that, requests are refused: an overload signal). Runs the
    /// controller for `duration` of simulated time with a closed loop of
    /// clients (as many requests out as the limit allows) and returns the
    /// limit over time (one sample per completed request) and the requests
    /// served.
    struct Sim {
        workers: usize,
        service: Duration,
        delay: Duration,
        queue_limit: usize,
        /// Overload answers for every request completing inside this span.
        burst: Option<(Duration, Duration)>,
    }

    impl Sim {
        fn run(
            &self,
            controller: &mut Controller,
            duration: Duration,
        ) -> (Vec<(Duration, usize)>, u64) {
            use std::cmp::Reverse;
            use std::collections::BinaryHeap;
            let step = Duration::from_micros(100);
            let mut now = Duration::ZERO;
            // Completion times of requests in flight, and their outcome.
            let mut out: BinaryHeap<Reverse<(Duration, Duration, bool)>> = BinaryHeap::new();
            // Times at which each worker becomes free.
            let mut workers = vec![Duration::ZERO; self.workers];
            // When each request at the server (queued or served) leaves it.
            let mut at_server: Vec<Duration> = Vec::new();
            let mut trace = Vec::new();
            let mut served = 0;
            while now < duration {
                while out.len() < controller.limit() {
                    let arrive = now + self.delay / 2;
                    workers.sort();
                    let free = workers[0].max(arrive);
                    at_server.retain(|leaves| *leaves > arrive);
                    let refused = at_server.len() >= self.workers + self.queue_limit
                        || self
                            .burst
                            .is_some_and(|(from, to)| arrive >= from && arrive < to);
                    let done = if refused {
                        arrive + self.delay / 2
                    } else {
                        workers[0] = free + self.service;
                        at_server.push(workers[0]);
                        workers[0] + self.delay / 2
                    };
                    out.push(Reverse((done, now, refused)));
                }
                while let Some(Reverse((done, sent, refused))) = out.peek().copied() {
                    if done > now {
                        break;
                    }
                    let in_flight = out.len();
                    out.pop();
                    let signal = if refused {
                        Signal::Overload
                    } else {
                        served += 1;
                        Signal::Answered(done - sent)
                    };
                    controller.record(now, signal, in_flight);
                    trace.push((now, controller.limit()));
                }
                now += step;
            }
            (trace, served)
        }
    }

    fn settled(trace: &[(Duration, usize)], from: Duration) -> (usize, usize) {
        let tail: Vec<usize> = trace
            .iter()
            .filter(|(t, _)| *t >= from)
            .map(|(_, l)| *l)
            .collect();
        (*tail.iter().min().unwrap(), *tail.iter().max().unwrap())
    }

    #[test]
    fn grows_to_the_ceiling_when_latency_stays_flat() {
        // 20 ms of network, a server with room for everything.
        let sim = Sim {
            workers: 1000,
            service: Duration::from_millis(1),
            delay: Duration::from_millis(20),
            queue_limit: 1000,
            burst: None,
        };
        let mut c = Controller::new(4, 64);
        let (trace, _) = sim.run(&mut c, Duration::from_secs(2));
        let first_at_32 = trace.iter().find(|(_, l)| *l >= 32).expect("reaches 32").0;
        assert!(first_at_32 < Duration::from_millis(300), "{first_at_32:?}");
        assert_eq!(settled(&trace, Duration::from_secs(1)), (64, 64));
    }

    #[test]
    fn never_passes_the_ceiling() {
        let sim = Sim {
            workers: 1000,
            service: Duration::from_millis(1),
            delay: Duration::from_millis(5),
            queue_limit: 1000,
            burst: None,
        };
        let mut c = Controller::new(1, 10);
        let (trace, _) = sim.run(&mut c, Duration::from_secs(1));
        assert!(trace.iter().all(|(_, l)| *l <= 10));
        assert_eq!(c.limit(), 10);
    }

    #[test]
    fn settles_low_against_a_single_threaded_server() {
        // One worker, 2 ms a request, no network delay to speak of: more
        // than a few in flight only queue.
        let sim = Sim {
            workers: 1,
            service: Duration::from_millis(2),
            delay: Duration::from_micros(200),
            queue_limit: 1000,
            burst: None,
        };
        let mut c = Controller::new(4, 64);
        let (trace, served) = sim.run(&mut c, Duration::from_secs(3));
        let (low, high) = settled(&trace, Duration::from_secs(1));
        assert!(low >= 1 && high <= 8, "settled between {low} and {high}");
        // And the server stays busy: within 5 % of its 500 requests/s.
        assert!(served as f64 >= 0.95 * 1500.0, "served {served}");
    }

    #[test]
    fn backs_off_when_the_server_refuses() {
        // Four workers at 2 ms behind 10 ms of network: about 2,000/s, so
        // some 24 in flight keep it busy. It refuses beyond two waiting.
        let sim = Sim {
            workers: 4,
            service: Duration::from_millis(2),
            delay: Duration::from_millis(10),
            queue_limit: 2,
            burst: None,
        };
        let mut c = Controller::new(4, 64);
        let (trace, served) = sim.run(&mut c, Duration::from_secs(3));
        let (low, high) = settled(&trace, Duration::from_secs(1));
        eprintln!("settled {low}..{high}, served {served}");
        assert!(high < 40 && low >= 8, "settled between {low} and {high}");
        assert!(served as f64 >= 0.85 * 6000.0, "served {served}");
    }

    #[test]
    fn drops_within_a_second_of_a_burst_and_recovers_after_it() {
        let burst = (Duration::from_secs(1), Duration::from_millis(1500));
        let sim = Sim {
            workers: 1000,
            service: Duration::from_millis(1),
            delay: Duration::from_millis(20),
            queue_limit: 1000,
            burst: Some(burst),
        };
        let mut c = Controller::new(4, 64);
        let (trace, _) = sim.run(&mut c, Duration::from_secs(4));
        let before = trace.iter().rev().find(|(t, _)| *t < burst.0).unwrap().1;
        assert_eq!(before, 64);
        let low = trace
            .iter()
            .filter(|(t, _)| *t >= burst.0 && *t < burst.0 + Duration::from_secs(1))
            .map(|(_, l)| *l)
            .min()
            .unwrap();
        assert!(low <= 8, "still at {low} a second into the burst");
        // Additive growth after the burst: back to 32+ within two seconds.
        let after = trace
            .iter()
            .find(|(t, l)| *t > burst.1 && *l >= 32)
            .map(|(t, _)| *t - burst.1);
        assert!(
            after.is_some_and(|d| d < Duration::from_secs(2)),
            "{after:?}"
        );
    }

    #[test]
    fn one_decrease_per_window() {
        let mut c = Controller::new(40, 64);
        c.record(
            Duration::from_millis(10),
            Signal::Answered(Duration::from_millis(10)),
            40,
        );
        c.record(
            Duration::from_millis(20),
            Signal::Answered(Duration::from_millis(10)),
            40,
        );
        let before = c.limit();
        // A volley of refusals arriving together cuts once, not per answer.
        let after = c.record(Duration::from_millis(21), Signal::Overload, 40);
        assert_eq!(after, (before as f64 * BACK_OFF) as usize);
        for i in 1..10 {
            let at = Duration::from_millis(21) + Duration::from_micros(i * 100);
            c.record(at, Signal::Overload, 30);
            c.record(at, Signal::Answered(Duration::from_millis(10)), 30);
        }
        assert_eq!(c.limit(), after);
        // A round trip later, a refusal cuts again.
        let again = c.record(Duration::from_millis(40), Signal::Overload, 30);
        assert_eq!(again, (after as f64 * BACK_OFF) as usize);
    }

    #[test]
    fn the_limit_never_goes_below_one() {
        let mut c = Controller::new(2, 8);
        for i in 0..100 {
            c.record(Duration::from_millis(i * 50), Signal::Overload, 1);
        }
        assert_eq!(c.limit(), 1);
    }
}
