//! What can go wrong with the state store, each case saying what to do about it.

use std::path::PathBuf;

/// Errors of the state store. Callers tell the cases apart (a held lock is not
/// a corrupt file); every message ends in what the user can do.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create {path}: {source}; check that the folder is writable")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cannot open the state store {path}: {source}; check the path and its permissions")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },

    #[error("cannot read {path}: {source}; check its permissions")]
    Access {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "the state store {path} cannot use write-ahead logging (journal mode stays {mode}); \
         keep it on a local disk, not a network share"
    )]
    NoWal { path: PathBuf, mode: String },

    #[error(
        "the state store {path} has schema version {found}, newer than this homebase \
         understands (up to {supported}); use the homebase release that wrote it, or a newer one"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    #[error(
        "the state store {path} has schema version {found} from an older homebase \
         (this one uses {current}); run `homebase apply` once to upgrade it"
    )]
    TooOld {
        path: PathBuf,
        found: i64,
        current: i64,
    },

    #[error("upgrading the state store to schema version {version} failed: {source}; the store was left unchanged")]
    Migration {
        version: i64,
        source: rusqlite::Error,
    },

    #[error("the state store {path} was opened read-only; only `apply`, `offboard` and `adopt` write to it")]
    ReadOnly { path: PathBuf },

    #[error(
        "person {id} keeps the username {pinned} forever and cannot become {requested}; \
         a person's username never changes once provisioned"
    )]
    UsernamePinned {
        id: String,
        pinned: String,
        requested: String,
    },

    #[error(
        "the username {username} already belongs to person {holder}, not {id}; \
         re-run `homebase plan` so that a free username is chosen"
    )]
    UsernameTaken {
        username: String,
        holder: String,
        id: String,
    },

    #[error(
        "the address {address} on {target} already belongs to person {holder}; \
         re-run `homebase plan` so that a free address is chosen"
    )]
    AddressTaken {
        target: String,
        address: String,
        holder: String,
    },

    #[error(
        "device {asset_tag} on {target} is already assigned to person {holder}; \
         check it in first, or re-run `homebase plan` to pick another one"
    )]
    DeviceTaken {
        target: String,
        asset_tag: String,
        holder: String,
    },

    #[error("person {id} is not in the state store; record the person (their username) before their resources")]
    UnknownPerson { id: String },

    #[error(
        "run {id} is not in the state store; it must be begun before it is journaled or finished"
    )]
    UnknownRun { id: i64 },

    #[error(
        "the state store holds an unreadable {what}: {detail}; \
         restore the state store from a backup, or rebuild it with `homebase adopt`"
    )]
    Corrupt { what: String, detail: String },

    #[error("state store: {0}")]
    Sqlite(#[from] rusqlite::Error),

    #[error(
        "another homebase apply holds the lock on {place} ({holder}); \
         wait for it to finish (or let this run wait with --lock-timeout), \
         or check whether that process is still running"
    )]
    Locked { place: String, holder: String },

    #[error(
        "cannot connect to the state store {location}: {detail}; check the URL, \
         the password (PGPASSWORD, a password file, `password_env`/`password_file`) \
         and the CA (`ca_file`)"
    )]
    PgConnect { location: String, detail: String },

    #[error(
        "the state store {place} already holds persons or runs; \
         `state migrate` copies into an empty store only (a new file, or a new schema)"
    )]
    NotEmpty { place: String },

    #[error("state store {location}: {detail}")]
    Postgres { location: String, detail: String },

    #[error("upgrading the state store to schema version {version} failed: {detail}; the store was left unchanged")]
    PgMigration { version: i64, detail: String },

    #[error("cannot lock {path}: {source}; check that the folder is writable")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("a batch of state writes could not be committed: {0}; the batch was rolled back, re-running resumes")]
    Commit(String),

    #[error(
        "the journal writer has stopped, so this action could not be recorded; re-running resumes"
    )]
    JournalClosed,
}
