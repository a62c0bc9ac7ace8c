//! Every [`WriteOp`] on PostgreSQL, with the same effects and the same typed
//! refusals as on SQLite (`state/write.rs`).

use postgres::error::SqlState;
use postgres::Transaction;

use crate::plan::{Account, Device, Peer};

use super::super::columns;
use super::super::write::WriteOp;
use super::super::StateError;
use super::connect::{describe, Stmts};

type Tx<'a, 'b> = &'a mut Transaction<'b>;

/// Applies one operation inside the caller's transaction.
pub fn apply(tx: Tx<'_, '_>, stmts: &mut Stmts, op: &WriteOp, now: &str) -> Result<(), StateError> {
    match op {
        WriteOp::PinPerson {
            id,
            username,
            display_name,
            profile,
        } => pin_person(tx, stmts, id, username, display_name, profile, now),
        WriteOp::SetWithdrawn { id, withdrawn } => {
            let changed = stmts
                .execute(
                    tx,
                    "UPDATE persons SET withdrawn = $2, updated = $3 WHERE id = $1",
                    &[id, withdrawn, &now],
                )
                .map_err(err)?;
            if changed == 0 {
                return Err(StateError::UnknownPerson { id: id.clone() });
            }
            Ok(())
        }
        WriteOp::SetOffboarded { id, offboarded } => {
            let changed = stmts
                .execute(
                    tx,
                    "UPDATE persons SET offboarded = $2, updated = $3 WHERE id = $1",
                    &[id, offboarded, &now],
                )
                .map_err(err)?;
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
        } => put_account(
            tx,
            stmts,
            target,
            person_id,
            account,
            remote_id.as_deref(),
            now,
        ),
        WriteOp::RemoveAccount { target, person_id } => {
            stmts
                .execute(
                    tx,
                    "DELETE FROM accounts WHERE target = $1 AND person_id = $2",
                    &[target, person_id],
                )
                .map_err(err)?;
            Ok(())
        }
        WriteOp::PutPeer {
            target,
            person_id,
            peer,
            public_key,
        } => put_peer(tx, stmts, target, person_id, peer, public_key, false, now),
        WriteOp::AdoptPeer {
            target,
            person_id,
            peer,
            public_key,
        } => put_peer(tx, stmts, target, person_id, peer, public_key, true, now),
        WriteOp::UpdatePeer {
            target,
            person_id,
            peer,
        } => {
            let address = peer.address.to_string();
            let result = savepoint(tx, stmts.careful, |tx| {
                stmts.execute(
                    tx,
                    "UPDATE peers SET address = $3, preshared_key = $4, expires = $5, updated = $6
                     WHERE target = $1 AND person_id = $2",
                    &[
                        target,
                        person_id,
                        &address,
                        &peer.preshared_key,
                        &columns::date(peer.expires),
                        &now,
                    ],
                )
            });
            match result {
                Ok(0) => Err(StateError::UnknownPerson {
                    id: person_id.clone(),
                }),
                Ok(_) => Ok(()),
                Err(e) if is(&e, &SqlState::UNIQUE_VIOLATION) => Err(StateError::AddressTaken {
                    target: target.clone(),
                    address,
                    holder: "another person".to_string(),
                }),
                Err(e) => Err(err(e)),
            }
        }
        WriteOp::RemovePeer { target, person_id } => {
            stmts
                .execute(
                    tx,
                    "DELETE FROM peers WHERE target = $1 AND person_id = $2",
                    &[target, person_id],
                )
                .map_err(err)?;
            Ok(())
        }
        WriteOp::AssignDevice {
            target,
            person_id,
            device,
        } => assign_device(tx, stmts, target, person_id, device, now),
        WriteOp::ReleaseDevice { target, asset_tag } => {
            stmts
                .execute(
                    tx,
                    "DELETE FROM devices WHERE target = $1 AND asset_tag = $2",
                    &[target, asset_tag],
                )
                .map_err(err)?;
            Ok(())
        }
        WriteOp::AddSeat { pool, person_id } => {
            let result = savepoint(tx, stmts.careful, |tx| {
                stmts.execute(
                    tx,
                    "INSERT INTO seats (pool, person_id, added) VALUES ($1, $2, $3)
                     ON CONFLICT (pool, person_id) DO NOTHING",
                    &[pool, person_id, &now],
                )
            });
            result.map(|_| ()).map_err(|e| unknown_person(e, person_id))
        }
        WriteOp::RemoveSeat { pool, person_id } => {
            stmts
                .execute(
                    tx,
                    "DELETE FROM seats WHERE pool = $1 AND person_id = $2",
                    &[pool, person_id],
                )
                .map_err(err)?;
            Ok(())
        }
        WriteOp::SetBundle {
            person_id,
            fingerprint,
        } => {
            let result = savepoint(tx, stmts.careful, |tx| {
                stmts.execute(
                    tx,
                    "INSERT INTO bundles (person_id, fingerprint, updated, stale) VALUES ($1, $2, $3, false)
                     ON CONFLICT (person_id) DO UPDATE SET
                         fingerprint = excluded.fingerprint, updated = excluded.updated, stale = false",
                    &[person_id, fingerprint, &now],
                )
            });
            result.map(|_| ()).map_err(|e| unknown_person(e, person_id))
        }
        WriteOp::MarkBundleStale { person_id } => {
            stmts
                .execute(
                    tx,
                    "UPDATE bundles SET stale = true, updated = $2 WHERE person_id = $1",
                    &[person_id, &now],
                )
                .map_err(err)?;
            Ok(())
        }
        WriteOp::PutCertificate {
            target,
            person_id,
            serial,
            not_after,
            access_end,
        } => {
            stmts
                .execute(
                    tx,
                    "UPDATE certificates SET revoked = $3, superseded = true
                     WHERE target = $1 AND person_id = $2 AND revoked IS NULL AND serial != $4",
                    &[target, person_id, &now, serial],
                )
                .map_err(err)?;
            let result = savepoint(tx, stmts.careful, |tx| {
                stmts.execute(
                    tx,
                    "INSERT INTO certificates (target, serial, person_id, issued, not_after, access_end)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (target, serial) DO NOTHING",
                    &[
                        target,
                        serial,
                        person_id,
                        &now,
                        &columns::timestamp(*not_after),
                        &columns::date(*access_end),
                    ],
                )
            });
            result.map(|_| ()).map_err(|e| unknown_person(e, person_id))
        }
        WriteOp::RevokeCertificates { target, person_id } => {
            stmts
                .execute(
                    tx,
                    "UPDATE certificates SET revoked = $3
                     WHERE target = $1 AND person_id = $2 AND revoked IS NULL",
                    &[target, person_id, &now],
                )
                .map_err(err)?;
            Ok(())
        }
        WriteOp::Entry(entry) => {
            let result = savepoint(tx, stmts.careful, |tx| {
                stmts.execute(
                    tx,
                    "INSERT INTO journal (run_id, person_id, target, resource, op, outcome, message, at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[
                        &entry.run_id,
                        &entry.person_id,
                        &entry.target,
                        &entry.resource.name(),
                        &entry.op.name(),
                        &entry.outcome.name(),
                        &entry.message,
                        &columns::timestamp(entry.at),
                    ],
                )
            });
            match result {
                Ok(_) => Ok(()),
                Err(e) if is(&e, &SqlState::FOREIGN_KEY_VIOLATION) => {
                    Err(StateError::UnknownRun { id: entry.run_id })
                }
                Err(e) => Err(err(e)),
            }
        }
    }
}

