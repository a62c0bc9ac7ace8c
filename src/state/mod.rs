//! The SQLite state store: who has which username, account, peer, devices and
//! seats; bundle fingerprints; and the audit trail of every run.
//!
//! Never a secret: no table has a column for a private key, preshared key or
//! password, and no write operation takes one.

mod columns;
mod connect;
mod error;
mod schema;

pub use error::StateError;
pub use schema::CURRENT_VERSION;
