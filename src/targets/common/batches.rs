//! Writes that many actions share, in batches: LDAP group membership (every
//! new account joins the same few groups; each modify of a group is one
//! write transaction on the server, 1,200 persons × 2 groups would be 2,400
//! of them) and a gateway's reconfigure (one per run, not one per peer).
//!
//! Values queue up per key while any action of the target is still at work
//! on something else (creating accounts, saving peers): a batch is written
//! when every action in flight is waiting for a batch. In a bulk run that is
//! once per key per wave of persons; a single change (nothing else at work)
//! is written at once. An action completes only when its own batch is
//! written, so the journal never records what the server does not hold.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::targets::busy::{Busy, BusyCount};
use crate::targets::TargetError;

type Waiter = oneshot::Sender<Result<(), TargetError>>;

#[derive(Default)]
struct Queue {
    pending: Mutex<Vec<(String, Waiter)>>,
    /// Held while a batch of this key waits for its moment and is written:
    /// one at a time per key.
    writing: tokio::sync::Mutex<()>,
}

/// Per key (a group DN), values (member DNs) waiting to be written together.
pub struct Batches {
    queues: Mutex<HashMap<String, Arc<Queue>>>,
    /// The target's actions at work: a batch waits for them.
    busy: BusyCount,
    /// How long a batch waits, once nobody is at work, for actions still
    /// arriving (see [`Batches::settling`]).
    settle: std::time::Duration,
}

impl Batches {
    /// Batches that wait for the actions counted by `busy`.
    pub fn new(busy: BusyCount) -> Self {
        Batches {
            queues: Mutex::default(),
            busy,
            settle: std::time::Duration::ZERO,
        }
    }

    /// Batches for a write that is dear (a gateway's reconfigure): once
    /// nobody is at work, wait `settle` for more actions to join (the
    /// executor starts persons as others finish), again while they do.
    pub fn settling(busy: BusyCount, settle: std::time::Duration) -> Self {
        Batches {
            settle,
            ..Batches::new(busy)
        }
    }

    /// Until nobody is at work and, with a settle time, no more values came
    /// during the last one.
    async fn settled(&self, queue: &Queue) {
        self.busy.quiet().await;
        if self.settle.is_zero() {
            return;
        }
        loop {
            let before = lock(&queue.pending).len();
            tokio::time::sleep(self.settle).await;
            self.busy.quiet().await;
            if lock(&queue.pending).len() == before {
                return;
            }
        }
    }

    /// Queue each value under its key, stop counting as at work, and wait
    /// until batches holding them are written. A batch is written by
    /// `write(key, values)`, called by whichever waiter of the key gets to it
    /// once no action is at work, with every value queued by then; its
    /// result is every value's. Results come back in the order of `items`.
    pub async fn submit<F, Fut>(
        &self,
        busy: &Busy,
        items: Vec<(String, String)>,
        write: F,
    ) -> Vec<Result<(), TargetError>>
    where
        F: Fn(String, Vec<String>) -> Fut,
        Fut: Future<Output = Result<(), TargetError>>,
    {
        let mut waits = Vec::with_capacity(items.len());
        for (key, value) in items {
            let (tx, rx) = oneshot::channel();
            let queue = lock(&self.queues).entry(key.clone()).or_default().clone();
            lock(&queue.pending).push((value, tx));
            waits.push((queue, key, rx));
        }
        // Every value is queued before this action stops counting: a batch
        // written the moment it does holds all of them.
        let _parked = busy.park();
        let write = &write;
        let waits = waits
            .into_iter()
            .map(|(queue, key, rx)| self.wait(queue, key, rx, write));
        futures::future::join_all(waits).await
    }