/// A statement that may fail on a constraint, in a savepoint of its own:
/// PostgreSQL aborts the whole transaction on an error, SQLite only the
/// statement; with the savepoint the callers' transactions go on alike.
/// In a batch that is expected to succeed (`careful` off) the savepoints
/// are skipped: a failure there redoes the batch carefully.
fn savepoint<T>(
    tx: Tx<'_, '_>,
    careful: bool,
    f: impl FnOnce(&mut Transaction<'_>) -> Result<T, postgres::Error>,
) -> Result<T, postgres::Error> {
    if !careful {
        return f(tx);
    }
    let mut sp = tx.transaction()?;
    let value = f(&mut sp)?;
    sp.commit()?;
    Ok(value)
}

fn pin_person(
    tx: Tx<'_, '_>,
    stmts: &mut Stmts,
    id: &str,
    username: &str,
    display_name: &str,
    profile: &str,
    now: &str,
) -> Result<(), StateError> {
    let pinned = stmts
        .query(tx, "SELECT username FROM persons WHERE id = $1", &[&id])
        .map_err(err)?;
    match pinned.first().map(|r| r.get::<_, String>(0)) {
        Some(pinned) if pinned != username => Err(StateError::UsernamePinned {
            id: id.to_string(),
            pinned,
            requested: username.to_string(),
        }),
        Some(_) => {
            stmts
                .execute(
                    tx,
                    "UPDATE persons SET display_name = $2, profile = $3, updated = $4
                     WHERE id = $1 AND (display_name IS DISTINCT FROM $2 OR profile IS DISTINCT FROM $3)",
                    &[&id, &display_name, &profile, &now],
                )
                .map_err(err)?;
            Ok(())
        }
        None => {
            let holder = stmts
                .query(
                    tx,
                    "SELECT id FROM persons WHERE lower(username) = lower($1)",
                    &[&username],
                )
                .map_err(err)?;
            if let Some(row) = holder.first() {
                return Err(StateError::UsernameTaken {
                    username: username.to_string(),
                    holder: row.get(0),
                    id: id.to_string(),
                });
            }
            stmts
                .execute(
                    tx,
                    "INSERT INTO persons (id, username, display_name, profile, withdrawn, created, updated)
                     VALUES ($1, $2, $3, $4, false, $5, $5)",
                    &[&id, &username, &display_name, &profile, &now],
                )
                .map_err(err)?;
            Ok(())
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn put_account(
    tx: Tx<'_, '_>,
    stmts: &mut Stmts,
    target: &str,
    person_id: &str,
    account: &Account,
    remote_id: Option<&str>,
    now: &str,
) -> Result<(), StateError> {
    let groups = columns::groups(&account.groups)?;
    let expires = columns::date(account.expires);
    let result = savepoint(tx, stmts.careful, |tx| {
        stmts.execute(
            tx,
            "INSERT INTO accounts (target, person_id, username, given_name, family_name,
                 display_name, email, department, groups, ou, expires, enabled, remote_id, updated)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (target, person_id) DO UPDATE SET
                 username = excluded.username, given_name = excluded.given_name,
                 family_name = excluded.family_name, display_name = excluded.display_name,
                 email = excluded.email, department = excluded.department,
                 groups = excluded.groups, ou = excluded.ou, expires = excluded.expires,
                 enabled = excluded.enabled,
                 remote_id = coalesce(excluded.remote_id, accounts.remote_id),
                 updated = excluded.updated",
            &[
                &target,
                &person_id,
                &account.username,
                &account.given_name,
                &account.family_name,
                &account.display_name,
                &account.email,
                &account.department,
                &groups,
                &account.ou,
                &expires,
                &account.enabled,
                &remote_id,
                &now,
            ],
        )
    });
    match result {
        Ok(_) => Ok(()),
        Err(e) if is(&e, &SqlState::FOREIGN_KEY_VIOLATION) => Err(StateError::UnknownPerson {
            id: person_id.to_string(),
        }),
        Err(e) if is(&e, &SqlState::UNIQUE_VIOLATION) => {
            let holder = holder(
                tx,
                stmts,
                "SELECT person_id FROM accounts WHERE target = $1 AND username = $2",
                target,
                &account.username,
            )?;
            Err(StateError::UsernameTaken {
                username: account.username.clone(),
                holder,
                id: person_id.to_string(),
            })
        }
        Err(e) => Err(err(e)),
    }
}

#[allow(clippy::too_many_arguments)]
fn put_peer(
    tx: Tx<'_, '_>,
    stmts: &mut Stmts,
    target: &str,
    person_id: &str,
    peer: &Peer,
    public_key: &str,
    adopted: bool,
    now: &str,
) -> Result<(), StateError> {
    let address = peer.address.to_string();
    let expires = columns::date(peer.expires);
    let result = savepoint(tx, stmts.careful, |tx| {
        stmts.execute(
            tx,
            "INSERT INTO peers (target, person_id, address, public_key, preshared_key, expires,
                 adopted, updated)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (target, person_id) DO UPDATE SET
                 address = excluded.address, public_key = excluded.public_key,
                 preshared_key = excluded.preshared_key, expires = excluded.expires,
                 adopted = CASE WHEN peers.public_key = excluded.public_key
                     THEN peers.adopted OR excluded.adopted ELSE excluded.adopted END,
                 updated = excluded.updated",
            &[
                &target,
                &person_id,
                &address,
                &public_key,
                &peer.preshared_key,
                &expires,
                &adopted,
                &now,
            ],
        )
    });
    match result {
        Ok(_) => Ok(()),
        Err(e) if is(&e, &SqlState::FOREIGN_KEY_VIOLATION) => Err(StateError::UnknownPerson {
            id: person_id.to_string(),
        }),
        Err(e) if is(&e, &SqlState::UNIQUE_VIOLATION) => {
            let holder = holder(
                tx,
                stmts,
                "SELECT person_id FROM peers WHERE target = $1 AND address = $2",
                target,
                &address,
            )?;
            Err(StateError::AddressTaken {
                target: target.to_string(),
                address,
                holder,
            })
        }
        Err(e) => Err(err(e)),
    }
}

fn assign_device(
    tx: Tx<'_, '_>,
    stmts: &mut Stmts,
    target: &str,
    person_id: &str,
    device: &Device,
    now: &str,
) -> Result<(), StateError> {
    let result = savepoint(tx, stmts.careful, |tx| {
        stmts.execute(
            tx,
            "INSERT INTO devices (target, asset_tag, serial, kind, model, person_id, assigned)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (target, asset_tag) DO UPDATE SET
                 serial = excluded.serial, kind = excluded.kind, model = excluded.model
             WHERE devices.person_id = excluded.person_id",
            &[
                &target,
                &device.asset_tag,
                &device.serial,
                &device.kind,
                &device.model,
                &person_id,
                &now,
            ],
        )
    });
    let changed = result.map_err(|e| unknown_person(e, person_id))?;
    if changed == 0 {
        let holder = holder(
            tx,
            stmts,
            "SELECT person_id FROM devices WHERE target = $1 AND asset_tag = $2",
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

fn holder(
    tx: Tx<'_, '_>,
    stmts: &mut Stmts,
    sql: &'static str,
    target: &str,
    key: &str,
) -> Result<String, StateError> {
    let rows = stmts.query(tx, sql, &[&target, &key]).map_err(err)?;
    Ok(rows
        .first()
        .map_or_else(|| "unknown".to_string(), |r| r.get(0)))
}

fn is(e: &postgres::Error, state: &SqlState) -> bool {
    e.code() == Some(state)
}

fn unknown_person(e: postgres::Error, person_id: &str) -> StateError {
    if is(&e, &SqlState::FOREIGN_KEY_VIOLATION) {
        StateError::UnknownPerson {
            id: person_id.to_string(),
        }
    } else {
        err(e)
    }
}

pub fn err(e: postgres::Error) -> StateError {
    StateError::Commit(describe(&e))
}
