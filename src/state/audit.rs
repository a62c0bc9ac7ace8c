//! The audit trail (docs/contract.md, "Audit"): who ran what, when, from which plan,
//! and the outcome of every action.

use chrono::{DateTime, Utc};
use rusqlite::{params, Row};

use crate::plan::{Op, Resource};

use super::columns::{self, corrupt};
use super::postgres::read as pg_read;
use super::store::Backend;
use super::{StateError, Store};

/// Who starts a run and with what; recorded by [`Store::begin_run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    pub user: String,
    pub host: String,
    /// `VARIABLE=value` of the CI job, if the run happens in one.
    pub ci_job: Option<String>,
    /// The command line as the user would retype it (no secrets are ever on it).
    pub command: String,
    pub plan_digest: Option<String>,
    pub started: DateTime<Utc>,
}

/// Environment variables naming the CI job, by CI system, first match wins.
const CI_JOB_VARS: [&str; 3] = ["CI_JOB_ID", "GITHUB_RUN_ID", "BUILD_TAG"];

impl RunInfo {
    /// From `$USER`/`$LOGNAME` (else the account of the process's uid), the
    /// host name and the CI variables.
    pub fn from_env(command: impl Into<String>, plan_digest: Option<String>) -> RunInfo {
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        RunInfo::from_vars(command, plan_digest, host, |name| std::env::var(name).ok())
    }

    /// Like [`RunInfo::from_env`], with the environment given.
    pub fn from_vars(
        command: impl Into<String>,
        plan_digest: Option<String>,
        host: String,
        var: impl Fn(&str) -> Option<String>,
    ) -> RunInfo {
        let set = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        RunInfo {
            user: set("USER")
                .or_else(|| set("LOGNAME"))
                .unwrap_or_else(account_name),
            host,
            ci_job: CI_JOB_VARS
                .iter()
                .find_map(|name| set(name).map(|value| format!("{name}={value}"))),
            command: command.into(),
            plan_digest,
            started: Utc::now(),
        }
    }
}

/// The account name of this process's uid: cron jobs and CI containers often
/// run without `$USER`, and "unknown" in the audit says nothing.
fn account_name() -> String {
    // SAFETY: getuid cannot fail and touches no memory of ours.
    let uid = unsafe { libc::getuid() };
    let mut buffer = vec![0u8; 4096];
    // SAFETY: an all-zero passwd is a valid value to be overwritten.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer refers to memory we own for the call's duration,
    // with the buffer's true length; the result is read only when `found`
    // says getpwuid_r filled `entry`.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &mut entry,
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            &mut found,
        )
    };
    if rc == 0 && !found.is_null() && !entry.pw_name.is_null() {
        // SAFETY: pw_name points into `buffer`, NUL-terminated by getpwuid_r.
        let name = unsafe { std::ffi::CStr::from_ptr(entry.pw_name) };
        return name.to_string_lossy().into_owned();
    }
    format!("uid {uid}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    Success,
    /// Some actions failed; the rest are done.
    Partial,
    Failed,
    /// Stopped by Ctrl-C or a signal.
    Interrupted,
}

impl RunOutcome {
    pub fn name(self) -> &'static str {
        match self {
            RunOutcome::Success => "success",
            RunOutcome::Partial => "partial",
            RunOutcome::Failed => "failed",
            RunOutcome::Interrupted => "interrupted",
        }
    }

    pub(super) fn parse(text: &str) -> Result<RunOutcome, StateError> {
        Ok(match text {
            "success" => RunOutcome::Success,
            "partial" => RunOutcome::Partial,
            "failed" => RunOutcome::Failed,
            "interrupted" => RunOutcome::Interrupted,
            _ => return Err(corrupt("run outcome", text, "unknown outcome")),
        })
    }
}

/// A run as `status --history` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub id: i64,
    pub info: RunInfo,
    /// `None` while running, or when the process died before finishing.
    pub finished: Option<DateTime<Utc>>,
    pub outcome: Option<RunOutcome>,
    /// As reported by the executor at the end.
    pub ok_count: u64,
    pub failed_count: u64,
    /// As found in the journal (also right for a run that never finished).
    pub journaled_ok: u64,
    pub journaled_failed: u64,
}

/// What an action was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceKind {
    Account,
    VpnPeer,
    Device,
    License,
    Bundle,
}