    /// Wait for one value: written by another waiter of its key, or by us.
    async fn wait<F, Fut>(
        &self,
        queue: Arc<Queue>,
        key: String,
        mut rx: oneshot::Receiver<Result<(), TargetError>>,
        write: &F,
    ) -> Result<(), TargetError>
    where
        F: Fn(String, Vec<String>) -> Fut,
        Fut: Future<Output = Result<(), TargetError>>,
    {
        let writing = tokio::select! {
            biased;
            done = &mut rx => return done.unwrap_or_else(|_| Err(abandoned())),
            guard = queue.writing.lock() => guard,
        };
        tokio::select! {
            biased;
            done = &mut rx => return done.unwrap_or_else(|_| Err(abandoned())),
            () = self.settled(&queue) => {}
        }
        let batch = std::mem::take(&mut *lock(&queue.pending));
        if !batch.is_empty() {
            let (values, waiters): (Vec<String>, Vec<Waiter>) = batch.into_iter().unzip();
            let result = write(key, values).await;
            for waiter in waiters {
                let _ = waiter.send(result.clone());
            }
        }
        drop(writing);
        rx.await.unwrap_or_else(|_| Err(abandoned()))
    }
}

/// The locks guard a push, a take or a map entry, which cannot leave them
/// half done: a poisoned one is still sound.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn abandoned() -> TargetError {
    TargetError::transient("group update was abandoned")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// 50 actions, each busy for a while (staggered) and then joining one
    /// group: the writes wait until nobody is busy, so they are few.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn values_wait_for_the_busy_and_share_writes() {
        let count = BusyCount::default();
        let batches = Arc::new(Batches::new(count.clone()));
        let writes = Arc::new(AtomicUsize::new(0));
        let written = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..50u64 {
            let (batches, writes, written) = (batches.clone(), writes.clone(), written.clone());
            let busy = count.busy();
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(1 + i % 10)).await;
                let items = vec![("cn=staff".to_string(), format!("uid=u{i}"))];
                let write = |_, values: Vec<String>| {
                    let (writes, written) = (writes.clone(), written.clone());
                    async move {
                        writes.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        written.lock().unwrap().extend(values);
                        Ok(())
                    }
                };
                batches.submit(&busy, items, write).await.remove(0)
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let mut all = written.lock().unwrap().clone();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 50, "every value written once");
        // All 50 are at work from the start: one write.
        assert_eq!(writes.load(Ordering::SeqCst), 1, "one write for all");
    }

    /// A value is not written while another action is busy, and is written
    /// as soon as it stops.
    #[tokio::test]
    async fn a_busy_action_holds_the_batch_back() {
        let count = BusyCount::default();
        let batches = Arc::new(Batches::new(count.clone()));
        let other = count.busy();
        let written = Arc::new(AtomicUsize::new(0));
        let task = {
            let (batches, written, busy) = (batches.clone(), written.clone(), count.busy());
            tokio::spawn(async move {
                let items = vec![("cn=x".to_string(), "uid=a".to_string())];
                let write = |_, _| {
                    let written = written.clone();
                    async move {
                        written.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    }
                };
                batches.submit(&busy, items, write).await.remove(0)
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(written.load(Ordering::SeqCst), 0, "held back while busy");
        drop(other);
        task.await.unwrap().unwrap();
        assert_eq!(written.load(Ordering::SeqCst), 1);
    }

    /// Each value gets its own group's result, in the order given.
    #[tokio::test]
    async fn every_value_gets_its_batch_result() {
        let count = BusyCount::default();
        let batches = Batches::new(count.clone());
        let busy = count.busy();
        let items = vec![
            ("cn=a".to_string(), "uid=x".to_string()),
            ("cn=b".to_string(), "uid=x".to_string()),
        ];
        let write = |key: String, _| async move {
            match key.as_str() {
                "cn=a" => Ok(()),
                _ => Err(TargetError::permanent("objectClassViolation")),
            }
        };
        let results = batches.submit(&busy, items, write).await;
        assert!(results[0].is_ok());
        assert_eq!(
            results[1].as_ref().unwrap_err().to_string(),
            "objectClassViolation"
        );
    }
}
