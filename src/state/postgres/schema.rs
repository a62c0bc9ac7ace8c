//! The PostgreSQL schema: the same tables, columns and steps as the SQLite
//! one (so a version number means the same on both, and `state migrate`
//! copies row for row), in PostgreSQL's types. No column can hold a secret.

use postgres::Client;

use super::super::location::PgLocation;
use super::super::StateError;
use super::connect::pg;

/// Step `i` takes the schema from version `i` to `i + 1`; one per SQLite step.
const MIGRATIONS: &[&str] = &[V1, V2, V3];

const _: () = assert!(MIGRATIONS.len() as i64 == super::super::CURRENT_VERSION);

const V1: &str = r#"
CREATE TABLE persons (
    id           TEXT PRIMARY KEY,
    username     TEXT NOT NULL,
    display_name TEXT NOT NULL,
    profile      TEXT NOT NULL,
    withdrawn    BOOLEAN NOT NULL DEFAULT false,
    offboarded   BOOLEAN NOT NULL DEFAULT false,
    created      TEXT NOT NULL,
    updated      TEXT NOT NULL
);
-- Usernames are unique regardless of case (SQLite: COLLATE NOCASE).
CREATE UNIQUE INDEX persons_username ON persons (lower(username));

CREATE TABLE accounts (
    target       TEXT NOT NULL,
    person_id    TEXT NOT NULL REFERENCES persons (id),
    username     TEXT NOT NULL,
    given_name   TEXT NOT NULL,
    family_name  TEXT NOT NULL,
    display_name TEXT NOT NULL,
    email        TEXT NOT NULL,
    department   TEXT,
    groups       TEXT NOT NULL,
    ou           TEXT,
    expires      TEXT,
    enabled      BOOLEAN NOT NULL,
    remote_id    TEXT,
    updated      TEXT NOT NULL,
    PRIMARY KEY (target, person_id),
    UNIQUE (target, username)
);

CREATE TABLE peers (
    target        TEXT NOT NULL,
    person_id     TEXT NOT NULL REFERENCES persons (id),
    address       TEXT NOT NULL,
    public_key    TEXT NOT NULL,
    preshared_key BOOLEAN NOT NULL,
    expires       TEXT,
    adopted       BOOLEAN NOT NULL DEFAULT false,
    updated       TEXT NOT NULL,
    PRIMARY KEY (target, person_id),
    UNIQUE (target, address)
);

CREATE TABLE devices (
    target    TEXT NOT NULL,
    asset_tag TEXT NOT NULL,
    serial    TEXT NOT NULL,
    kind      TEXT NOT NULL,
    model     TEXT NOT NULL,
    person_id TEXT NOT NULL REFERENCES persons (id),
    assigned  TEXT NOT NULL,
    PRIMARY KEY (target, asset_tag)
);
CREATE INDEX devices_by_person ON devices (person_id);

CREATE TABLE seats (
    pool      TEXT NOT NULL,
    person_id TEXT NOT NULL REFERENCES persons (id),
    added     TEXT NOT NULL,
    PRIMARY KEY (pool, person_id)
);

CREATE TABLE bundles (
    person_id   TEXT PRIMARY KEY REFERENCES persons (id),
    fingerprint TEXT NOT NULL,
    updated     TEXT NOT NULL
);

CREATE TABLE runs (
    id           BIGSERIAL PRIMARY KEY,
    "user"       TEXT NOT NULL,
    host         TEXT NOT NULL,
    ci_job       TEXT,
    command      TEXT NOT NULL,
    plan_digest  TEXT,
    started      TEXT NOT NULL,
    finished     TEXT,
    outcome      TEXT,
    ok_count     BIGINT NOT NULL DEFAULT 0,
    failed_count BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE journal (
    id        BIGSERIAL PRIMARY KEY,
    run_id    BIGINT NOT NULL REFERENCES runs (id),
    person_id TEXT,
    target    TEXT NOT NULL,
    resource  TEXT NOT NULL,
    op        TEXT NOT NULL,
    outcome   TEXT NOT NULL CHECK (outcome IN ('ok', 'failed')),
    message   TEXT NOT NULL,
    at        TEXT NOT NULL
);
CREATE INDEX journal_by_person ON journal (person_id, id);
CREATE INDEX journal_by_run ON journal (run_id, outcome);
"#;

const V2: &str = r#"
CREATE TABLE certificates (
    target     TEXT NOT NULL,
    serial     TEXT NOT NULL,
    person_id  TEXT NOT NULL REFERENCES persons (id),
    issued     TEXT NOT NULL,
    not_after  TEXT NOT NULL,
    access_end TEXT,
    revoked    TEXT,
    superseded BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (target, serial)
);
CREATE INDEX certificates_by_person ON certificates (target, person_id);
"#;

const V3: &str = r#"
ALTER TABLE bundles ADD COLUMN stale BOOLEAN NOT NULL DEFAULT false;
-- Who holds the run lock (an advisory lock of a session): by that session's
-- server process id, which pg_locks names while the lock is held.
CREATE TABLE lock_holders (
    backend_pid INTEGER PRIMARY KEY,
    holder      TEXT NOT NULL
);
"#;

/// The advisory-lock key space of homebase (`home` in ASCII).
pub const LOCK_CLASS: i32 = 0x686f_6d65;

/// The schema's own lock keys: 2k for the run lock, 2k+1 for migrations.
pub fn lock_key(schema: &str) -> i32 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(schema.as_bytes());
    let n = i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) & 0x3fff_ffff;
    n * 2
}

/// The version recorded in the schema; 0 when it does not exist yet.
pub fn version(client: &mut Client, location: &PgLocation) -> Result<i64, StateError> {
    let exists = client
        .query_one(
            "SELECT to_regclass(format('%I.schema_version', $1::text)) IS NOT NULL",
            &[&location.schema],
        )
        .map_err(|e| pg(location, e))?;
    if !exists.get::<_, bool>(0) {
        return Ok(0);
    }
    let row = client
        .query_opt("SELECT version FROM schema_version", &[])
        .map_err(|e| pg(location, e))?;
    Ok(row.map_or(0, |r| r.get(0)))
}

/// Creates the schema if needed and applies the pending steps, all in one
/// transaction, serialised by an advisory lock: runners starting at once
/// migrate once.
pub fn migrate(client: &mut Client, location: &PgLocation) -> Result<(), StateError> {
    let err = |e| pg(location, e);
    let key = lock_key(&location.schema) + 1;
    let mut tx = client.transaction().map_err(err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&LOCK_CLASS, &key])
        .map_err(err)?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS \"{0}\";
         CREATE TABLE IF NOT EXISTS \"{0}\".schema_version (version BIGINT NOT NULL);",
        location.schema
    ))
    .map_err(err)?;
    let found: i64 = tx
        .query_opt("SELECT version FROM schema_version", &[])
        .map_err(err)?
        .map_or(0, |r| r.get(0));
    let supported = MIGRATIONS.len() as i64;
    if found > supported {
        return Err(StateError::TooNew {
            path: location.to_string().into(),
            found,
            supported,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        tx.batch_execute(sql).map_err(|e| StateError::PgMigration {
            version: index as i64 + 1,
            detail: super::connect::describe(&e),
        })?;
    }
    if found < supported {
        tx.execute("DELETE FROM schema_version", &[]).map_err(err)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&supported],
        )
        .map_err(err)?;
    }
    tx.commit().map_err(err)
}
