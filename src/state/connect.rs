//! Opening the SQLite file the one way homebase uses it.

use std::fs::{DirBuilder, OpenOptions};
use std::io::ErrorKind;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::schema;
use super::StateError;

/// How long a writer waits for another (the journal thread, a second process).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Enough for every statement the store and the journal prepare.
const STATEMENT_CACHE: usize = 64;

/// Opens (creating if needed) and migrates the store: WAL, `synchronous=NORMAL`
/// — a committed transaction survives a killed process — and foreign keys on.
pub fn read_write(path: &Path) -> Result<Connection, StateError> {
    create_private(path)?;
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| open_error(path, source))?;
    configure(&conn).map_err(|source| open_error(path, source))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|source| open_error(path, source))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StateError::NoWal {
            path: path.to_path_buf(),
            mode,
        });
    }
    // 16 MiB of page cache holds a 10,000-person store; a checkpoint (an
    // fsync) every ~40 MB of log rather than every 4 MB.
    for (pragma, value) in [
        ("synchronous", "NORMAL"),
        ("cache_size", "-16384"),
        ("wal_autocheckpoint", "10000"),
    ] {
        conn.pragma_update(None, pragma, value)
            .map_err(|source| open_error(path, source))?;
    }
    schema::migrate(&mut conn, path)?;
    Ok(conn)
}

/// Opens an existing store without creating or changing anything; `None` when
/// there is no file yet. The schema must be this binary's.
pub fn read_only(path: &Path) -> Result<Option<Connection>, StateError> {
    match path.try_exists() {
        Ok(true) => {}
        Ok(false) => return Ok(None),
        Err(source) => {
            return Err(StateError::Access {
                path: path.to_path_buf(),
                source,
            })
        }
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| open_error(path, source))?;
    configure(&conn).map_err(|source| open_error(path, source))?;
    conn.pragma_update(None, "query_only", true)
        .map_err(|source| open_error(path, source))?;
    let found = schema::version(&conn).map_err(|source| open_error(path, source))?;
    if found == 0 {
        // An empty file: nothing was ever recorded.
        return Ok(None);
    }
    if found > schema::CURRENT_VERSION {
        return Err(StateError::TooNew {
            path: path.to_path_buf(),
            found,
            supported: schema::CURRENT_VERSION,
        });
    }
    if found < schema::CURRENT_VERSION {
        return Err(StateError::TooOld {
            path: path.to_path_buf(),
            found,
            current: schema::CURRENT_VERSION,
        });
    }
    Ok(Some(conn))
}

/// Called by the last user of a read-write connection: checkpoints and leaves
/// WAL mode, so that the folder holds just the database file and a read-only
/// open (`plan`, `status`) creates no -wal or -shm beside it. While another
/// connection is open this fails at once and changes nothing; that one will
/// do it when it closes. A killed process skips this, which is safe: the
/// next open recovers from the write-ahead log.
pub fn leave_wal(conn: &Connection) {
    if conn.busy_timeout(Duration::ZERO).is_ok() {
        let _ = conn.pragma_update_and_check(None, "journal_mode", "DELETE", |row| {
            row.get::<_, String>(0)
        });
    }
}

fn configure(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

fn open_error(path: &Path, source: rusqlite::Error) -> StateError {
    StateError::Open {
        path: path.to_path_buf(),
        source,
    }
}

/// The store holds names and e-mail addresses: its folder is 0700 and the
/// file 0600 (SQLite gives the -wal and -shm files the same mode).
fn create_private(path: &Path) -> Result<(), StateError> {
    create_parent(path)?;
    match private_file().write(true).create_new(true).open(path) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StateError::Create {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Creates the folders above `path`, each 0700.
pub fn create_parent(path: &Path) -> Result<(), StateError> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(parent).map_err(|source| StateError::Create {
        path: parent.to_path_buf(),
        source,
    })
}

/// Options that create a file as 0600.
pub fn private_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}
