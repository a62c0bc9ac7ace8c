//! Writes that many persons' actions share, in batches — the one batcher of
//! every kind (LDAP group members, SCIM members and Bulk creations, `wg`
//! peer changes).
//!
//! Each action hands in its operations under a key (a group, an interface)
//! and waits for their results. Per key, one batch is written at a time, by
//! whichever waiting action gets to it first, with every operation queued by
//! then (up to `max`); what arrives while a batch is on the wire goes in the
//! next one. Before taking the queue the writer lingers, as the kind says:
//! not at all (group commit), a few milliseconds, until a condition says
//! nothing more can arrive, until no action of the target is at work, or
//! until then and a moment more without arrivals (a gateway's reconfigure). An
//! action's result is its own operation's: its journal entry never records a
//! write the server does not hold.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use crate::targets::busy::BusyCount;
use crate::targets::TargetError;

/// Whether every operation that could join the next batch has arrived.
pub type ReadyFn = Arc<dyn Fn() -> bool + Send + Sync>;

/// How long a writer waits before it takes the queue.
#[derive(Clone)]
pub enum Linger {
    /// Not at all: an idle key writes an operation at once.
    None,
    /// A fixed short time, for the operations of persons just finishing.
    For(Duration),
    /// Until `ready` says nothing more can arrive or the batch is full, at
    /// most `longest`; `ready` is looked at again whenever `changed` is
    /// notified. Where a request costs the server about the same for one
    /// operation as for a hundred, fuller batches make a run fast.
    UntilReady {
        ready: ReadyFn,
        changed: Arc<Notify>,
        longest: Duration,
    },
    /// Until no action of the target is at work (see `BusyCount`); the
    /// actions park themselves while they wait (see [`Batches::wait`]).
    UntilQuiet(BusyCount),
    /// Until no action of the target is at work, then `settle` more, again
    /// while operations keep arriving: for a write that is dear (a gateway's
    /// reconfigure), as the executor starts persons while others finish.
    UntilSettled { busy: BusyCount, settle: Duration },
}

type Sender<Out> = oneshot::Sender<Result<Out, TargetError>>;

struct Queue<Op, Out> {
    pending: Mutex<Vec<(Op, Sender<Out>)>>,
    /// Held while a batch of this key lingers and is written.
    writing: tokio::sync::Mutex<()>,
}

impl<Op, Out> Default for Queue<Op, Out> {
    fn default() -> Self {
        Queue {
            pending: Mutex::new(Vec::new()),
            writing: tokio::sync::Mutex::new(()),
        }
    }
}

/// An operation handed in: its key, the key's queue, where its result comes.
type Ticket<Op, Out> = (
    String,
    Arc<Queue<Op, Out>>,
    oneshot::Receiver<Result<Out, TargetError>>,
);

/// Operations handed in, not yet waited for (see [`Batches::enqueue`]).
pub struct Tickets<Op, Out> {
    waits: Vec<Ticket<Op, Out>>,
}

/// Per key, the operations waiting to be written together.
pub struct Batches<Op, Out> {
    queues: Mutex<HashMap<String, Arc<Queue<Op, Out>>>>,
    max: usize,
    linger: Linger,
}

impl<Op, Out> Batches<Op, Out> {
    /// At most `max` operations per batch.
    pub fn new(max: usize, linger: Linger) -> Self {
        Batches {
            queues: Mutex::default(),
            max: max.max(1),
            linger,
        }
    }

    /// Queue each operation under its key, now: a batch written from here
    /// on holds them.
    pub fn enqueue(&self, items: impl IntoIterator<Item = (String, Op)>) -> Tickets<Op, Out> {
        let waits = items
            .into_iter()
            .map(|(key, op)| {
                let (tx, rx) = oneshot::channel();
                let queue = lock(&self.queues).entry(key.clone()).or_default().clone();
                lock(&queue.pending).push((op, tx));
                (key, queue, rx)
            })
            .collect();
        Tickets { waits }
    }

