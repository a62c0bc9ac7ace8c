//! One apply at a time per state store (SPEC.md "Applying").
//!
//! An exclusive OS lock on `<db>.lock`: the kernel drops it when the process
//! ends, however it ends, so a lock file left behind by a killed apply never
//! blocks the next one. The file's content only says who holds the lock.

use std::ffi::OsString;
use std::fs::{File, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::connect;
use super::StateError;

/// Held while an apply runs; released when dropped.
#[derive(Debug)]
pub struct StateLock {
    file: File,
    path: PathBuf,
}

/// Written into the lock file by its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub user: String,
    /// RFC 3339, UTC.
    pub since: String,
}

impl Holder {
    fn current() -> Holder {
        Holder {
            pid: std::process::id(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            user: std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .unwrap_or_else(|_| "unknown".into()),
            since: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        }
    }
}

impl StateLock {
    /// `<db>.lock` beside the store.
    pub fn path_for(db_path: &Path) -> PathBuf {
        let mut name = OsString::from(db_path.as_os_str());
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Takes the lock without waiting; if another process holds it, says who.
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
                return Err(StateError::Locked { path, holder });
            }
            Err(TryLockError::Error(source)) => return Err(lock_error(source)),
        }
        let holder = serde_json::to_string(&Holder::current())
            .map_err(|err| lock_error(std::io::Error::other(err)))?;
        file.set_len(0).map_err(lock_error)?;
        file.write_all(format!("{holder}\n").as_bytes())
            .map_err(lock_error)?;
        Ok(StateLock { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        // Still ours here: clear the holder, then closing the file unlocks it.
        let _ = self.file.set_len(0);
    }
}

/// `pid N on HOST since TIME`, or why it is not known.
fn describe(content: &str) -> String {
    match serde_json::from_str::<Holder>(content.trim()) {
        Ok(holder) => format!(
            "pid {} on {} since {}",
            holder.pid, holder.host, holder.since
        ),
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
        assert_eq!(lock.path(), dir.path().join("state/state.db.lock"));

        // A second open file description conflicts even within one process.
        let message = expect_locked(&db);
        let expected = format!(
            "another homebase apply holds the lock on {} (pid {} on ",
            lock.path().display(),
            std::process::id()
        );
        assert!(message.starts_with(&expected), "{message}");
        assert!(message.contains(" since 20"), "{message}");

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
        let content = std::fs::read_to_string(lock.path()).unwrap();
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
            message.contains(&format!("(pid {} on ", child.id())),
            "{message}"
        );

        child.kill().unwrap();
        child.wait().unwrap();
        // The lock file is still there, with the dead holder's details.
        assert!(StateLock::path_for(&db).exists());
        StateLock::acquire(&db).unwrap();
    }
}
