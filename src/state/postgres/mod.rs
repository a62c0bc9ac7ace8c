//! The PostgreSQL backend of the state store: the same tables and guarantees
//! as the SQLite file, shared by CI runners and several admins, a schema per
//! organisation, and the run lock as a session advisory lock.
//!
//! Client: the `postgres` crate (the blocking face of tokio-postgres) on a
//! thread of its own — the store's session thread — and tokio-postgres
//! itself on the journal's writer thread, which pipelines each commit
//! (`pipeline.rs`); exactly where the SQLite backend runs its connections,
//! so the executor and the targets see one synchronous interface either way.

pub mod connect;
pub mod lock;
pub mod pipeline;
pub mod read;
pub mod schema;
pub mod write;

use std::sync::mpsc;
use std::thread::JoinHandle;

use chrono::Utc;

use super::columns;
use super::location::PgLocation;
use super::write::WriteOp;
use super::StateError;
use connect::{InTx, PgConn};

type Job = Box<dyn FnOnce(&mut PgConn) + Send>;

/// One connection, served by a thread of its own: calls block the caller
/// (like SQLite's), and may come from inside an async runtime, where the
/// blocking client could not run.
pub struct PgSession {
    location: PgLocation,
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for PgSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgSession({})", self.location)
    }
}

impl PgSession {
    /// Connects; with `migrate`, creates the schema or brings it up to date.
    /// Without, `None` when the schema holds no state yet (nothing is created).
    pub fn open(location: &PgLocation, migrate: bool) -> Result<Option<PgSession>, StateError> {
        let (ready, opened) = mpsc::channel();
        let (jobs, receiver) = mpsc::channel::<Job>();
        let at = location.clone();
        let thread = std::thread::Builder::new()
            .name("homebase-pg".into())
            .spawn(move || {
                let mut conn = match open_conn(&at, migrate) {
                    Ok(Some(conn)) => conn,
                    Ok(None) => {
                        let _ = ready.send(Ok(false));
                        return;
                    }
                    Err(err) => {
                        let _ = ready.send(Err(err));
                        return;
                    }
                };
                let _ = ready.send(Ok(true));
                while let Ok(job) = receiver.recv() {
                    job(&mut conn);
                }
            })
            .map_err(|e| StateError::PgConnect {
                location: location.to_string(),
                detail: e.to_string(),
            })?;
        let opened = opened.recv().map_err(|_| StateError::PgConnect {
            location: location.to_string(),
            detail: "the connection thread stopped".into(),
        });
        match opened {
            Ok(Ok(true)) => Ok(Some(PgSession {
                location: location.clone(),
                jobs: Some(jobs),
                thread: Some(thread),
            })),
            Ok(Ok(false)) => {
                let _ = thread.join();
                Ok(None)
            }
            Ok(Err(err)) | Err(err) => {
                let _ = thread.join();
                Err(err)
            }
        }
    }

    /// Runs `f` on the session's connection and waits for its result.
    pub fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut PgConn) -> Result<R, StateError> + Send + 'static,
    ) -> Result<R, StateError> {
        let (done, result) = mpsc::channel();
        let job: Job = Box::new(move |conn| {
            let _ = done.send(f(conn));
        });
        let closed = || StateError::PgConnect {
            location: self.location.to_string(),
            detail: "the connection thread stopped".into(),
        };
        self.jobs
            .as_ref()
            .ok_or_else(closed)?
            .send(job)
            .map_err(|_| closed())?;
        result.recv().map_err(|_| closed())?
    }

    /// All operations in one transaction: all of them or none.
    pub fn write_all(&self, ops: Vec<WriteOp>) -> Result<(), StateError> {
        self.call(move |conn| {
            let PgConn { client, stmts } = conn;
            let mut tx = client.transaction().map_err(write::err)?;
            let now = columns::timestamp(Utc::now());
            let mut db = InTx { tx: &mut tx, stmts };
            for op in &ops {
                write::apply(&mut db, op, &now)?;
            }
            tx.commit().map_err(write::err)
        })
    }
}

impl Drop for PgSession {
    fn drop(&mut self) {
        // Closing the channel ends the thread, which closes the connection.
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Connects and, as asked, migrates or checks the schema version.
pub fn open_conn(location: &PgLocation, migrate: bool) -> Result<Option<PgConn>, StateError> {
    let mut conn = connect::connect(location, "state")?;
    if migrate {
        schema::migrate(&mut conn.client, location)?;
        return Ok(Some(conn));
    }
    let found = schema::version(&mut conn.client, location)?;
    let current = super::CURRENT_VERSION;
    if found == 0 {
        return Ok(None);
    }
    if found > current {
        return Err(StateError::TooNew {
            path: location.to_string().into(),
            found,
            supported: current,
        });
    }
    if found < current {
        return Err(StateError::TooOld {
            path: location.to_string().into(),
            found,
            current,
        });
    }
    Ok(Some(conn))
}