    /// Wait for the results of `tickets`, in the order they were handed in,
    /// writing batches with `write(key, ops)` (one result per operation, in
    /// order; a missing one is a transient failure) when it is our turn.
    pub async fn wait<F, Fut>(
        &self,
        tickets: Tickets<Op, Out>,
        write: F,
    ) -> Vec<Result<Out, TargetError>>
    where
        F: Fn(String, Vec<Op>) -> Fut,
        Fut: Future<Output = Vec<Result<Out, TargetError>>>,
    {
        let write = &write;
        let waits = tickets
            .waits
            .into_iter()
            .map(|(key, queue, rx)| self.wait_one(key, queue, rx, write));
        futures::future::join_all(waits).await
    }

    /// Hand in one operation and wait for its result.
    pub async fn submit<F, Fut>(&self, key: &str, op: Op, write: F) -> Result<Out, TargetError>
    where
        F: Fn(String, Vec<Op>) -> Fut,
        Fut: Future<Output = Vec<Result<Out, TargetError>>>,
    {
        let tickets = self.enqueue([(key.to_string(), op)]);
        self.wait(tickets, write)
            .await
            .pop()
            .unwrap_or_else(|| Err(abandoned()))
    }

    async fn wait_one<F, Fut>(
        &self,
        key: String,
        queue: Arc<Queue<Op, Out>>,
        mut rx: oneshot::Receiver<Result<Out, TargetError>>,
        write: &F,
    ) -> Result<Out, TargetError>
    where
        F: Fn(String, Vec<Op>) -> Fut,
        Fut: Future<Output = Vec<Result<Out, TargetError>>>,
    {
        loop {
            // Written by another waiter of the key, or our turn to write.
            let writing = tokio::select! {
                biased;
                done = &mut rx => return done.unwrap_or_else(|_| Err(abandoned())),
                guard = queue.writing.lock() => guard,
            };
            tokio::select! {
                biased;
                done = &mut rx => return done.unwrap_or_else(|_| Err(abandoned())),
                () = self.linger(&queue) => {}
            }
            let batch: Vec<(Op, Sender<Out>)> = {
                let mut pending = lock(&queue.pending);
                let n = pending.len().min(self.max);
                pending.drain(..n).collect()
            };
            if !batch.is_empty() {
                let (ops, senders): (Vec<Op>, Vec<Sender<Out>>) = batch.into_iter().unzip();
                let results = write(key.clone(), ops).await;
                // A missing result drops its sender: that operation sees "abandoned".
                for (tx, result) in senders.into_iter().zip(results) {
                    let _ = tx.send(result);
                }
            }
            drop(writing);
            // Ours was in this batch (answered at the top), or waits for the next.
        }
    }

