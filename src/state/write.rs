//! Every change to the store is one of these operations, applied the same way
//! whether it comes from [`Store`](super::Store) or the group-committing
//! [`Journal`](super::Journal).
//!
//! There is deliberately no operation that takes a private key, a preshared key
//! or a password: the store has no way to hold one.

use rusqlite::{params, Connection, ErrorCode, OptionalExtension};

use crate::plan::{Account, Device, Peer};

use super::audit::Entry;
use super::columns;
use super::StateError;

/// One change to the state store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Records a person with their username, or refreshes their name and
    /// profile. The username never changes once recorded.
    PinPerson {
        id: String,
        username: String,
        display_name: String,
        profile: String,
    },
    SetWithdrawn {
        id: String,
        withdrawn: bool,
    },
    /// Marks (or unmarks) an explicit offboarding, which later plans keep.
    SetOffboarded {
        id: String,
        offboarded: bool,
    },
    /// Creates or replaces the account. `remote_id: None` keeps the one recorded.
    PutAccount {
        target: String,
        person_id: String,
        account: Account,
        remote_id: Option<String>,
    },
    RemoveAccount {
        target: String,
        person_id: String,
    },
    /// Creates or replaces the peer; only the public key is kept.
    PutPeer {
        target: String,
        person_id: String,
        peer: Peer,
        public_key: String,
    },
    /// Like `PutPeer`, for a peer that existed before homebase took it over.
    AdoptPeer {
        target: String,
        person_id: String,
        peer: Peer,
        public_key: String,
    },
    /// Changes a recorded peer's address, preshared-key setting and expiry,
    /// keeping its public key: the peer was updated by a run that did not
    /// have the person's bundle (and so no key of theirs).
    UpdatePeer {
        target: String,
        person_id: String,
        peer: Peer,
    },
    RemovePeer {
        target: String,
        person_id: String,
    },
    /// Checks a device out to the person (again: idempotent for the same person).
    AssignDevice {
        target: String,
        person_id: String,
        device: Device,
    },
    ReleaseDevice {
        target: String,
        asset_tag: String,
    },
    AddSeat {
        pool: String,
        person_id: String,
    },
    RemoveSeat {
        pool: String,
        person_id: String,
    },
    /// The bundle was completed (delivered): from now on its absence from a
    /// machine's disk is never a reason for new secrets.
    SetBundle {
        person_id: String,
        fingerprint: String,
    },
    /// The person's access changed in a run that did not have their
    /// delivered bundle: where the bundle is, the next run rewrites it.
    MarkBundleStale {
        person_id: String,
    },
    /// Records a client certificate (serial and validity, never the key);
    /// the holder's older ones on the target are revoked as superseded.
    PutCertificate {
        target: String,
        person_id: String,
        serial: String,
        not_after: chrono::DateTime<chrono::Utc>,
        access_end: Option<chrono::NaiveDate>,
    },
    /// Revokes the person's valid certificates on the target (withdrawal).
    RevokeCertificates {
        target: String,
        person_id: String,
    },
    /// An audit record of one action's outcome.
    Entry(Entry),
}

