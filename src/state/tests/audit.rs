use crate::plan::Op;
use crate::state::{Entry, EntryOutcome, ResourceKind, RunInfo, RunOutcome, StateError, WriteOp};

use super::{run_info, store_with_person, temp_db};

#[test]
fn run_info_comes_from_the_environment() {
    let info = run_info();
    assert_eq!(info.user, "admin");
    assert_eq!(info.host, "ci-runner-1");
    assert_eq!(info.ci_job.as_deref(), Some("CI_JOB_ID=4711"));

    let info = RunInfo::from_vars("homebase apply", None, "h".into(), |name| match name {
        "USER" => Some(String::new()),
        "LOGNAME" => Some("bob".into()),
        "GITHUB_RUN_ID" => Some("99".into()),
        _ => None,
    });
    assert_eq!(info.user, "bob");
    assert_eq!(info.ci_job.as_deref(), Some("GITHUB_RUN_ID=99"));

    // Without $USER and $LOGNAME: the account of the uid (cron, CI containers).
    let info = RunInfo::from_vars("homebase apply", None, "h".into(), |_| None);
    let id = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    assert_eq!(info.user, String::from_utf8_lossy(&id.stdout).trim());
    assert_eq!(info.ci_job, None);
}

#[test]
fn runs_and_their_journal_make_the_history() {
    let (_dir, db) = temp_db();
    let mut store = store_with_person(&db);
    let first = store.begin_run(&run_info()).unwrap();
    let entry = |run, outcome, message: &str| {
        WriteOp::Entry(Entry::new(
            run,
            Some("P1"),
            "directory",
            ResourceKind::Account,
            Op::Create,
            outcome,
            message,
        ))
    };
    store
        .write_all(&[
            entry(first, EntryOutcome::Ok, "created"),
            entry(first, EntryOutcome::Failed, "server said 409 Conflict"),
        ])
        .unwrap();
    store.finish_run(first, RunOutcome::Partial, 1, 1).unwrap();

    // A second run that died before finishing.
    let second = store.begin_run(&run_info()).unwrap();
    store
        .write_all(&[entry(second, EntryOutcome::Ok, "created on retry")])
        .unwrap();

    let history = store.history(10).unwrap();
    assert_eq!(history.len(), 2);
    let (latest, earlier) = (&history[0], &history[1]);
    assert_eq!(latest.id, second);
    assert_eq!(latest.finished, None);
    assert_eq!(latest.outcome, None);
    assert_eq!((latest.journaled_ok, latest.journaled_failed), (1, 0));
    assert_eq!(earlier.id, first);
    assert_eq!(earlier.outcome, Some(RunOutcome::Partial));
    assert_eq!((earlier.ok_count, earlier.failed_count), (1, 1));
    assert_eq!((earlier.journaled_ok, earlier.journaled_failed), (1, 1));
    assert!(earlier.finished.is_some());
    assert_eq!(earlier.info.user, "admin");
    assert_eq!(earlier.info.ci_job.as_deref(), Some("CI_JOB_ID=4711"));
    assert_eq!(earlier.info.plan_digest.as_deref(), Some("sha256:abc"));
    assert_eq!(store.history(1).unwrap().len(), 1);
    assert_eq!(store.run(first).unwrap().as_ref(), Some(earlier));
    assert_eq!(store.run(999).unwrap(), None);

    let journal = store.journal_for("P1").unwrap();
    let messages: Vec<_> = journal.iter().map(|r| r.entry.message.as_str()).collect();
    assert_eq!(
        messages,
        ["created", "server said 409 Conflict", "created on retry"]
    );
    assert_eq!(journal[1].entry.outcome, EntryOutcome::Failed);
    assert_eq!(journal[1].entry.resource, ResourceKind::Account);
    assert_eq!(journal[1].entry.op, Op::Create);
    assert!(store.journal_for("P2").unwrap().is_empty());
}

#[test]
fn journal_entries_need_a_begun_run() {
    let (_dir, db) = temp_db();
    let mut store = store_with_person(&db);
    let err = store
        .write_all(&[WriteOp::Entry(Entry::new(
            42,
            None,
            "wg0",
            ResourceKind::VpnPeer,
            Op::Remove,
            EntryOutcome::Ok,
            "",
        ))])
        .unwrap_err();
    assert!(matches!(err, StateError::UnknownRun { id: 42 }), "{err}");
    let err = store.finish_run(42, RunOutcome::Success, 0, 0).unwrap_err();
    assert!(matches!(err, StateError::UnknownRun { id: 42 }), "{err}");
}
