//! One apply at a time per state store (docs/contract.md, "Applying").
//!
//! SQLite: an exclusive OS lock on `<db>.lock`: the kernel drops it when the
//! process ends, however it ends, so a lock file left behind by a killed apply
//! never blocks the next one. The file's content only says who holds the lock.
//! PostgreSQL: a session advisory lock (`postgres/lock.rs`), seen by every
//! runner that shares the state.

use std::ffi::OsString;
use std::fs::{File, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::connect;
use super::location::Location;
use super::postgres::lock::PgLock;
use super::StateError;

/// Held while an apply runs; released when dropped.
#[derive(Debug)]
pub struct StateLock {
    held: Held,
}

#[derive(Debug)]
enum Held {
    File {
        file: File,
        path: PathBuf,
    },
    /// Held for its `Drop`: the session keeps the advisory lock.
    Postgres {
        _session: Box<PgLock>,
    },
}

/// Written into the lock file by its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub user: String,
    /// RFC 3339, UTC.
    pub since: String,
    /// `VARIABLE=value` of the CI job, if the holder runs in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_job: Option<String>,
}

impl Holder {
    fn current() -> Holder {
        // Who runs, by the same rules as the audit's run record.
        let run = super::RunInfo::from_env(String::new(), None);
        Holder {
            pid: std::process::id(),
            host: run.host,
            user: run.user,
            since: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
            ci_job: run.ci_job,
        }
    }

    /// `user U, pid N on HOST, CI job J, since TIME`.
    fn describe(&self) -> String {
        let job = self
            .ci_job
            .as_deref()
            .map(|job| format!(", CI job {job}"))
            .unwrap_or_default();
        format!(
            "user {}, pid {} on {}{job}, since {}",
            self.user, self.pid, self.host, self.since
        )
    }
}

impl StateLock {
    /// `<db>.lock` beside the store.
    pub fn path_for(db_path: &Path) -> PathBuf {
        let mut name = OsString::from(db_path.as_os_str());
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Takes the lock of the state at `location`, waiting up to `wait` for
    /// another run to finish; if it is still held, says who holds it.
    pub fn acquire_at(
        location: &Location,
        wait: Option<Duration>,
    ) -> Result<StateLock, StateError> {
        match location {
            Location::Sqlite(path) => {
                let deadline = wait.map(|w| Instant::now() + w);
                loop {
                    match StateLock::acquire(path) {
                        Err(StateError::Locked { .. })
                            if deadline.is_some_and(|d| Instant::now() < d) =>
                        {
                            std::thread::sleep(Duration::from_millis(200));
                        }
                        other => return other,
                    }
                }
            }
            Location::Postgres(pg) => Ok(StateLock {
                held: Held::Postgres {
                    _session: Box::new(PgLock::acquire(pg, &Holder::current().describe(), wait)?),
                },
            }),
        }
    }

    /// Takes the lock of a SQLite file without waiting; if another process
    /// holds it, says who.
    pub fn acquire(db_path: &Path) -> Result<StateLock, StateError> {
        let path = StateLock::path_for(db_path);
        connect::create_parent(&path)?;
        let lock_error = |source| StateError::Lock {
            path: path.clone(),
            source,
        };
        // No truncation before the lock is ours: the content is the holder's.
        let mut file = connect::private_file()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(lock_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut content = String::new();
                let holder = match file.read_to_string(&mut content) {
                    Ok(_) => describe(&content),
                    Err(_) => "holder unknown".to_string(),
                };
                return Err(StateError::Locked {
                    place: path.display().to_string(),
                    holder,
                });
            }
            Err(TryLockError::Error(source)) => return Err(lock_error(source)),
        }
        let holder = serde_json::to_string(&Holder::current())
            .map_err(|err| lock_error(std::io::Error::other(err)))?;
        file.set_len(0).map_err(lock_error)?;
        file.write_all(format!("{holder}\n").as_bytes())
            .map_err(lock_error)?;
        Ok(StateLock {
            held: Held::File { file, path },
        })
    }

    /// The lock file (SQLite); `None` for a PostgreSQL lock.
    pub fn path(&self) -> Option<&Path> {
        match &self.held {
            Held::File { path, .. } => Some(path),
            Held::Postgres { .. } => None,
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // Still ours here: clear the holder, then closing the file unlocks it.
        if let Held::File { file, .. } = self {
            let _ = file.set_len(0);
        }
    }
}

/// `pid N on HOST since TIME`, or why it is not known.
fn describe(content: &str) -> String {
    match serde_json::from_str::<Holder>(content.trim()) {
        Ok(holder) => holder.describe(),
        Err(_) => "holder unknown".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    use super::*;

    const CHILD_ENV: &str = "HOMEBASE_TEST_LOCK_CHILD";

    fn expect_locked(db: &Path) -> String {
        match StateLock::acquire(db) {
            Err(err @ StateError::Locked { .. }) => err.to_string(),
            other => panic!("expected the lock to be held, got {other:?}"),
        }
    }

    #[test]
    fn second_acquire_is_refused_with_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state/state.db");
        let lock = StateLock::acquire(&db).unwrap();
        assert_eq!(
            lock.path(),
            Some(dir.path().join("state/state.db.lock").as_path())
        );

        // A second open file description conflicts even within one process.
        let message = expect_locked(&db);
        let expected = format!(
            "another homebase apply holds the lock on {} (user ",
            lock.path().unwrap().display(),
        );
        assert!(message.starts_with(&expected), "{message}");
        assert!(message.contains(" since 20"), "{message}");
        assert!(
            message.contains(&format!("pid {} on ", std::process::id())),
            "{message}"
        );

        drop(lock);
        let again = StateLock::acquire(&db).unwrap();
        drop(again);
    }

    #[test]
    fn a_leftover_lock_file_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        std::fs::write(
            StateLock::path_for(&db),
            r#"{"pid":999999,"host":"gone","user":"x","since":"2020-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        let lock = StateLock::acquire(&db).unwrap();
        let content = std::fs::read_to_string(lock.path().unwrap()).unwrap();
        assert!(
            content.contains(&format!("\"pid\":{}", std::process::id())),
            "{content}"
        );
    }

    /// Runs in a child process (see below): takes the lock and waits to be killed.
    #[test]
    #[ignore = "helper run in a child process by lock_of_a_killed_process_is_released"]
    fn child_holds_lock() {
        let Some(db) = std::env::var_os(CHILD_ENV) else {
            return;
        };
        let _lock = StateLock::acquire(Path::new(&db)).unwrap();
        println!("locked");
        std::thread::sleep(std::time::Duration::from_secs(60));
    }

    #[test]
    fn lock_of_a_killed_process_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "state::lock::tests::child_holds_lock",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let locked = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains("locked"));
        assert!(locked, "the child process did not take the lock");

        let message = expect_locked(&db);
        assert!(
            message.contains(&format!(", pid {} on ", child.id())),
            "{message}"
        );

        child.kill().unwrap();
        child.wait().unwrap();
        // The lock file is still there, with the dead holder's details.
        assert!(StateLock::path_for(&db).exists());
        StateLock::acquire(&db).unwrap();
    }
}
