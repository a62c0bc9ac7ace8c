//! Group membership in batches. Every new account joins the same few groups,
//! and each modify of a group is one write transaction on the server (one
//! disk sync on OpenLDAP): 1,200 persons × 2 groups would be 2,400 of them.
//! Instead, adds to one group queue up while that group's previous modify is
//! in flight (and for a moment longer), and the next modify carries all of
//! them. A person's action still completes only when their own membership is
//! written.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::target::TargetError;

type Waiter = oneshot::Sender<Result<(), TargetError>>;

/// How long a writer waits before taking the queue, so that the persons whose
/// adds are just finishing join this batch rather than start the next one.
/// In a bulk run this halves the group modifies (server CPU and syncs); a
/// single change waits 2 ms more.
const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

#[derive(Default)]
struct Queue {
    pending: Mutex<Vec<(String, Waiter)>>,
    /// Held while a batch of this key is written: one at a time per key.
    writing: tokio::sync::Mutex<()>,
}

/// Per key (a group DN), values waiting to be written together.
#[derive(Default)]
pub struct Batches {
    queues: Mutex<HashMap<String, Arc<Queue>>>,
}

impl Batches {
    /// Queue `value` under `key` and wait until a batch holding it is
    /// written by `write` (called by whichever waiter gets to write next,
    /// with every value queued by then).
    pub async fn submit<F, Fut>(
        &self,
        key: &str,
        value: String,
        write: F,
    ) -> Result<(), TargetError>
    where
        F: FnOnce(Vec<String>) -> Fut,
        Fut: Future<Output = Result<(), TargetError>>,
    {
        let queue = {
            let mut queues = self
                .queues
                .lock()
                .map_err(|_| TargetError::permanent("group batch lock poisoned"))?;
            queues.entry(key.to_string()).or_default().clone()
        };
        let (tx, mut rx) = oneshot::channel();
        queue
            .pending
            .lock()
            .map_err(|_| TargetError::permanent("group batch lock poisoned"))?
            .push((value, tx));
        // Either another waiter writes our value (and tells us), or we get to
        // write: then everything queued so far goes in one batch.
        let writing = tokio::select! {
            biased;
            done = &mut rx => return done.unwrap_or_else(|_| Err(abandoned())),
            guard = queue.writing.lock() => guard,
        };
        tokio::time::sleep(LINGER).await;
        let batch = match queue.pending.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending),
            Err(_) => Vec::new(),
        };
        if !batch.is_empty() {
            let (values, waiters): (Vec<String>, Vec<Waiter>) = batch.into_iter().unzip();
            let result = write(values).await;
            for waiter in waiters {
                let _ = waiter.send(result.clone());
            }
        }
        drop(writing);
        rx.await.unwrap_or_else(|_| Err(abandoned()))
    }
}

fn abandoned() -> TargetError {
    TargetError::transient("group update was abandoned")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_values_share_writes() {
        let batches = Arc::new(Batches::default());
        let writes = Arc::new(AtomicUsize::new(0));
        let written = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..50 {
            let (batches, writes, written) = (batches.clone(), writes.clone(), written.clone());
            tasks.push(tokio::spawn(async move {
                batches
                    .submit("cn=staff", format!("uid=u{i}"), |values| async move {
                        writes.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                        written.lock().unwrap().extend(values);
                        Ok(())
                    })
                    .await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let mut all = written.lock().unwrap().clone();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 50, "every value written once");
        assert!(
            writes.load(Ordering::SeqCst) < 50,
            "some writes were shared"
        );
    }

    #[tokio::test]
    async fn every_waiter_gets_the_batch_result() {
        let batches = Batches::default();
        let result = batches
            .submit("cn=x", "uid=a".into(), |_| async {
                Err(TargetError::permanent("objectClassViolation"))
            })
            .await;
        assert_eq!(result.unwrap_err().to_string(), "objectClassViolation");
    }
}