/// Applies one operation inside the caller's transaction. `now` is the
/// batch's timestamp.
pub fn apply(conn: &Connection, op: &WriteOp, now: &str) -> Result<(), StateError> {
    match op {
        WriteOp::PinPerson {
            id,
            username,
            display_name,
            profile,
        } => pin_person(conn, id, username, display_name, profile, now),
        WriteOp::SetWithdrawn { id, withdrawn } => {
            let changed = conn
                .prepare_cached("UPDATE persons SET withdrawn = ?2, updated = ?3 WHERE id = ?1")?
                .execute(params![id, withdrawn, now])?;
            if changed == 0 {
                return Err(StateError::UnknownPerson { id: id.clone() });
            }
            Ok(())
        }
        WriteOp::SetOffboarded { id, offboarded } => {
            let changed = conn
                .prepare_cached("UPDATE persons SET offboarded = ?2, updated = ?3 WHERE id = ?1")?
                .execute(params![id, offboarded, now])?;
            if changed == 0 {
                return Err(StateError::UnknownPerson { id: id.clone() });
            }
            Ok(())
        }
        WriteOp::PutAccount {
            target,
            person_id,
            account,
            remote_id,
        } => put_account(conn, target, person_id, account, remote_id.as_deref(), now),
        WriteOp::RemoveAccount { target, person_id } => {
            conn.prepare_cached("DELETE FROM accounts WHERE target = ?1 AND person_id = ?2")?
                .execute(params![target, person_id])?;
            Ok(())
        }
        WriteOp::PutPeer {
            target,
            person_id,
            peer,
            public_key,
        } => put_peer(conn, target, person_id, peer, public_key, false, now),
        WriteOp::AdoptPeer {
            target,
            person_id,
            peer,
            public_key,
        } => put_peer(conn, target, person_id, peer, public_key, true, now),
        WriteOp::UpdatePeer {
            target,
            person_id,
            peer,
        } => {
            let changed = conn
                .prepare_cached(
                    "UPDATE peers SET address = ?3, preshared_key = ?4, expires = ?5, updated = ?6
                     WHERE target = ?1 AND person_id = ?2",
                )?
                .execute(params![
                    target,
                    person_id,
                    peer.address.to_string(),
                    peer.preshared_key,
                    columns::date(peer.expires),
                    now,
                ])
                .map_err(|err| match constraint(&err) {
                    Some(Constraint::Unique) => StateError::AddressTaken {
                        target: target.clone(),
                        address: peer.address.to_string(),
                        holder: "another person".to_string(),
                    },
                    _ => err.into(),
                })?;
            if changed == 0 {
                return Err(StateError::UnknownPerson {
                    id: person_id.clone(),
                });
            }
            Ok(())
        }
        WriteOp::RemovePeer { target, person_id } => {
            conn.prepare_cached("DELETE FROM peers WHERE target = ?1 AND person_id = ?2")?
                .execute(params![target, person_id])?;
            Ok(())
        }
        WriteOp::AssignDevice {
            target,
            person_id,
            device,
        } => assign_device(conn, target, person_id, device, now),
        WriteOp::ReleaseDevice { target, asset_tag } => {
            conn.prepare_cached("DELETE FROM devices WHERE target = ?1 AND asset_tag = ?2")?
                .execute(params![target, asset_tag])?;
            Ok(())
        }
        WriteOp::AddSeat { pool, person_id } => {
            conn.prepare_cached(
                "INSERT INTO seats (pool, person_id, added) VALUES (?1, ?2, ?3)
                 ON CONFLICT (pool, person_id) DO NOTHING",
            )?
            .execute(params![pool, person_id, now])
            .map_err(|err| unknown_person(err, person_id))?;
            Ok(())
        }
        WriteOp::RemoveSeat { pool, person_id } => {
            conn.prepare_cached("DELETE FROM seats WHERE pool = ?1 AND person_id = ?2")?
                .execute(params![pool, person_id])?;
            Ok(())
        }
        WriteOp::SetBundle {
            person_id,
            fingerprint,
        } => {
            conn.prepare_cached(
                "INSERT INTO bundles (person_id, fingerprint, updated, stale) VALUES (?1, ?2, ?3, 0)
                 ON CONFLICT (person_id) DO UPDATE SET
                     fingerprint = excluded.fingerprint, updated = excluded.updated, stale = 0",
            )?
            .execute(params![person_id, fingerprint, now])
            .map_err(|err| unknown_person(err, person_id))?;
            Ok(())
        }
        WriteOp::MarkBundleStale { person_id } => {
            conn.prepare_cached("UPDATE bundles SET stale = 1, updated = ?2 WHERE person_id = ?1")?
                .execute(params![person_id, now])?;
            Ok(())
        }
        WriteOp::PutCertificate {
            target,
            person_id,
            serial,
            not_after,
            access_end,
        } => super::certificates::put(
            conn,
            target,
            person_id,
            serial,
            *not_after,
            *access_end,
            now,
        ),
        WriteOp::RevokeCertificates { target, person_id } => {
            super::certificates::revoke(conn, target, person_id, now)
        }
        WriteOp::Entry(entry) => {
            conn.prepare_cached(
                "INSERT INTO journal (run_id, person_id, target, resource, op, outcome, message, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                entry.run_id,
                entry.person_id,
                entry.target,
                entry.resource.name(),
                entry.op.name(),
                entry.outcome.name(),
                entry.message,
                columns::timestamp(entry.at),
            ])
            .map_err(|err| match constraint(&err) {
                Some(Constraint::ForeignKey) => StateError::UnknownRun { id: entry.run_id },
                _ => err.into(),
            })?;
            Ok(())
        }
    }
}

