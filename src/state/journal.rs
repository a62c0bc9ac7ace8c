//! Group commit: many tasks journal concurrently, one thread writes.
//!
//! Every caller waits until its write is committed, so dependent work never
//! runs ahead of the record of what it depends on. The writer thread takes
//! everything queued, applies it in one transaction, commits once and then
//! acknowledges each write: a 10,000-person apply costs hundreds or a few
//! thousand commits instead of 70,000 (see `LINGER`).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::Utc;
use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::columns;
use super::connect;
use super::location::PgLocation;
use super::postgres::connect::{describe as pg_describe, Db};
use super::postgres::pipeline::{Flight, Pipe};
use super::postgres::write as pg_write;
use super::write::{self, WriteOp};
use super::StateError;

/// Most operations in one transaction, so one huge queue does not hold every
/// caller until all of it is written.
const MAX_BATCH_OPS: usize = 8192;

/// While writers are many (the last batch held several writes), how long a
/// batch stays open for more after its first write: each commit writes its
/// pages to the WAL again, and at 10,000 persons those commits were a tenth
/// of the CPU. A lone writer never waits.
const LINGER: Duration = Duration::from_micros(1500);
const BUSY_WRITES: usize = 4;

/// A cloneable handle to the journal writer.
#[derive(Clone, Debug)]
pub struct Journal {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    sender: mpsc::Sender<Message>,
    thread: Mutex<Option<JoinHandle<JournalStats>>>,
}

/// What the writer did, for tuning and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Writes acknowledged (one `write` or `write_all` each).
    pub writes: u64,
    pub ops: u64,
    /// Transactions committed.
    pub commits: u64,
}

enum Message {
    Write {
        ops: Vec<WriteOp>,
        ack: oneshot::Sender<Result<(), StateError>>,
    },
    Flush(mpsc::Sender<()>),
    Close,
}

enum Control {
    Flush(mpsc::Sender<()>),
    Close,
}

struct Request {
    ops: Vec<WriteOp>,
    ack: oneshot::Sender<Result<(), StateError>>,
}

/// A connection the writer thread commits batches on.
trait Committer: Send + 'static {
    fn commit(&mut self, batch: &[Request]) -> Vec<Result<(), StateError>>;
    fn close(&mut self) {}
}

impl Committer for Connection {
    fn commit(&mut self, batch: &[Request]) -> Vec<Result<(), StateError>> {
        commit(self, batch)
    }

    fn close(&mut self) {
        connect::leave_wal(self);
    }
}

impl Committer for Pipe {
    fn commit(&mut self, batch: &[Request]) -> Vec<Result<(), StateError>> {
        commit_postgres(self, batch)
    }
}

impl Journal {
    /// Opens the store on a connection of its own and starts the writer thread.
    pub fn open(path: &Path) -> Result<Journal, StateError> {
        let conn = connect::read_write(path)?;
        Journal::start(conn, path.to_path_buf())
    }

    /// The same on the PostgreSQL state: a pipelining connection of its
    /// own, once the schema is known to be this binary's (migrated on a
    /// short-lived connection, as the store does).
    pub fn open_postgres(location: &PgLocation) -> Result<Journal, StateError> {
        crate::state::postgres::open_conn(location, true)?.ok_or_else(|| {
            StateError::PgConnect {
                location: location.to_string(),
                detail: "the schema was not created".into(),
            }
        })?;
        let pipe = Pipe::connect(location, "journal")?;
        Journal::start(pipe, location.to_string().into())
    }

