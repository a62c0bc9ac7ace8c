//! Which of a target's actions are still at work. A target that writes
//! shared batches (LDAP group members) waits until every action it has been
//! promised is either waiting for a batch or done, so that one write carries
//! them all. The executor promises a person's action when it starts the
//! person (`Target::hold`); the action counts itself while it runs, and not
//! while it waits for a batch or sleeps before a retry.

use std::sync::Arc;

use tokio::sync::watch;

/// How many promised actions are at work (not waiting for a batch).
#[derive(Clone)]
pub struct BusyCount {
    count: Arc<watch::Sender<usize>>,
}

impl Default for BusyCount {
    fn default() -> Self {
        BusyCount {
            count: Arc::new(watch::Sender::new(0)),
        }
    }
}

impl BusyCount {
    /// Count an action as at work until the guard is dropped.
    pub fn busy(&self) -> Busy {
        self.count.send_modify(|n| *n += 1);
        Busy {
            count: self.count.clone(),
        }
    }

    /// Wait until no action is at work.
    pub async fn quiet(&self) {
        let mut count = self.count.subscribe();
        // The sender lives in `self`: the wait cannot fail.
        let _ = count.wait_for(|n| *n == 0).await;
    }
}

/// An action at work (see `BusyCount::busy`).
pub struct Busy {
    count: Arc<watch::Sender<usize>>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.count.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Busy {
    /// The action stops counting as at work while it waits for a batch
    /// (an action at work waiting for a batch would wait for itself); at
    /// work again when the guard is dropped.
    pub fn park(&self) -> Parked {
        self.count.send_modify(|n| *n = n.saturating_sub(1));
        Parked {
            count: self.count.clone(),
        }
    }
}

/// An action promised to the target: at work until it starts (and counts
/// itself) or the promise is dropped.
pub struct Promise {
    busy: std::sync::Mutex<Option<Busy>>,
}

impl Promise {
    pub fn new(busy: Busy) -> Promise {
        Promise {
            busy: std::sync::Mutex::new(Some(busy)),
        }
    }

    /// The action has started: the promise is kept.
    pub fn keep(&self) {
        if let Ok(mut busy) = self.busy.lock() {
            busy.take();
        }
    }
}

/// An action waiting for a batch (see `Busy::park`).
pub struct Parked {
    count: Arc<watch::Sender<usize>>,
}

impl Drop for Parked {
    fn drop(&mut self) {
        self.count.send_modify(|n| *n += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn quiet_when_every_action_is_parked_or_done() {
        let count = BusyCount::default();
        count.quiet().await; // nothing promised: quiet at once
        let a = count.busy();
        let b = count.busy();
        let parked = a.park();
        let waiting = tokio::time::timeout(Duration::from_millis(20), count.quiet()).await;
        assert!(waiting.is_err(), "b is still at work");
        drop(b);
        count.quiet().await;
        drop(parked); // a works again
        let waiting = tokio::time::timeout(Duration::from_millis(20), count.quiet()).await;
        assert!(waiting.is_err(), "a is at work again");
        drop(a);
        count.quiet().await;
    }

    #[tokio::test]
    async fn a_promise_counts_until_kept() {
        let count = BusyCount::default();
        let promise = Promise::new(count.busy());
        let waiting = tokio::time::timeout(Duration::from_millis(20), count.quiet()).await;
        assert!(waiting.is_err(), "promised");
        let started = count.busy();
        promise.keep();
        promise.keep(); // a retry keeps it again: no harm
        drop(started);
        count.quiet().await;
    }
}
