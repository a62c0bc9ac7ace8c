//! Progress is a reporter: the executor counts, this module shows. Bars per
//! target on a terminal (indicatif); plain periodic lines otherwise; never both.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::adaptive::{Limiter, Snapshot};
use crate::output::Output;

/// Counters of one target.
#[derive(Default)]
pub struct Counter {
    pub total: AtomicU64,
    pub done: AtomicU64,
    pub failed: AtomicU64,
}

pub struct Progress {
    counters: BTreeMap<String, Arc<Counter>>,
    /// The request gates of targets that have one: their limit and rate
    /// are shown beside their counts.
    limiters: BTreeMap<String, Arc<Limiter>>,
    bars: BTreeMap<String, ProgressBar>,
    multi: Option<MultiProgress>,
    lines: bool,
    started: Instant,
    last_line: std::sync::Mutex<Instant>,
}

impl Progress {
    /// `totals`: actions to carry out per target.
    pub fn new(
        output: &Output,
        totals: &BTreeMap<String, u64>,
        limiters: BTreeMap<String, Arc<Limiter>>,
    ) -> Progress {
        let counters: BTreeMap<String, Arc<Counter>> = totals
            .iter()
            .map(|(name, total)| {
                let c = Counter::default();
                c.total.store(*total, Ordering::Relaxed);
                (name.clone(), Arc::new(c))
            })
            .collect();
        let mut bars = BTreeMap::new();
        let multi = output.bars.then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
            // indicatif's own {per_sec} prints every digit of the float.
            let style = ProgressStyle::with_template(
                "{prefix:>14} [{bar:30}] {pos:>6}/{len:6} {rate:>8} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{}", rate(state.per_sec()));
                },
            )
            .progress_chars("=> ");
            for (name, total) in totals {
                let bar = multi.add(ProgressBar::new(*total));
                bar.set_style(style.clone());
                bar.set_prefix(name.clone());
                bars.insert(name.clone(), bar);
            }
            multi
        });
        Progress {
            counters,
            limiters,
            bars,
            multi,
            lines: !output.bars && !output.quiet,
            started: Instant::now(),
            last_line: std::sync::Mutex::new(Instant::now()),
        }
    }

    pub fn finished(&self, target: &str, ok: bool) {
        if let Some(counter) = self.counters.get(target) {
            counter.done.fetch_add(1, Ordering::Relaxed);
            if !ok {
                counter.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(bar) = self.bars.get(target) {
            bar.inc(1);
            let failed = self
                .counters
                .get(target)
                .map_or(0, |c| c.failed.load(Ordering::Relaxed));
            let mut message = match self.limiters.get(target) {
                Some(limiter) => gate(&limiter.snapshot()),
                None => String::new(),
            };
            if failed > 0 {
                message.push_str(&format!(" {failed} failed"));
            }
            bar.set_message(message);
        }
        if self.lines {
            self.maybe_line();
        }
    }

    /// A plain progress line at most every five seconds.
    fn maybe_line(&self) {
        let Ok(mut last) = self.last_line.lock() else {
            return;
        };
        if last.elapsed() < Duration::from_secs(5) {
            return;
        }
        *last = Instant::now();
        eprintln!(
            "progress {:>5.1}s: {}",
            self.started.elapsed().as_secs_f64(),
            self.summary()
        );
    }

    fn summary(&self) -> String {
        self.counters
            .iter()
            .map(|(name, c)| {
                let failed = c.failed.load(Ordering::Relaxed);
                let failed = if failed > 0 {
                    format!(" ({failed} failed)")
                } else {
                    String::new()
                };
                let gate = match self.limiters.get(name) {
                    Some(limiter) => format!(" [{}]", gate(&limiter.snapshot())),
                    None => String::new(),
                };
                format!(
                    "{name} {}/{}{failed}{gate}",
                    c.done.load(Ordering::Relaxed),
                    c.total.load(Ordering::Relaxed)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A message that must not be drawn over: printed above the bars on a
    /// terminal (they redraw below it), plainly otherwise.
    pub fn say(&self, output: &Output, message: &str) {
        match &self.multi {
            Some(multi) => multi.suspend(|| output.warn(message)),
            None => output.warn(message),
        }
    }

    /// Clear the bars, then print the final counts (a terminal too: the bars
    /// are gone, the counts stay).
    pub fn finish(&self) {
        for bar in self.bars.values() {
            bar.finish_and_clear();
        }
        if let Some(multi) = &self.multi {
            let _ = multi.clear();
        }
        if (self.lines || self.multi.is_some()) && !self.counters.is_empty() {
            eprintln!(
                "done in {:.1}s: {}",
                self.started.elapsed().as_secs_f64(),
                self.summary()
            );
        }
    }
}

/// A gate's state in a few words: `limit 12 (5 in flight), 430 req/s`.
fn gate(s: &Snapshot) -> String {
    let mut text = format!(
        "limit {} ({} in flight), {:.0} req/s",
        s.limit, s.in_flight, s.rate
    );
    if let Some(note) = &s.note {
        text.push_str("; ");
        text.push_str(note);
    }
    text
}

/// Where a target's limit settled, for the summary after the run.
pub fn settled(name: &str, s: &Snapshot) -> String {
    let mut text = settled_limit(name, s);
    if let Some(note) = &s.note {
        text.push_str("; ");
        text.push_str(note);
    }
    text
}

fn settled_limit(name: &str, s: &Snapshot) -> String {
    if s.adaptive {
        format!(
            "{name}: requests in flight settled at {:.1} (adaptive between {} and {}, ceiling {}; cut {} time(s) for overload); {} requests, {:.0}/s",
            s.settled, s.low, s.high, s.ceiling, s.cuts, s.completed, s.rate
        )
    } else {
        format!(
            "{name}: {} requests in flight at most (fixed); {} requests, {:.0}/s",
            s.ceiling, s.completed, s.rate
        )
    }
}

/// Actions per second as a person reads it: `1166/s`, `3.5/s`.
fn rate(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec <= 0.0 {
        "-".to_string()
    } else if per_sec < 10.0 {
        format!("{per_sec:.1}/s")
    } else {
        format!("{per_sec:.0}/s")
    }
}

#[cfg(test)]
mod tests {
    use super::rate;

    #[test]
    fn rates_have_few_digits() {
        assert_eq!(rate(1166.4987984458), "1166/s");
        assert_eq!(rate(3.456), "3.5/s");
        assert_eq!(rate(0.0), "-");
        assert_eq!(rate(f64::NAN), "-");
    }
}