fn pin_person(
    conn: &Connection,
    id: &str,
    username: &str,
    display_name: &str,
    profile: &str,
    now: &str,
) -> Result<(), StateError> {
    let pinned: Option<String> = conn
        .prepare_cached("SELECT username FROM persons WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?;
    match pinned {
        Some(pinned) if pinned != username => Err(StateError::UsernamePinned {
            id: id.to_string(),
            pinned,
            requested: username.to_string(),
        }),
        Some(_) => {
            conn.prepare_cached(
                "UPDATE persons SET display_name = ?2, profile = ?3, updated = ?4
                 WHERE id = ?1 AND (display_name IS NOT ?2 OR profile IS NOT ?3)",
            )?
            .execute(params![id, display_name, profile, now])?;
            Ok(())
        }
        None => {
            let holder: Option<String> = conn
                .prepare_cached("SELECT id FROM persons WHERE username = ?1")?
                .query_row([username], |row| row.get(0))
                .optional()?;
            if let Some(holder) = holder {
                return Err(StateError::UsernameTaken {
                    username: username.to_string(),
                    holder,
                    id: id.to_string(),
                });
            }
            conn.prepare_cached(
                "INSERT INTO persons (id, username, display_name, profile, withdrawn, created, updated)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5)",
            )?
            .execute(params![id, username, display_name, profile, now])?;
            Ok(())
        }
    }
}

fn put_account(
    conn: &Connection,
    target: &str,
    person_id: &str,
    account: &Account,
    remote_id: Option<&str>,
    now: &str,
) -> Result<(), StateError> {
    let result = conn
        .prepare_cached(
            "INSERT INTO accounts (target, person_id, username, given_name, family_name,
                 display_name, email, department, groups, ou, expires, enabled, remote_id, updated)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
             ON CONFLICT (target, person_id) DO UPDATE SET
                 username = excluded.username, given_name = excluded.given_name,
                 family_name = excluded.family_name, display_name = excluded.display_name,
                 email = excluded.email, department = excluded.department,
                 groups = excluded.groups, ou = excluded.ou, expires = excluded.expires,
                 enabled = excluded.enabled,
                 remote_id = coalesce(excluded.remote_id, accounts.remote_id),
                 updated = excluded.updated",
        )?
        .execute(params![
            target,
            person_id,
            account.username,
            account.given_name,
            account.family_name,
            account.display_name,
            account.email,
            account.department,
            columns::groups(&account.groups)?,
            account.ou,
            columns::date(account.expires),
            account.enabled,
            remote_id,
            now,
        ]);
    match result {
        Ok(_) => Ok(()),
        Err(err) => match constraint(&err) {
            Some(Constraint::ForeignKey) => Err(StateError::UnknownPerson {
                id: person_id.to_string(),
            }),
            Some(Constraint::Unique) => {
                let holder = holder(
                    conn,
                    "SELECT person_id FROM accounts WHERE target = ?1 AND username = ?2",
                    target,
                    &account.username,
                )?;
                Err(StateError::UsernameTaken {
                    username: account.username.clone(),
                    holder,
                    id: person_id.to_string(),
                })
            }
            _ => Err(err.into()),
        },
    }
}