    async fn linger(&self, queue: &Queue<Op, Out>) {
        match &self.linger {
            Linger::None => {}
            Linger::For(time) => tokio::time::sleep(*time).await,
            Linger::UntilQuiet(busy) => busy.quiet().await,
            Linger::UntilSettled { busy, settle } => loop {
                busy.quiet().await;
                let queued = lock(&queue.pending).len();
                tokio::time::sleep(*settle).await;
                busy.quiet().await;
                if lock(&queue.pending).len() == queued {
                    return;
                }
            },
            Linger::UntilReady {
                ready,
                changed,
                longest,
            } => {
                let deadline = Instant::now() + *longest;
                loop {
                    // Registered before looking, so no change slips in between.
                    let notified = changed.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    let queued = lock(&queue.pending).len();
                    if queued == 0 || queued >= self.max || ready() {
                        return;
                    }
                    if tokio::time::timeout_at(deadline, notified).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// The locks guard a push, a drain or a map entry, which cannot leave them
/// half done: a poisoned one is still sound.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn abandoned() -> TargetError {
    TargetError::transient("the batched write was abandoned")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn doubled(ops: Vec<u32>) -> Vec<Result<u32, TargetError>> {
        ops.into_iter()
            .map(|n| {
                if n == 13 {
                    Err(TargetError::permanent("unlucky"))
                } else {
                    Ok(n * 2)
                }
            })
            .collect()
    }

    /// Group commit: 40 concurrent operations, at most 8 per write, share
    /// far fewer than 40 writes; each gets its own result; an idle key then
    /// writes one operation at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_operations_share_writes_and_keep_their_results() {
        let batches: Arc<Batches<u32, u32>> = Arc::new(Batches::new(8, Linger::None));
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..40u32)
            .map(|n| {
                let (batches, calls) = (batches.clone(), calls.clone());
                tokio::spawn(async move {
                    let write = |_, ops: Vec<u32>| {
                        let calls = calls.clone();
                        async move {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            doubled(ops)
                        }
                    };
                    (n, batches.submit("g", n, write).await)
                })
            })
            .collect();
        for task in tasks {
            let (n, result) = task.await.unwrap();
            match result {
                Ok(v) => assert_eq!(v, n * 2),
                Err(e) => assert_eq!((n, e.to_string().as_str()), (13, "unlucky")),
            }
        }
        let n = calls.load(Ordering::SeqCst);
        assert!((5..=12).contains(&n), "{n} writes");
        let alone = batches
            .submit("g", 1, |_, ops| async move { doubled(ops) })
            .await;
        assert_eq!(alone.unwrap(), 2);
    }

    #[tokio::test]
    async fn missing_results_are_transient_failures() {
        let batches: Batches<u32, u32> = Batches::new(4, Linger::None);
        let result = batches.submit("g", 1, |_, _| async { Vec::new() }).await;
        assert!(result.unwrap_err().is_transient());
    }

    /// Keys are written apart, each operation gets its own key's result.
    #[tokio::test]
    async fn every_operation_gets_its_keys_result_in_order() {
        let batches: Batches<&str, ()> = Batches::new(10, Linger::None);
        let tickets = batches.enqueue([("cn=a".to_string(), "x"), ("cn=b".to_string(), "x")]);
        let results = batches
            .wait(tickets, |key: String, ops: Vec<&str>| async move {
                let result = match key.as_str() {
                    "cn=a" => Ok(()),
                    _ => Err(TargetError::permanent("objectClassViolation")),
                };
                vec![result; ops.len()]
            })
            .await;
        assert!(results[0].is_ok());
        assert_eq!(
            results[1].as_ref().unwrap_err().to_string(),
            "objectClassViolation"
        );
    }

    /// Lingering until ready: stragglers arriving 3 ms apart all go in one
    /// write instead of trickling out.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_ready_linger_waits_for_everyone() {
        let arrived = Arc::new(AtomicUsize::new(0));
        let changed = Arc::new(Notify::new());
        let count = arrived.clone();
        let batches: Arc<Batches<u32, ()>> = Arc::new(Batches::new(
            100,
            Linger::UntilReady {
                ready: Arc::new(move || count.load(Ordering::SeqCst) >= 10),
                changed: changed.clone(),
                longest: Duration::from_millis(500),
            },
        ));
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..10u32)
            .map(|n| {
                let (batches, arrived, changed, sizes) = (
                    batches.clone(),
                    arrived.clone(),
                    changed.clone(),
                    sizes.clone(),
                );
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(u64::from(n) * 3)).await;
                    arrived.fetch_add(1, Ordering::SeqCst);
                    changed.notify_waiters();
                    let write = |_, ops: Vec<u32>| {
                        let sizes = sizes.clone();
                        async move {
                            sizes.lock().unwrap().push(ops.len());
                            tokio::time::sleep(Duration::from_millis(30)).await;
                            ops.iter().map(|_| Ok(())).collect()
                        }
                    };
                    batches.submit("g", n, write).await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(*sizes.lock().unwrap(), vec![10]);
    }

    /// Lingering until quiet: 50 actions, busy for a while (staggered),
    /// then joining one group — one write for all, held back while any is
    /// at work, written as soon as none is.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_quiet_linger_waits_for_the_busy_and_shares_one_write() {
        let count = BusyCount::default();
        let batches: Arc<Batches<String, ()>> =
            Arc::new(Batches::new(usize::MAX, Linger::UntilQuiet(count.clone())));
        let writes = Arc::new(AtomicUsize::new(0));
        let written = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..50u64 {
            let (batches, writes, written) = (batches.clone(), writes.clone(), written.clone());
            let busy = count.busy();
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(1 + i % 10)).await;
                let tickets = batches.enqueue([("cn=staff".to_string(), format!("uid=u{i}"))]);
                let _parked = busy.park();
                let write = |_, values: Vec<String>| {
                    let (writes, written) = (writes.clone(), written.clone());
                    async move {
                        writes.fetch_add(1, Ordering::SeqCst);
                        let n = values.len();
                        written.lock().unwrap().extend(values);
                        vec![Ok(()); n]
                    }
                };
                batches.wait(tickets, write).await.remove(0)
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let mut all = written.lock().unwrap().clone();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 50, "every value written once");
        assert_eq!(writes.load(Ordering::SeqCst), 1, "one write for all");

