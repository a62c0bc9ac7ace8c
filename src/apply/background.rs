//! Threads of lower priority for the file work of a run: rendering bundles,
//! QR codes and PNGs. On a small machine (two cores, or the one core a bench
//! pins us to) that work must not take the CPU from the tasks that keep the
//! servers busy: a burst of 64 finished persons rendering their bundles left
//! the SCIM server idle for 30 ms at a time. The kernel's scheduler does the
//! rest: a runnable network task preempts a nice 10 renderer.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send>;

pub struct Background {
    sender: Mutex<Option<Sender<Job>>>,
    threads: Vec<JoinHandle<()>>,
}

/// How much lower than the rest of homebase the renderers run.
const NICENESS: i32 = 10;

impl Background {
    /// One thread per CPU homebase may use.
    pub fn new() -> Background {
        let count = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (sender, receiver) = channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let threads = (0..count)
            .filter_map(|i| {
                let receiver = receiver.clone();
                std::thread::Builder::new()
                    .name(format!("homebase-render-{i}"))
                    .spawn(move || work(&receiver))
                    .ok()
            })
            .collect();
        Background {
            sender: Mutex::new(Some(sender)),
            threads,
        }
    }

    /// Run `job` on a renderer thread and wait for its result; on the
    /// caller's thread when no renderer could be started.
    pub async fn run<T, F>(&self, job: F) -> T
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(job());
        });
        let rejected = {
            let sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
            match sender.as_ref().filter(|_| !self.threads.is_empty()) {
                Some(sender) => sender.send(job).err().map(|e| e.0),
                None => Some(job),
            }
        };
        if let Some(job) = rejected {
            tokio::task::block_in_place(job);
        }
        rx.await
            .expect("a renderer thread ended in the middle of a job")
    }
}

impl Default for Background {
    fn default() -> Self {
        Background::new()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // Closing the channel ends the threads once the queue is empty.
        self.sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn work(receiver: &Mutex<Receiver<Job>>) {
    lower_priority();
    loop {
        let job = {
            let receiver = receiver.lock().unwrap_or_else(PoisonError::into_inner);
            receiver.recv()
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// Nice this thread (on Linux, `setpriority` with `who = 0` applies to the
/// calling thread only). Failing is harmless: the work just runs at the
/// normal priority.
fn lower_priority() {
    // SAFETY: setpriority takes plain integers and touches no memory of ours.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, NICENESS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_jobs_off_the_runtime_and_returns_their_results() {
        let pool = Arc::new(Background::new());
        let caller = std::thread::current().id();
        let results = futures::future::join_all((0..20).map(|i| {
            let pool = pool.clone();
            async move { pool.run(move || (i * 2, std::thread::current().id())).await }
        }))
        .await;
        for (i, (double, thread)) in results.into_iter().enumerate() {
            assert_eq!(double, i * 2);
            assert_ne!(thread, caller);
        }
    }

    #[test]
    fn renderer_threads_run_niced() {
        let pool = Background::new();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let nice = runtime.block_on(pool.run(|| {
            // SAFETY: getpriority reads the calling thread's priority.
            unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
        }));
        assert!(nice >= NICENESS, "renderer niceness {nice}");
    }
}
