//! The schema, as an ordered list of migrations. `PRAGMA user_version` is the
//! number of steps applied; a new release appends steps and never edits old ones.
//!
//! No table has a column for a private key, preshared key or password: secrets
//! live only in the person's bundle (docs/contract.md, "Secrets").

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::StateError;

/// Step `i` takes the store from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[V1, super::certificates::MIGRATION, V3];

/// The schema version this binary writes.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

const V1: &str = r#"
-- A person homebase provisioned; the username is pinned for good.
CREATE TABLE persons (
    id           TEXT PRIMARY KEY,
    username     TEXT NOT NULL UNIQUE COLLATE NOCASE,
    display_name TEXT NOT NULL,
    profile      TEXT NOT NULL,
    withdrawn    INTEGER NOT NULL DEFAULT 0 CHECK (withdrawn IN (0, 1)),
    -- Withdrawn on request (`homebase offboard`): stays withdrawn while the
    -- staff list still names the person, until `offboard --undo`.
    offboarded   INTEGER NOT NULL DEFAULT 0 CHECK (offboarded IN (0, 1)),
    created      TEXT NOT NULL,
    updated      TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- Per directory target: the account as homebase set it. For the `local`
-- target this is the directory itself; for remote ones, remote_id is the
-- server's id (DN, SCIM id).
CREATE TABLE accounts (
    target       TEXT NOT NULL,
    person_id    TEXT NOT NULL REFERENCES persons (id),
    username     TEXT NOT NULL,
    given_name   TEXT NOT NULL,
    family_name  TEXT NOT NULL,
    display_name TEXT NOT NULL,
    email        TEXT NOT NULL,
    department   TEXT,
    groups       TEXT NOT NULL,          -- JSON array of group names
    ou           TEXT,
    expires      TEXT,                   -- YYYY-MM-DD
    enabled      INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    remote_id    TEXT,
    updated      TEXT NOT NULL,
    PRIMARY KEY (target, person_id),
    UNIQUE (target, username)
) STRICT, WITHOUT ROWID;

-- Per VPN target: the person's peer. Only the public half of the key.
CREATE TABLE peers (
    target        TEXT NOT NULL,
    person_id     TEXT NOT NULL REFERENCES persons (id),
    address       TEXT NOT NULL,
    public_key    TEXT NOT NULL,
    preshared_key INTEGER NOT NULL CHECK (preshared_key IN (0, 1)),  -- whether one is configured
    expires       TEXT,
    adopted       INTEGER NOT NULL DEFAULT 0 CHECK (adopted IN (0, 1)),
    updated       TEXT NOT NULL,
    PRIMARY KEY (target, person_id),
    UNIQUE (target, address)
) STRICT, WITHOUT ROWID;

-- Per inventory target: which device is out with whom.
CREATE TABLE devices (
    target    TEXT NOT NULL,
    asset_tag TEXT NOT NULL,
    serial    TEXT NOT NULL,
    kind      TEXT NOT NULL,
    model     TEXT NOT NULL,
    person_id TEXT NOT NULL REFERENCES persons (id),
    assigned  TEXT NOT NULL,
    PRIMARY KEY (target, asset_tag)
) STRICT, WITHOUT ROWID;
CREATE INDEX devices_by_person ON devices (person_id);

CREATE TABLE seats (
    pool      TEXT NOT NULL,
    person_id TEXT NOT NULL REFERENCES persons (id),
    added     TEXT NOT NULL,
    PRIMARY KEY (pool, person_id)
) STRICT, WITHOUT ROWID;

-- What the person's bundle was last written from; unchanged access, unchanged bundle.
CREATE TABLE bundles (
    person_id   TEXT PRIMARY KEY REFERENCES persons (id),
    fingerprint TEXT NOT NULL,
    updated     TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- Audit: one row per apply/offboard/adopt.
CREATE TABLE runs (
    id           INTEGER PRIMARY KEY,
    user         TEXT NOT NULL,
    host         TEXT NOT NULL,
    ci_job       TEXT,
    command      TEXT NOT NULL,
    plan_digest  TEXT,
    started      TEXT NOT NULL,
    finished     TEXT,
    outcome      TEXT,
    ok_count     INTEGER NOT NULL DEFAULT 0,
    failed_count INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Audit: one row per completed or failed action.
CREATE TABLE journal (
    id        INTEGER PRIMARY KEY,
    run_id    INTEGER NOT NULL REFERENCES runs (id),
    person_id TEXT,
    target    TEXT NOT NULL,
    resource  TEXT NOT NULL,
    op        TEXT NOT NULL,
    outcome   TEXT NOT NULL CHECK (outcome IN ('ok', 'failed')),
    message   TEXT NOT NULL,
    at        TEXT NOT NULL
) STRICT;
CREATE INDEX journal_by_person ON journal (person_id, id);
CREATE INDEX journal_by_run ON journal (run_id, outcome);
"#;

/// A delivered bundle whose person's access changed on a machine without
/// the bundle (a CI runner): the machine that has it rewrites it, keeping its
/// secrets (see `plan::build`, "Bundles").
const V3: &str = r#"
ALTER TABLE bundles ADD COLUMN stale INTEGER NOT NULL DEFAULT 0 CHECK (stale IN (0, 1));
"#;

/// The version recorded in the file (0 for a new, empty file).
pub fn version(conn: &Connection) -> Result<i64, rusqlite::Error> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Brings the store up to [`CURRENT_VERSION`] in one transaction.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StateError> {
    migrate_with(conn, path, MIGRATIONS)
}

/// All pending steps commit together or not at all. `BEGIN IMMEDIATE` keeps
/// two processes from migrating the same file at once.
fn migrate_with(conn: &mut Connection, path: &Path, steps: &[&str]) -> Result<(), StateError> {
    let supported = steps.len() as i64;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = version(&tx)?;
    if found > supported {
        return Err(StateError::TooNew {
            path: path.to_path_buf(),
            found,
            supported,
        });
    }
    for (index, sql) in steps.iter().enumerate().skip(found.max(0) as usize) {
        let to = index as i64 + 1;
        tx.execute_batch(sql)
            .and_then(|()| tx.pragma_update(None, "user_version", to))
            .map_err(|source| StateError::Migration {
                version: to,
                source,
            })?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .unwrap();
        let rows = stmt.query_map([], |row| row.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn migrates_an_empty_file_from_version_one() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(version(&conn).unwrap(), 0);
        migrate(&mut conn, Path::new("mem")).unwrap();
        assert_eq!(version(&conn).unwrap(), CURRENT_VERSION);
        assert_eq!(
            tables(&conn),
            [
                "accounts",
                "bundles",
                "certificates",
                "devices",
                "journal",
                "peers",
                "persons",
                "runs",
                "seats"
            ]
        );
        // Idempotent: a second run applies nothing.
        migrate(&mut conn, Path::new("mem")).unwrap();
        assert_eq!(version(&conn).unwrap(), CURRENT_VERSION);
    }

    #[test]
    fn applies_only_pending_steps_in_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        let steps = [
            "CREATE TABLE a (x INTEGER) STRICT;",
            "ALTER TABLE a ADD COLUMN y TEXT;",
        ];
        migrate_with(&mut conn, Path::new("mem"), &steps[..1]).unwrap();
        assert_eq!(version(&conn).unwrap(), 1);
        migrate_with(&mut conn, Path::new("mem"), &steps).unwrap();
        assert_eq!(version(&conn).unwrap(), 2);
        conn.execute("INSERT INTO a (x, y) VALUES (1, 'b')", [])
            .unwrap();
    }

    #[test]
    fn a_failing_step_leaves_the_store_unchanged() {
        let mut conn = Connection::open_in_memory().unwrap();
        let steps = ["CREATE TABLE a (x INTEGER) STRICT;", "THIS IS NOT SQL;"];
        let err = migrate_with(&mut conn, Path::new("mem"), &steps).unwrap_err();
        assert!(
            matches!(err, StateError::Migration { version: 2, .. }),
            "{err}"
        );
        assert_eq!(version(&conn).unwrap(), 0);
        assert!(tables(&conn).is_empty());
    }

    #[test]
    fn a_newer_store_is_refused_with_a_clear_message() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", CURRENT_VERSION + 5)
            .unwrap();
        let err = migrate(&mut conn, Path::new("state.db")).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("newer than this homebase"), "{message}");
        assert!(message.contains("state.db"), "{message}");
    }
}
