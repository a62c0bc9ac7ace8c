//! The SQLite state store: who has which username, account, peer, devices and
//! seats; bundle fingerprints; and the audit trail of every run.
//!
//! - [`Store`]: one connection; reads for `plan`/`status`, short write transactions.
//! - [`Journal`]: the executor's group-committing writer (one thread, many tasks).
//! - [`StateLock`]: one apply at a time.
//!
//! Never a secret: no table has a column for a private key, preshared key or
//! password, and no write operation takes one.

mod audit;
mod certificates;
mod columns;
mod connect;
mod dump;
mod error;
mod journal;
mod location;
mod lock;
mod postgres;
mod schema;
mod store;
mod write;

#[cfg(test)]
mod tests;

pub use audit::{Entry, EntryOutcome, JournalRecord, ResourceKind, RunInfo, RunOutcome, RunRecord};
pub use certificates::Certificate;
pub use dump::{Dump, DUMP_SCHEMA};
pub use error::StateError;
pub use journal::{Journal, JournalStats};
pub use location::{is_url, Location, PgLocation, StateConfig, StateServer, DEFAULT_SCHEMA};
pub use lock::{Holder, StateLock};
pub use schema::CURRENT_VERSION;
pub use store::Store;
pub use write::WriteOp;