impl ResourceKind {
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::Account => "account",
            ResourceKind::VpnPeer => "vpn_peer",
            ResourceKind::Device => "device",
            ResourceKind::License => "license",
            ResourceKind::Bundle => "bundle",
        }
    }

    pub(super) fn parse(text: &str) -> Result<ResourceKind, StateError> {
        Ok(match text {
            "account" => ResourceKind::Account,
            "vpn_peer" => ResourceKind::VpnPeer,
            "device" => ResourceKind::Device,
            "license" => ResourceKind::License,
            "bundle" => ResourceKind::Bundle,
            _ => return Err(corrupt("resource kind", text, "unknown kind")),
        })
    }
}

impl From<&Resource> for ResourceKind {
    fn from(resource: &Resource) -> Self {
        match resource {
            Resource::Account(_) => ResourceKind::Account,
            Resource::VpnPeer(_) => ResourceKind::VpnPeer,
            Resource::Device(_) => ResourceKind::Device,
            Resource::License(_) => ResourceKind::License,
            Resource::Bundle(_) => ResourceKind::Bundle,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryOutcome {
    Ok,
    Failed,
}

impl EntryOutcome {
    pub fn name(self) -> &'static str {
        match self {
            EntryOutcome::Ok => "ok",
            EntryOutcome::Failed => "failed",
        }
    }

    pub(super) fn parse(text: &str) -> Result<EntryOutcome, StateError> {
        Ok(match text {
            "ok" => EntryOutcome::Ok,
            "failed" => EntryOutcome::Failed,
            _ => return Err(corrupt("journal outcome", text, "unknown outcome")),
        })
    }
}

/// One action's outcome. The message is for people: the server's reason for
/// a failure, never a key or password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub run_id: i64,
    pub person_id: Option<String>,
    pub target: String,
    pub resource: ResourceKind,
    pub op: Op,
    pub outcome: EntryOutcome,
    pub message: String,
    pub at: DateTime<Utc>,
}

impl Entry {
    /// An entry stamped now.
    pub fn new(
        run_id: i64,
        person_id: Option<&str>,
        target: &str,
        resource: ResourceKind,
        op: Op,
        outcome: EntryOutcome,
        message: impl Into<String>,
    ) -> Entry {
        Entry {
            run_id,
            person_id: person_id.map(str::to_string),
            target: target.to_string(),
            resource,
            op,
            outcome,
            message: message.into(),
            at: Utc::now(),
        }
    }
}

/// A journal entry as stored, in the order it was committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalRecord {
    pub id: i64,
    pub entry: Entry,
}

pub(super) fn parse_op(text: &str) -> Result<Op, StateError> {
    Ok(match text {
        "create" => Op::Create,
        "update" => Op::Update,
        "unchanged" => Op::Unchanged,
        "remove" => Op::Remove,
        _ => return Err(corrupt("journal op", text, "unknown op")),
    })
}

