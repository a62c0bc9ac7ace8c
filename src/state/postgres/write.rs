//! Every [`WriteOp`] on PostgreSQL, with the same effects and the same typed
//! refusals as on SQLite (`state/write.rs`): [`apply`], one statement after
//! the other, each constraint-checked one in a savepoint of its own.
//!
//! [`steps`] gives the same operation as statements that need no answer
//! before the next is sent, for the journal's pipelined commit
//! (`pipeline.rs`); whatever they cannot decide alone they check afterwards
//! ([`Expect`]), and a batch that fails a check is redone with [`apply`].

use postgres::error::SqlState;
use postgres::types::ToSql;

use crate::plan::{Account, Device, Peer};

use super::super::columns;
use super::super::write::WriteOp;
use super::super::StateError;
use super::connect::{describe, Db};

const SET_WITHDRAWN: &str = "UPDATE persons SET withdrawn = $2, updated = $3 WHERE id = $1";
const SET_OFFBOARDED: &str = "UPDATE persons SET offboarded = $2, updated = $3 WHERE id = $1";
const REMOVE_ACCOUNT: &str = "DELETE FROM accounts WHERE target = $1 AND person_id = $2";
const UPDATE_PEER: &str =
    "UPDATE peers SET address = $3, preshared_key = $4, expires = $5, updated = $6
     WHERE target = $1 AND person_id = $2";
const REMOVE_PEER: &str = "DELETE FROM peers WHERE target = $1 AND person_id = $2";
const RELEASE_DEVICE: &str = "DELETE FROM devices WHERE target = $1 AND asset_tag = $2";
const ADD_SEAT: &str = "INSERT INTO seats (pool, person_id, added) VALUES ($1, $2, $3)
     ON CONFLICT (pool, person_id) DO NOTHING";
const REMOVE_SEAT: &str = "DELETE FROM seats WHERE pool = $1 AND person_id = $2";
const SET_BUNDLE: &str =
    "INSERT INTO bundles (person_id, fingerprint, updated, stale) VALUES ($1, $2, $3, false)
     ON CONFLICT (person_id) DO UPDATE SET
         fingerprint = excluded.fingerprint, updated = excluded.updated, stale = false";
const MARK_BUNDLE_STALE: &str =
    "UPDATE bundles SET stale = true, updated = $2 WHERE person_id = $1";
const SUPERSEDE_CERTIFICATES: &str = "UPDATE certificates SET revoked = $3, superseded = true
     WHERE target = $1 AND person_id = $2 AND revoked IS NULL AND serial != $4";
const PUT_CERTIFICATE: &str =
    "INSERT INTO certificates (target, serial, person_id, issued, not_after, access_end)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (target, serial) DO NOTHING";
const REVOKE_CERTIFICATES: &str = "UPDATE certificates SET revoked = $3
     WHERE target = $1 AND person_id = $2 AND revoked IS NULL";
const ENTRY: &str =
    "INSERT INTO journal (run_id, person_id, target, resource, op, outcome, message, at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const PINNED: &str = "SELECT username FROM persons WHERE id = $1";
const PINNED_OTHERWISE: &str = "SELECT username FROM persons WHERE id = $1 AND username != $2";
const REPIN: &str = "UPDATE persons SET display_name = $2, profile = $3, updated = $4
     WHERE id = $1 AND (display_name IS DISTINCT FROM $2 OR profile IS DISTINCT FROM $3)";
const NEW_PERSON: &str =
    "INSERT INTO persons (id, username, display_name, profile, withdrawn, created, updated)
     VALUES ($1, $2, $3, $4, false, $5, $5)";
/// `PinPerson` without a look first: inserts, or refreshes name and profile
/// where they differ; [`PINNED_OTHERWISE`] before it catches a username
/// pinned differently, the unique index one another person holds.
const PIN: &str =
    "INSERT INTO persons (id, username, display_name, profile, withdrawn, created, updated)
     VALUES ($1, $2, $3, $4, false, $5, $5)
     ON CONFLICT (id) DO UPDATE SET
         display_name = excluded.display_name, profile = excluded.profile,
         updated = excluded.updated
     WHERE persons.username = excluded.username
         AND (persons.display_name IS DISTINCT FROM excluded.display_name
             OR persons.profile IS DISTINCT FROM excluded.profile)";
const PUT_ACCOUNT: &str =
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
         updated = excluded.updated";
const PUT_PEER: &str =
    "INSERT INTO peers (target, person_id, address, public_key, preshared_key, expires,
         adopted, updated)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (target, person_id) DO UPDATE SET
         address = excluded.address, public_key = excluded.public_key,
         preshared_key = excluded.preshared_key, expires = excluded.expires,
         adopted = CASE WHEN peers.public_key = excluded.public_key
             THEN peers.adopted OR excluded.adopted ELSE excluded.adopted END,
         updated = excluded.updated";