fn put_peer(
    conn: &Connection,
    target: &str,
    person_id: &str,
    peer: &Peer,
    public_key: &str,
    adopted: bool,
    now: &str,
) -> Result<(), StateError> {
    let address = peer.address.to_string();
    // `adopted`: homebase never had the private key of this public key. An
    // update with the same key keeps the mark; a new key (rotated, so in the
    // bundle) clears it.
    let result = conn
        .prepare_cached(
            "INSERT INTO peers (target, person_id, address, public_key, preshared_key, expires,
                 adopted, updated)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (target, person_id) DO UPDATE SET
                 address = excluded.address, public_key = excluded.public_key,
                 preshared_key = excluded.preshared_key, expires = excluded.expires,
                 adopted = CASE WHEN peers.public_key = excluded.public_key
                     THEN max(peers.adopted, excluded.adopted) ELSE excluded.adopted END,
                 updated = excluded.updated",
        )?
        .execute(params![
            target,
            person_id,
            address,
            public_key,
            peer.preshared_key,
            columns::date(peer.expires),
            adopted,
            now,
        ]);
    match result {
        Ok(_) => Ok(()),
        Err(err) => match constraint(&err) {
            Some(Constraint::ForeignKey) => Err(StateError::UnknownPerson {
                id: person_id.to_string(),
            }),
            Some(Constraint::Unique) => {
                let holder = holder(
                    conn,
                    "SELECT person_id FROM peers WHERE target = ?1 AND address = ?2",
                    target,
                    &address,
                )?;
                Err(StateError::AddressTaken {
                    target: target.to_string(),
                    address,
                    holder,
                })
            }
            _ => Err(err.into()),
        },
    }
}

fn assign_device(
    conn: &Connection,
    target: &str,
    person_id: &str,
    device: &Device,
    now: &str,
) -> Result<(), StateError> {
    // The update only happens for the same holder: a device is never silently
    // taken from someone else.
    let changed = conn
        .prepare_cached(
            "INSERT INTO devices (target, asset_tag, serial, kind, model, person_id, assigned)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (target, asset_tag) DO UPDATE SET
                 serial = excluded.serial, kind = excluded.kind, model = excluded.model
             WHERE devices.person_id = excluded.person_id",
        )?
        .execute(params![
            target,
            device.asset_tag,
            device.serial,
            device.kind,
            device.model,
            person_id,
            now,
        ])
        .map_err(|err| unknown_person(err, person_id))?;
    if changed == 0 {
        let holder = holder(
            conn,
            "SELECT person_id FROM devices WHERE target = ?1 AND asset_tag = ?2",
            target,
            &device.asset_tag,
        )?;
        return Err(StateError::DeviceTaken {
            target: target.to_string(),
            asset_tag: device.asset_tag.clone(),
            holder,
        });
    }
    Ok(())
}

fn holder(conn: &Connection, sql: &str, target: &str, key: &str) -> Result<String, StateError> {
    let holder: Option<String> = conn
        .prepare_cached(sql)?
        .query_row([target, key], |row| row.get(0))
        .optional()?;
    Ok(holder.unwrap_or_else(|| "unknown".to_string()))
}

enum Constraint {
    ForeignKey,
    Unique,
}

fn constraint(err: &rusqlite::Error) -> Option<Constraint> {
    match err {
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.code == ErrorCode::ConstraintViolation =>
        {
            match failure.extended_code {
                rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => Some(Constraint::ForeignKey),
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY => Some(Constraint::Unique),
                _ => None,
            }
        }
        _ => None,
    }
}

fn unknown_person(err: rusqlite::Error, person_id: &str) -> StateError {
    match constraint(&err) {
        Some(Constraint::ForeignKey) => StateError::UnknownPerson {
            id: person_id.to_string(),
        },
        _ => err.into(),
    }
}