impl Store {
    /// Records the start of a run; its id goes into every [`Entry`].
    pub fn begin_run(&mut self, info: &RunInfo) -> Result<i64, StateError> {
        self.writable()?;
        let conn = match self.backend() {
            Backend::Sqlite(conn) => conn,
            Backend::Postgres(pg) => {
                let info = info.clone();
                return pg.call(move |c| pg_read::begin_run(c, &info));
            }
        };
        conn.prepare_cached(
            "INSERT INTO runs (user, host, ci_job, command, plan_digest, started)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            info.user,
            info.host,
            info.ci_job,
            info.command,
            info.plan_digest,
            columns::timestamp(info.started),
        ])?;
        Ok(conn.last_insert_rowid())
    }

    pub fn finish_run(
        &mut self,
        run_id: i64,
        outcome: RunOutcome,
        ok_count: u64,
        failed_count: u64,
    ) -> Result<(), StateError> {
        self.writable()?;
        let conn = match self.backend() {
            Backend::Sqlite(conn) => conn,
            Backend::Postgres(pg) => {
                return pg
                    .call(move |c| pg_read::finish_run(c, run_id, outcome, ok_count, failed_count))
            }
        };
        let changed = conn
            .prepare_cached(
                "UPDATE runs SET finished = ?2, outcome = ?3, ok_count = ?4, failed_count = ?5
                 WHERE id = ?1",
            )?
            .execute(params![
                run_id,
                columns::timestamp(Utc::now()),
                outcome.name(),
                ok_count,
                failed_count,
            ])?;
        if changed == 0 {
            return Err(StateError::UnknownRun { id: run_id });
        }
        Ok(())
    }

    /// The latest `limit` runs, newest first, with their journal counts.
    pub fn history(&self, limit: usize) -> Result<Vec<RunRecord>, StateError> {
        let conn = match self.backend() {
            Backend::Sqlite(conn) => conn,
            Backend::Postgres(pg) => return pg.call(move |c| pg_read::history(c, limit)),
        };
        let sql = format!("{RUN_SELECT} ORDER BY r.id DESC LIMIT ?1");
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query([i64::try_from(limit).unwrap_or(i64::MAX)])?;
        let mut runs = Vec::new();
        while let Some(row) = rows.next()? {
            runs.push(run_record(row)?);
        }
        Ok(runs)
    }

    pub fn run(&self, run_id: i64) -> Result<Option<RunRecord>, StateError> {
        let conn = match self.backend() {
            Backend::Sqlite(conn) => conn,
            Backend::Postgres(pg) => return pg.call(move |c| pg_read::run(c, run_id)),
        };
        let sql = format!("{RUN_SELECT} WHERE r.id = ?1");
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query([run_id])?;
        rows.next()?.map(run_record).transpose()
    }

    /// Everything journaled about one person, oldest first.
    pub fn journal_for(&self, person_id: &str) -> Result<Vec<JournalRecord>, StateError> {
        let conn = match self.backend() {
            Backend::Sqlite(conn) => conn,
            Backend::Postgres(pg) => {
                let id = person_id.to_string();
                return pg.call(move |c| pg_read::journal_for(c, &id));
            }
        };
        let mut stmt = conn.prepare_cached(
            "SELECT id, run_id, person_id, target, resource, op, outcome, message, at
             FROM journal WHERE person_id = ?1 ORDER BY id",
        )?;
        let mut rows = stmt.query([person_id])?;
        let mut records = Vec::new();
        while let Some(row) = rows.next()? {
            records.push(journal_record(row)?);
        }
        Ok(records)
    }
}

const RUN_SELECT: &str = "SELECT r.id, r.user, r.host, r.ci_job, r.command, r.plan_digest,
        r.started, r.finished, r.outcome, r.ok_count, r.failed_count,
        (SELECT count(*) FROM journal j WHERE j.run_id = r.id AND j.outcome = 'ok'),
        (SELECT count(*) FROM journal j WHERE j.run_id = r.id AND j.outcome = 'failed')
    FROM runs r";

fn run_record(row: &Row<'_>) -> Result<RunRecord, StateError> {
    let started: String = row.get(6)?;
    let finished: Option<String> = row.get(7)?;
    let outcome: Option<String> = row.get(8)?;
    Ok(RunRecord {
        id: row.get(0)?,
        info: RunInfo {
            user: row.get(1)?,
            host: row.get(2)?,
            ci_job: row.get(3)?,
            command: row.get(4)?,
            plan_digest: row.get(5)?,
            started: columns::parse_timestamp(&started)?,
        },
        finished: finished
            .as_deref()
            .map(columns::parse_timestamp)
            .transpose()?,
        outcome: outcome.as_deref().map(RunOutcome::parse).transpose()?,
        ok_count: row.get(9)?,
        failed_count: row.get(10)?,
        journaled_ok: row.get(11)?,
        journaled_failed: row.get(12)?,
    })
}

fn journal_record(row: &Row<'_>) -> Result<JournalRecord, StateError> {
    let resource: String = row.get(4)?;
    let op: String = row.get(5)?;
    let outcome: String = row.get(6)?;
    let at: String = row.get(8)?;
    Ok(JournalRecord {
        id: row.get(0)?,
        entry: Entry {
            run_id: row.get(1)?,
            person_id: row.get(2)?,
            target: row.get(3)?,
            resource: ResourceKind::parse(&resource)?,
            op: parse_op(&op)?,
            outcome: EntryOutcome::parse(&outcome)?,
            message: row.get(7)?,
            at: columns::parse_timestamp(&at)?,
        },
    })
}