    fn start(conn: impl Committer, path: PathBuf) -> Result<Journal, StateError> {
        let (sender, receiver) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("homebase-journal".into())
            .spawn(move || run_writer(conn, receiver))
            .map_err(|source| StateError::Create {
                path: path.clone(),
                source,
            })?;
        Ok(Journal {
            inner: Arc::new(Inner {
                path,
                sender,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Returns once `op` is committed.
    pub async fn write(&self, op: WriteOp) -> Result<(), StateError> {
        self.write_all(vec![op]).await
    }

    /// Returns once all of `ops` are committed, together: all or none. A
    /// caller that stops waiting does not cancel the write.
    pub async fn write_all(&self, ops: Vec<WriteOp>) -> Result<(), StateError> {
        if ops.is_empty() {
            return Ok(());
        }
        let (ack, done) = oneshot::channel();
        self.inner
            .sender
            .send(Message::Write { ops, ack })
            .map_err(|_| StateError::JournalClosed)?;
        done.await.map_err(|_| StateError::JournalClosed)?
    }

    /// Blocks until everything sent before is committed (from async code,
    /// call it through `spawn_blocking`).
    pub fn flush(&self) -> Result<(), StateError> {
        let (done, wait) = mpsc::channel();
        self.inner
            .sender
            .send(Message::Flush(done))
            .map_err(|_| StateError::JournalClosed)?;
        wait.recv().map_err(|_| StateError::JournalClosed)
    }

    /// Commits everything sent before, stops the writer and waits for it
    /// (blocking, like [`Journal::flush`]).
    /// Writes through other clones fail afterwards with `JournalClosed`.
    pub fn close(self) -> Result<JournalStats, StateError> {
        let thread = self
            .inner
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(thread) = thread else {
            return Err(StateError::JournalClosed);
        };
        // A failed send means the thread is gone already; join tells how.
        let _ = self.inner.sender.send(Message::Close);
        thread.join().map_err(|_| StateError::JournalClosed)
    }
}

/// The writer thread. It ends on `Close` or when every handle is dropped,
/// having written everything queued before.
fn run_writer(mut conn: impl Committer, receiver: mpsc::Receiver<Message>) -> JournalStats {
    let stats = write_until_closed(&mut conn, &receiver);
    conn.close();
    stats
}

fn write_until_closed(
    conn: &mut impl Committer,
    receiver: &mpsc::Receiver<Message>,
) -> JournalStats {
    let mut stats = JournalStats::default();
    let mut busy = false;
    // Blocks for the first message, then takes whatever else is queued.
    while let Ok(first) = receiver.recv() {
        let opened = Instant::now();
        let mut batch = Vec::new();
        let mut ops = 0;
        let mut control = None;
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Write { ops: write, ack } => {
                    ops += write.len();
                    batch.push(Request { ops: write, ack });
                }
                // Writes queued after a flush or close wait for the next round.
                Message::Flush(done) => control = Some(Control::Flush(done)),
                Message::Close => control = Some(Control::Close),
            }
            if control.is_none() && ops < MAX_BATCH_OPS {
                next = receiver.try_recv().ok();
                let left = LINGER.saturating_sub(opened.elapsed());
                if next.is_none() && busy && !left.is_zero() {
                    next = receiver.recv_timeout(left).ok();
                }
            }
        }
        busy = batch.len() >= BUSY_WRITES;
        if !batch.is_empty() {
            let results = conn.commit(&batch);
            stats.commits += 1;
            stats.writes += batch.len() as u64;
            stats.ops += ops as u64;
            for (request, result) in batch.into_iter().zip(results) {
                // The caller may have stopped waiting; the write stands.
                let _ = request.ack.send(result);
            }
        }
        match control {
            Some(Control::Flush(done)) => {
                let _ = done.send(());
            }
            Some(Control::Close) => break,
            None => {}
        }
    }
    stats
}

/// Commits the batch. Usually every write succeeds and it is one transaction;
/// if one fails, the batch is redone with a savepoint per write, so only the
/// failing write is refused and the others still commit.
fn commit(conn: &mut Connection, batch: &[Request]) -> Vec<Result<(), StateError>> {
    let now = columns::timestamp(Utc::now());
    match commit_together(conn, batch, &now) {
        Ok(()) => batch.iter().map(|_| Ok(())).collect(),
        Err(Failed::Write) => commit_isolated(conn, batch, &now),
        Err(Failed::Commit(message)) => batch
            .iter()
            .map(|_| Err(StateError::Commit(message.clone())))
            .collect(),
    }
}

enum Failed {
    /// One write failed; the transaction was rolled back.
    Write,
    /// The transaction as a whole failed (disk full, I/O error).
    Commit(String),
}

fn commit_together(conn: &mut Connection, batch: &[Request], now: &str) -> Result<(), Failed> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|err| Failed::Commit(err.to_string()))?;
    for request in batch {
        for op in &request.ops {
            write::apply(&tx, op, now).map_err(|_| Failed::Write)?;
        }
    }
    tx.commit().map_err(|err| Failed::Commit(err.to_string()))
}

fn commit_isolated(
    conn: &mut Connection,
    batch: &[Request],
    now: &str,
) -> Vec<Result<(), StateError>> {
    let all_failed = |message: String| {
        batch
            .iter()
            .map(|_| Err(StateError::Commit(message.clone())))
            .collect()
    };
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(err) => return all_failed(err.to_string()),
    };
    let mut results = Vec::with_capacity(batch.len());
    for request in batch {
        let result = tx.savepoint().map_err(StateError::from).and_then(|sp| {
            for op in &request.ops {
                write::apply(&sp, op, now)?;
            }
            sp.commit().map_err(StateError::from)
        });
        // A failed write's savepoint rolled back when it was dropped.
        results.push(result);
    }
    match tx.commit() {
        Ok(()) => results,
        Err(err) => all_failed(err.to_string()),
    }
}

