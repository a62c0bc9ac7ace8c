//! Group commit for requests: concurrent actions hand in one operation each;
//! while a request is on the wire, the operations that arrive meanwhile
//! queue up and go out together in the next one. An idle batcher sends an
//! operation at once (a batch of one), so nothing waits for a timer.
//!
//! Used for group memberships (one PATCH adds many members: on a server
//! that rewrites the whole group per PATCH, that is the difference between
//! minutes and seconds) and for Bulk creation of users.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use crate::targets::TargetError;

/// Sends one batch; returns one result per operation, in order.
pub type FlushFn<Op, Out> =
    Arc<dyn Fn(Vec<Op>) -> BoxFuture<'static, Vec<Result<Out, TargetError>>> + Send + Sync>;

type Waiting<Op, Out> = (Op, oneshot::Sender<Result<Out, TargetError>>);

/// Whether every operation that could join the next batch has arrived.
pub type ReadyFn = Arc<dyn Fn() -> bool + Send + Sync>;

/// The longest wait for a fuller batch (see [`Batcher::with_ready`]).
const LINGER_MAX: Duration = Duration::from_millis(500);

pub struct Batcher<Op, Out> {
    state: Mutex<State<Op, Out>>,
    max: usize,
    flush: FlushFn<Op, Out>,
    ready: Option<(ReadyFn, Arc<Notify>)>,
}

struct State<Op, Out> {
    queue: Vec<Waiting<Op, Out>>,
    /// A task is sending batches; it takes what queues up until none is left.
    running: bool,
}

impl<Op: Send + 'static, Out: Send + 'static> Batcher<Op, Out> {
    pub fn new(max: usize, flush: FlushFn<Op, Out>) -> Arc<Self> {
        Arc::new(Batcher {
            state: Mutex::new(State {
                queue: Vec::new(),
                running: false,
            }),
            max: max.max(1),
            flush,
            ready: None,
        })
    }

    /// A batcher that, before each batch, waits until `ready` says nothing
    /// more can arrive (or the batch is full), half a second at most; it
    /// looks again whenever `changed` is notified. Where a request costs the
    /// server about the same for one operation as for a hundred (a PATCH of
    /// a large group), fuller batches are what makes a run fast.
    pub fn with_ready(
        max: usize,
        flush: FlushFn<Op, Out>,
        ready: ReadyFn,
        changed: Arc<Notify>,
    ) -> Arc<Self> {
        Arc::new(Batcher {
            state: Mutex::new(State {
                queue: Vec::new(),
                running: false,
            }),
            max: max.max(1),
            flush,
            ready: Some((ready, changed)),
        })
    }

    fn queued(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .queue
            .len()
    }

    /// Wait for a fuller batch, as [`Batcher::with_ready`] says.
    async fn linger(&self) {
        let Some((ready, changed)) = &self.ready else {
            return;
        };
        let deadline = Instant::now() + LINGER_MAX;
        loop {
            // Registered before looking, so no change slips in between.
            let notified = changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let queued = self.queued();
            if queued == 0 || queued >= self.max || ready() {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }

    /// Hand in one operation and wait for its result.
    pub async fn submit(self: &Arc<Self>, op: Op) -> Result<Out, TargetError> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.queue.push((op, tx));
            !std::mem::replace(&mut state.running, true)
        };
        if start {
            let me = self.clone();
            tokio::spawn(async move { me.drain().await });
        }
        rx.await
            .unwrap_or_else(|_| Err(TargetError::transient("the batched request was abandoned")))
    }

    async fn drain(&self) {
        loop {
            self.linger().await;
            let batch: Vec<Waiting<Op, Out>> = {
                let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                if state.queue.is_empty() {
                    state.running = false;
                    return;
                }
                let n = state.queue.len().min(self.max);
                state.queue.drain(..n).collect()
            };
            let (ops, senders): (Vec<Op>, Vec<_>) = batch.into_iter().unzip();
            let results = (self.flush)(ops).await;
            // A missing result drops its sender: that operation sees "abandoned".
            for (tx, result) in senders.into_iter().zip(results) {
                let _ = tx.send(result);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_operations_share_requests() {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let batcher: Arc<Batcher<u32, u32>> = Batcher::new(
            8,
            Arc::new(move |ops: Vec<u32>| {
                seen.fetch_add(1, Ordering::SeqCst);
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    ops.into_iter()
                        .map(|n| {
                            if n == 13 {
                                Err(TargetError::permanent("unlucky"))
                            } else {
                                Ok(n * 2)
                            }
                        })
                        .collect()
                })
            }),
        );
        let tasks: Vec<_> = (0..40u32)
            .map(|n| {
                let b = batcher.clone();
                tokio::spawn(async move { (n, b.submit(n).await) })
            })
            .collect();
        for task in tasks {
            let (n, result) = task.await.unwrap();
            match result {
                Ok(v) => assert_eq!(v, n * 2),
                Err(e) => assert_eq!((n, e.to_string().as_str()), (13, "unlucky")),
            }
        }
        // 40 operations, at most 8 per request, far fewer than 40 requests.
        let n = calls.load(Ordering::SeqCst);
        assert!((5..=12).contains(&n), "{n} requests");
        // Idle again: the next operation goes out alone and at once.
        assert_eq!(batcher.submit(1).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn missing_results_are_transient_failures() {
        let batcher: Arc<Batcher<u32, u32>> =
            Batcher::new(4, Arc::new(|_ops: Vec<u32>| Box::pin(async { Vec::new() })));
        assert!(batcher.submit(1).await.unwrap_err().is_transient());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_ready_batcher_waits_for_everyone() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let arrived = Arc::new(AtomicUsize::new(0));
        let count = arrived.clone();
        let changed = Arc::new(Notify::new());
        let batcher: Arc<Batcher<u32, ()>> = Batcher::with_ready(
            100,
            Arc::new(move |ops: Vec<u32>| {
                seen.lock().unwrap().push(ops.len());
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    ops.iter().map(|_| Ok(())).collect()
                })
            }),
            Arc::new(move || count.load(Ordering::SeqCst) >= 10),
            changed.clone(),
        );
        let tasks: Vec<_> = (0..10u32)
            .map(|n| {
                let b = batcher.clone();
                let arrived = arrived.clone();
                let changed = changed.clone();
                tokio::spawn(async move {
                    // Stragglers: the last ones come 3 ms apart.
                    tokio::time::sleep(Duration::from_millis(u64::from(n) * 3)).await;
                    arrived.fetch_add(1, Ordering::SeqCst);
                    changed.notify_waiters();
                    b.submit(n).await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        // All wait for the last straggler instead of trickling out.
        let sizes = sizes.lock().unwrap().clone();
        assert_eq!(sizes, vec![10]);
        assert_eq!(sizes.iter().sum::<usize>(), 10);
    }
}