const ASSIGN_DEVICE: &str =
    "INSERT INTO devices (target, asset_tag, serial, kind, model, person_id, assigned)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (target, asset_tag) DO UPDATE SET
         serial = excluded.serial, kind = excluded.kind, model = excluded.model
     WHERE devices.person_id = excluded.person_id";

/// Applies one operation inside the caller's transaction.
pub fn apply(db: &mut impl Db, op: &WriteOp, now: &str) -> Result<(), StateError> {
    match op {
        WriteOp::PinPerson {
            id,
            username,
            display_name,
            profile,
        } => pin_person(db, id, username, display_name, profile, now),
        WriteOp::SetWithdrawn { id, withdrawn } => {
            let changed = db
                .execute(SET_WITHDRAWN, &[id, withdrawn, &now])
                .map_err(err)?;
            if changed == 0 {
                return Err(StateError::UnknownPerson { id: id.clone() });
            }
            Ok(())
        }
        WriteOp::SetOffboarded { id, offboarded } => {
            let changed = db
                .execute(SET_OFFBOARDED, &[id, offboarded, &now])
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
        } => put_account(db, target, person_id, account, remote_id.as_deref(), now),
        WriteOp::RemoveAccount { target, person_id } => {
            db.execute(REMOVE_ACCOUNT, &[target, person_id])
                .map_err(err)?;
            Ok(())
        }
        WriteOp::PutPeer {
            target,
            person_id,
            peer,
            public_key,
        } => put_peer(db, target, person_id, peer, public_key, false, now),
        WriteOp::AdoptPeer {
            target,
            person_id,
            peer,
            public_key,
        } => put_peer(db, target, person_id, peer, public_key, true, now),
        WriteOp::UpdatePeer {
            target,
            person_id,
            peer,
        } => {
            let address = peer.address.to_string();
            let expires = columns::date(peer.expires);
            let result = savepoint(db, |db| {
                db.execute(
                    UPDATE_PEER,
                    &[
                        target,
                        person_id,
                        &address,
                        &peer.preshared_key,
                        &expires,
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
            db.execute(REMOVE_PEER, &[target, person_id]).map_err(err)?;
            Ok(())
        }
        WriteOp::AssignDevice {
            target,
            person_id,
            device,
        } => assign_device(db, target, person_id, device, now),
        WriteOp::ReleaseDevice { target, asset_tag } => {
            db.execute(RELEASE_DEVICE, &[target, asset_tag])
                .map_err(err)?;
            Ok(())
        }
        WriteOp::AddSeat { pool, person_id } => {
            let result = savepoint(db, |db| db.execute(ADD_SEAT, &[pool, person_id, &now]));
            result.map(|_| ()).map_err(|e| unknown_person(e, person_id))
        }
        WriteOp::RemoveSeat { pool, person_id } => {
            db.execute(REMOVE_SEAT, &[pool, person_id]).map_err(err)?;
            Ok(())
        }
        WriteOp::SetBundle {
            person_id,
            fingerprint,
        } => {
            let result = savepoint(db, |db| {
                db.execute(SET_BUNDLE, &[person_id, fingerprint, &now])
            });
            result.map(|_| ()).map_err(|e| unknown_person(e, person_id))
        }
        WriteOp::MarkBundleStale { person_id } => {
            db.execute(MARK_BUNDLE_STALE, &[person_id, &now])
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
            db.execute(SUPERSEDE_CERTIFICATES, &[target, person_id, &now, serial])
                .map_err(err)?;
            let not_after = columns::timestamp(*not_after);
            let access_end = columns::date(*access_end);
            let result = savepoint(db, |db| {
                db.execute(
                    PUT_CERTIFICATE,
                    &[target, serial, person_id, &now, &not_after, &access_end],
                )
            });
            result.map(|_| ()).map_err(|e| unknown_person(e, person_id))
        }
        WriteOp::RevokeCertificates { target, person_id } => {
            db.execute(REVOKE_CERTIFICATES, &[target, person_id, &now])
                .map_err(err)?;
            Ok(())
        }
        WriteOp::Entry(entry) => {
            let at = columns::timestamp(entry.at);
            let result = savepoint(db, |db| {
                db.execute(
                    ENTRY,
                    &[
                        &entry.run_id,
                        &entry.person_id,
                        &entry.target,
                        &entry.resource.name(),
                        &entry.op.name(),
                        &entry.outcome.name(),
                        &entry.message,
                        &at,
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

/// A parameter the pipelined statement owns (it outlives the operation's
/// borrow while the batch is in flight).
pub type Param = Box<dyn ToSql + Sync + Send>;

/// What a pipelined statement must have done for the batch to stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Anything (an error still fails the batch).
    Any,
    /// At least one row changed: none means the operation is refused.
    Changed,
    /// A query that finds nothing: a row means the operation is refused.
    Nothing,
}

/// One statement of an operation, for the pipeline.
pub struct Step {
    pub sql: &'static str,
    pub params: Vec<Param>,
    pub expect: Expect,
}

fn step(sql: &'static str, expect: Expect, params: Vec<Param>) -> Step {
    Step {
        sql,
        params,
        expect,
    }
}

fn text(value: &str) -> Param {
    Box::new(value.to_string())
}

/// The operation as statements that need no answer before the next one is
/// sent. Where [`apply`] would refuse the operation, one of them fails or
/// misses its [`Expect`]; nothing here says why — [`apply`] does, when the
/// batch is redone. An `Err` is an operation that cannot even be encoded
/// (the same `apply` refuses it).
pub fn steps(op: &WriteOp, now: &str) -> Result<Vec<Step>, StateError> {
    use Expect::{Any, Changed, Nothing};
    let now = || text(now);
    Ok(match op {
        WriteOp::PinPerson {
            id,
            username,
            display_name,
            profile,
        } => vec![
            step(PINNED_OTHERWISE, Nothing, vec![text(id), text(username)]),
            step(
                PIN,
                Any,
                vec![
                    text(id),
                    text(username),
                    text(display_name),
                    text(profile),
                    now(),
                ],
            ),
        ],
        WriteOp::SetWithdrawn { id, withdrawn } => vec![step(
            SET_WITHDRAWN,
            Changed,
            vec![text(id), Box::new(*withdrawn), now()],
        )],
        WriteOp::SetOffboarded { id, offboarded } => vec![step(
            SET_OFFBOARDED,
            Changed,
            vec![text(id), Box::new(*offboarded), now()],
        )],
        WriteOp::PutAccount {
            target,
            person_id,
            account,
            remote_id,
        } => vec![step(
            PUT_ACCOUNT,
            Any,
            vec![
                text(target),
                text(person_id),
                text(&account.username),
                Box::new(account.given_name.clone()),
                Box::new(account.family_name.clone()),
                Box::new(account.display_name.clone()),
                Box::new(account.email.clone()),
                Box::new(account.department.clone()),
                Box::new(columns::groups(&account.groups)?),
                Box::new(account.ou.clone()),
                Box::new(columns::date(account.expires)),
                Box::new(account.enabled),
                Box::new(remote_id.clone()),
                now(),
            ],
        )],
        WriteOp::RemoveAccount { target, person_id } => vec![step(
            REMOVE_ACCOUNT,
            Any,
            vec![text(target), text(person_id)],
        )],
        WriteOp::PutPeer {
            target,
            person_id,
            peer,
            public_key,
        }
        | WriteOp::AdoptPeer {
            target,
            person_id,
            peer,
            public_key,
        } => vec![step(
            PUT_PEER,
            Any,
            vec![
                text(target),
                text(person_id),
                Box::new(peer.address.to_string()),
                text(public_key),
                Box::new(peer.preshared_key),
                Box::new(columns::date(peer.expires)),
                Box::new(matches!(op, WriteOp::AdoptPeer { .. })),
                now(),
            ],
        )],
        WriteOp::UpdatePeer {
            target,
            person_id,
            peer,
        } => vec![step(
            UPDATE_PEER,
            Changed,
            vec![
                text(target),
                text(person_id),
                Box::new(peer.address.to_string()),
                Box::new(peer.preshared_key),
                Box::new(columns::date(peer.expires)),
                now(),
            ],
        )],
        WriteOp::RemovePeer { target, person_id } => {
            vec![step(REMOVE_PEER, Any, vec![text(target), text(person_id)])]
        }
        WriteOp::AssignDevice {
            target,
            person_id,
            device,
        } => vec![step(
            ASSIGN_DEVICE,
            Changed,
            vec![
                text(target),
                text(&device.asset_tag),
                Box::new(device.serial.clone()),
                Box::new(device.kind.clone()),
                Box::new(device.model.clone()),
                text(person_id),
                now(),
            ],
        )],
        WriteOp::ReleaseDevice { target, asset_tag } => vec![step(
            RELEASE_DEVICE,
            Any,
            vec![text(target), text(asset_tag)],
        )],
        WriteOp::AddSeat { pool, person_id } => vec![step(
            ADD_SEAT,
            Any,
            vec![text(pool), text(person_id), now()],
        )],
        WriteOp::RemoveSeat { pool, person_id } => {
            vec![step(REMOVE_SEAT, Any, vec![text(pool), text(person_id)])]
        }
        WriteOp::SetBundle {
            person_id,
            fingerprint,
        } => vec![step(
            SET_BUNDLE,
            Any,
            vec![text(person_id), text(fingerprint), now()],
        )],
        WriteOp::MarkBundleStale { person_id } => {
            vec![step(MARK_BUNDLE_STALE, Any, vec![text(person_id), now()])]
        }
        WriteOp::PutCertificate {
            target,
            person_id,
            serial,
            not_after,
            access_end,
        } => vec![
            step(
                SUPERSEDE_CERTIFICATES,
                Any,
                vec![text(target), text(person_id), now(), text(serial)],
            ),
            step(
                PUT_CERTIFICATE,
                Any,
                vec![
                    text(target),
                    text(serial),
                    text(person_id),
                    now(),
                    Box::new(columns::timestamp(*not_after)),
                    Box::new(columns::date(*access_end)),
                ],
            ),
        ],
        WriteOp::RevokeCertificates { target, person_id } => vec![step(
            REVOKE_CERTIFICATES,
            Any,
            vec![text(target), text(person_id), now()],
        )],
        WriteOp::Entry(entry) => vec![step(
            ENTRY,
            Any,
            vec![
                Box::new(entry.run_id),
                Box::new(entry.person_id.clone()),
                text(&entry.target),
                text(entry.resource.name()),
                text(entry.op.name()),
                text(entry.outcome.name()),
                text(&entry.message),
                Box::new(columns::timestamp(entry.at)),
            ],
        )],
    })
}

/// A statement that may fail on a constraint, in a savepoint of its own:
/// PostgreSQL aborts the whole transaction on an error, SQLite only the
/// statement; with the savepoint the callers' transactions go on alike.
fn savepoint<D: Db, T>(
    db: &mut D,
    f: impl FnOnce(&mut D) -> Result<T, postgres::Error>,
) -> Result<T, postgres::Error> {
    db.command("SAVEPOINT homebase_write")?;
    match f(db) {
        Ok(value) => {
            db.command("RELEASE SAVEPOINT homebase_write")?;
            Ok(value)
        }
        Err(e) => {
            db.command("ROLLBACK TO SAVEPOINT homebase_write; RELEASE SAVEPOINT homebase_write")?;
            Err(e)
        }
    }
}

fn pin_person(
    db: &mut impl Db,
    id: &str,
    username: &str,
    display_name: &str,
    profile: &str,
    now: &str,
) -> Result<(), StateError> {
    let pinned = db.query(PINNED, &[&id]).map_err(err)?;
    match pinned.first().map(|r| r.get::<_, String>(0)) {
        Some(pinned) if pinned != username => Err(StateError::UsernamePinned {
            id: id.to_string(),
            pinned,
            requested: username.to_string(),
        }),
        Some(_) => {
            db.execute(REPIN, &[&id, &display_name, &profile, &now])
                .map_err(err)?;
            Ok(())
        }
        None => {
            let holder = db
                .query(
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
            db.execute(NEW_PERSON, &[&id, &username, &display_name, &profile, &now])
                .map_err(err)?;
            Ok(())
        }
    }
}

fn put_account(
    db: &mut impl Db,
    target: &str,
    person_id: &str,
    account: &Account,
    remote_id: Option<&str>,
    now: &str,
) -> Result<(), StateError> {
    let groups = columns::groups(&account.groups)?;
    let expires = columns::date(account.expires);
    let result = savepoint(db, |db| {
        db.execute(
            PUT_ACCOUNT,
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
                db,
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

fn put_peer(
    db: &mut impl Db,
    target: &str,
    person_id: &str,
    peer: &Peer,
    public_key: &str,
    adopted: bool,
    now: &str,
) -> Result<(), StateError> {
    let address = peer.address.to_string();
    let expires = columns::date(peer.expires);
    let result = savepoint(db, |db| {
        db.execute(
            PUT_PEER,
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
                db,
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
    db: &mut impl Db,
    target: &str,
    person_id: &str,
    device: &Device,
    now: &str,
) -> Result<(), StateError> {
    let result = savepoint(db, |db| {
        db.execute(
            ASSIGN_DEVICE,
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
            db,
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
    db: &mut impl Db,
    sql: &'static str,
    target: &str,
    key: &str,
) -> Result<String, StateError> {
    let rows = db.query(sql, &[&target, &key]).map_err(err)?;
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