        // A busy action holds a batch back until it stops.
        let other = count.busy();
        let task = {
            let (batches, writes) = (batches.clone(), writes.clone());
            tokio::spawn(async move {
                batches
                    .submit("cn=x", "uid=a".to_string(), |_, _| {
                        let writes = writes.clone();
                        async move {
                            writes.fetch_add(1, Ordering::SeqCst);
                            vec![Ok(())]
                        }
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(writes.load(Ordering::SeqCst), 1, "held back while busy");
        drop(other);
        task.await.unwrap().unwrap();
        assert_eq!(writes.load(Ordering::SeqCst), 2);
    }

    /// More queued than `max`: the rest goes in the following writes, and
    /// everyone gets an answer.
    #[tokio::test]
    async fn a_full_batch_leaves_the_rest_for_the_next() {
        let batches: Batches<u32, u32> = Batches::new(3, Linger::None);
        let tickets = batches.enqueue((0..7u32).map(|n| ("g".to_string(), n)));
        let sizes = Mutex::new(Vec::new());
        let results = batches
            .wait(tickets, |_, ops| {
                sizes.lock().unwrap().push(ops.len());
                async move { doubled(ops) }
            })
            .await;
        let values: Vec<u32> = results.into_iter().map(Result::unwrap).collect();
        assert_eq!(values, vec![0, 2, 4, 6, 8, 10, 12]);
        assert_eq!(*sizes.lock().unwrap(), vec![3, 3, 1]);
    }

    /// A settling batch waits for an operation that arrives after the
    /// others went quiet, within the settle time: one write for both.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_settling_batch_takes_late_arrivals() {
        let busy = BusyCount::default();
        let batches: Arc<Batches<u32, u32>> = Arc::new(Batches::new(
            usize::MAX,
            Linger::UntilSettled {
                busy: busy.clone(),
                settle: Duration::from_millis(150),
            },
        ));
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let run = |n: u32, delay: u64| {
            let (batches, sizes) = (batches.clone(), sizes.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let write = |_, ops: Vec<u32>| {
                    let sizes = sizes.clone();
                    async move {
                        sizes.lock().unwrap().push(ops.len());
                        doubled(ops)
                    }
                };
                batches.submit("reconfigure", n, write).await
            })
        };
        let first = run(1, 0);
        let late = run(2, 60);
        assert_eq!(first.await.unwrap().unwrap(), 2);
        assert_eq!(late.await.unwrap().unwrap(), 4);
        assert_eq!(*sizes.lock().unwrap(), vec![2]);
    }
}
