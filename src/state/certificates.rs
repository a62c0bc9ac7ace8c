//! Client certificates issued by `openvpn` targets: serial, holder, validity
//! and revocation — what the CRL and the plan's renewals are computed from.
//! Never a key: the client key lives only in the person's bundle, the CA key
//! only in its file.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, Connection};

use super::columns;
use super::StateError;

/// The schema step that adds the table. Self-contained (one table, no
/// change to others), so it can take any place in the list of migrations.
pub const MIGRATION: &str = r#"
-- Per openvpn target: every certificate issued, by serial (lower-case hex).
CREATE TABLE certificates (
    target     TEXT NOT NULL,
    serial     TEXT NOT NULL,
    person_id  TEXT NOT NULL REFERENCES persons (id),
    issued     TEXT NOT NULL,
    not_after  TEXT NOT NULL,            -- RFC 3339, UTC
    access_end TEXT,                     -- YYYY-MM-DD the certificate was issued for
    revoked    TEXT,                     -- RFC 3339, UTC; NULL while valid
    superseded INTEGER NOT NULL DEFAULT 0 CHECK (superseded IN (0, 1)),
    PRIMARY KEY (target, serial)
) STRICT, WITHOUT ROWID;
CREATE INDEX certificates_by_person ON certificates (target, person_id);
"#;

/// One issued certificate as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub serial: String,
    pub person_id: String,
    pub not_after: DateTime<Utc>,
    pub access_end: Option<NaiveDate>,
    pub revoked: Option<DateTime<Utc>>,
    /// Revoked because a newer certificate replaced it (not withdrawal).
    pub superseded: bool,
}

/// Records a new certificate; the holder's older valid ones are revoked as superseded.
pub fn put(
    conn: &Connection,
    target: &str,
    person_id: &str,
    serial: &str,
    not_after: DateTime<Utc>,
    access_end: Option<NaiveDate>,
    now: &str,
) -> Result<(), StateError> {
    conn.prepare_cached(
        "UPDATE certificates SET revoked = ?3, superseded = 1
         WHERE target = ?1 AND person_id = ?2 AND revoked IS NULL AND serial != ?4",
    )?
    .execute(params![target, person_id, now, serial])?;
    conn.prepare_cached(
        "INSERT INTO certificates (target, serial, person_id, issued, not_after, access_end)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (target, serial) DO NOTHING",
    )?
    .execute(params![
        target,
        serial,
        person_id,
        now,
        columns::timestamp(not_after),
        columns::date(access_end),
    ])
    .map_err(|err| match err {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
        {
            StateError::UnknownPerson {
                id: person_id.to_string(),
            }
        }
        other => other.into(),
    })?;
    Ok(())
}

/// Revokes every valid certificate of the person on the target (withdrawal).
pub fn revoke(
    conn: &Connection,
    target: &str,
    person_id: &str,
    now: &str,
) -> Result<(), StateError> {
    conn.prepare_cached(
        "UPDATE certificates SET revoked = ?3
         WHERE target = ?1 AND person_id = ?2 AND revoked IS NULL",
    )?
    .execute(params![target, person_id, now])?;
    Ok(())
}

/// The target's certificates, oldest first.
pub fn list(conn: &Connection, target: &str) -> Result<Vec<Certificate>, StateError> {
    let mut stmt = conn.prepare_cached(
        "SELECT serial, person_id, not_after, access_end, revoked, superseded
         FROM certificates WHERE target = ?1 ORDER BY issued, serial",
    )?;
    let mut rows = stmt.query([target])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let not_after: String = row.get(2)?;
        let revoked: Option<String> = row.get(4)?;
        out.push(Certificate {
            serial: row.get(0)?,
            person_id: row.get(1)?,
            not_after: columns::parse_timestamp(&not_after)?,
            access_end: columns::parse_date(row.get(3)?)?,
            revoked: revoked
                .as_deref()
                .map(columns::parse_timestamp)
                .transpose()?,
            superseded: row.get(5)?,
        });
    }
    Ok(out)
}