/// The PostgreSQL batch: every statement of every write in one pipelined
/// transaction (`pipeline.rs`); if one is refused, the batch again one
/// statement at a time with a savepoint per write and per constraint-checked
/// statement, so only that write is refused.
fn commit_postgres(pipe: &mut Pipe, batch: &[Request]) -> Vec<Result<(), StateError>> {
    let now = columns::timestamp(Utc::now());
    let all_failed = |message: String| {
        batch
            .iter()
            .map(|_| Err(StateError::Commit(message.clone())))
            .collect()
    };
    let steps: Result<Vec<_>, _> = batch
        .iter()
        .flat_map(|request| &request.ops)
        .map(|op| pg_write::steps(op, &now))
        .collect();
    // An operation that cannot be encoded is refused by the careful redo.
    if let Ok(steps) = steps {
        let steps: Vec<_> = steps.into_iter().flatten().collect();
        match pipe.fly(&steps) {
            Ok(Flight::Committed) => return batch.iter().map(|_| Ok(())).collect(),
            Ok(Flight::Refused) => {}
            Err(e) => return all_failed(pg_describe(&e)),
        }
    }
    if let Err(e) = pipe.command("BEGIN") {
        return all_failed(pg_describe(&e));
    }
    let mut results = Vec::with_capacity(batch.len());
    for request in batch {
        let result = isolated(pipe, &request.ops, &now);
        results.push(result);
    }
    match pipe.command("COMMIT") {
        Ok(()) => results,
        Err(e) => all_failed(pg_describe(&e)),
    }
}

/// One write of the careful redo, in a savepoint: all its operations or none.
fn isolated(pipe: &mut Pipe, ops: &[WriteOp], now: &str) -> Result<(), StateError> {
    pipe.command("SAVEPOINT homebase_request")
        .map_err(pg_write::err)?;
    let applied = ops.iter().try_for_each(|op| pg_write::apply(pipe, op, now));
    let end = if applied.is_ok() {
        "RELEASE SAVEPOINT homebase_request"
    } else {
        "ROLLBACK TO SAVEPOINT homebase_request; RELEASE SAVEPOINT homebase_request"
    };
    pipe.command(end).map_err(pg_write::err)?;
    applied
}
