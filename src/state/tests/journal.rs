use std::time::Instant;

use crate::plan::Op;
use crate::state::{Entry, EntryOutcome, Journal, ResourceKind, StateError, Store, WriteOp};

use super::{account, device, peer, run_info, temp_db};

fn entry(run_id: i64, person: &str, message: String) -> WriteOp {
    WriteOp::Entry(Entry::new(
        run_id,
        Some(person),
        "directory",
        ResourceKind::Account,
        Op::Create,
        EntryOutcome::Ok,
        message,
    ))
}

fn count(store: &Store, sql: &str) -> i64 {
    store.conn().query_row(sql, [], |row| row.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_are_all_committed_once() {
    const TASKS: usize = 32;
    const PER_TASK: usize = 400;
    let (_dir, db) = temp_db();
    let mut store = Store::open(&db).unwrap();
    let run = store.begin_run(&run_info()).unwrap();
    let journal = store.journal().unwrap();

    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let journal = journal.clone();
        tasks.push(tokio::spawn(async move {
            let person = format!("P{task}");
            journal
                .write(WriteOp::PinPerson {
                    id: person.clone(),
                    username: format!("user{task}"),
                    display_name: person.clone(),
                    profile: "office".into(),
                })
                .await
                .unwrap();
            for i in 0..PER_TASK {
                journal
                    .write(entry(run, &person, format!("{task}/{i}")))
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let stats = journal.close().unwrap();

    let total = (TASKS * PER_TASK) as i64;
    assert_eq!(count(&store, "SELECT count(*) FROM journal"), total);
    assert_eq!(
        count(&store, "SELECT count(DISTINCT message) FROM journal"),
        total
    );
    assert_eq!(count(&store, "SELECT count(*) FROM persons"), TASKS as i64);
    assert_eq!(stats.ops, total as u64 + TASKS as u64);
    // Group commit happened: fewer commits than writes.
    assert!(stats.commits < stats.writes, "{stats:?}");
    // Each task's entries are in its own order.
    let journal = store.journal_for("P7").unwrap();
    let order: Vec<_> = journal.iter().map(|r| r.entry.message.clone()).collect();
    let expected: Vec<_> = (0..PER_TASK).map(|i| format!("7/{i}")).collect();
    assert_eq!(order, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_write_fails_alone_and_atomically() {
    let (_dir, db) = temp_db();
    let mut store = Store::open(&db).unwrap();
    let run = store.begin_run(&run_info()).unwrap();
    let journal = store.journal().unwrap();

    let mut tasks = Vec::new();
    for task in 0..16 {
        let journal = journal.clone();
        tasks.push(tokio::spawn(async move {
            let person = format!("P{task}");
            let mut ops = vec![WriteOp::PinPerson {
                id: person.clone(),
                username: format!("user{task}"),
                display_name: person.clone(),
                profile: "office".into(),
            }];
            if task % 4 == 0 {
                // Depends on a person nobody recorded: the whole write is refused.
                ops.push(WriteOp::AddSeat {
                    pool: "office".into(),
                    person_id: "NOBODY".into(),
                });
            } else {
                ops.push(WriteOp::AddSeat {
                    pool: "office".into(),
                    person_id: person.clone(),
                });
            }
            ops.push(entry(run, &person, "done".into()));
            journal.write_all(ops).await
        }));
    }
    let mut failed = 0;
    for (task, handle) in tasks.into_iter().enumerate() {
        match handle.await.unwrap() {
            Ok(()) => assert_ne!(task % 4, 0),
            Err(err) => {
                assert_eq!(task % 4, 0);
                assert!(
                    matches!(err, StateError::UnknownPerson { ref id } if id == "NOBODY"),
                    "{err}"
                );
                failed += 1;
            }
        }
    }
    journal.close().unwrap();
    assert_eq!(failed, 4);
    // Nothing of a refused write is in the store, everything of the others is.
    assert_eq!(count(&store, "SELECT count(*) FROM persons"), 12);
    assert_eq!(count(&store, "SELECT count(*) FROM seats"), 12);
    assert_eq!(count(&store, "SELECT count(*) FROM journal"), 12);
    assert!(store.person("P0").unwrap().is_none());
    assert!(store.person("P1").unwrap().is_some());
}

#[tokio::test]
async fn flush_and_close_finish_what_was_sent() {
    let (_dir, db) = temp_db();
    let store = Store::open(&db).unwrap();
    let journal = store.journal().unwrap();
    let other = journal.clone();
    journal
        .write(WriteOp::PinPerson {
            id: "P1".into(),
            username: "a".into(),
            display_name: "A".into(),
            profile: "office".into(),
        })
        .await
        .unwrap();
    journal.flush().unwrap();
    assert!(store.person("P1").unwrap().is_some());
    journal.write_all(Vec::new()).await.unwrap();

    let stats = journal.close().unwrap();
    assert_eq!(stats.ops, 1);
    let err = other
        .write(WriteOp::SetWithdrawn {
            id: "P1".into(),
            withdrawn: true,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StateError::JournalClosed), "{err}");
    assert!(other.flush().is_err());
    assert!(other.close().is_err());
}

/// Throughput of the journal as the executor uses it: 10,000 persons, 7
/// writes each, from 32 concurrent tasks that each wait for every write.
/// `cargo test journal_throughput -- --ignored --nocapture`
#[test]
#[ignore = "benchmark: prints numbers, asserts none"]
fn journal_throughput() {
    const PERSONS: usize = 10_000;
    const TASKS: usize = 32;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (_dir, db) = temp_db();
    let mut store = Store::open(&db).unwrap();
    let run = store.begin_run(&run_info()).unwrap();
    let journal = Journal::open(&db).unwrap();

    let started = Instant::now();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for task in 0..TASKS {
            let journal = journal.clone();
            tasks.push(tokio::spawn(async move {
                for n in (task..PERSONS).step_by(TASKS) {
                    for op in person_ops(run, n) {
                        journal.write(op).await.unwrap();
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
    let stats = journal.close().unwrap();
    let elapsed = started.elapsed();

    assert_eq!(
        count(&store, "SELECT count(*) FROM journal"),
        PERSONS as i64
    );
    println!(
        "journal: {} ops ({} writes) from {TASKS} tasks in {:.3} s = {:.0} ops/s; \
         {} commits, {:.1} ops per commit",
        stats.ops,
        stats.writes,
        elapsed.as_secs_f64(),
        stats.ops as f64 / elapsed.as_secs_f64(),
        stats.commits,
        stats.ops as f64 / stats.commits as f64,
    );
}

/// The seven writes an apply makes for one new person.
fn person_ops(run: i64, n: usize) -> Vec<WriteOp> {
    let id = format!("P{n:05}");
    let username = format!("user{n:05}");
    vec![
        WriteOp::PinPerson {
            id: id.clone(),
            username: username.clone(),
            display_name: format!("Person {n}"),
            profile: "office".into(),
        },
        WriteOp::PutAccount {
            target: "directory".into(),
            person_id: id.clone(),
            account: account(&username),
            remote_id: None,
        },
        WriteOp::PutPeer {
            target: "wg0".into(),
            person_id: id.clone(),
            peer: peer(&format!("10.20.{}.{}", n / 250, n % 250 + 2)),
            public_key: format!("PUBKEY{n:05}="),
        },
        WriteOp::AssignDevice {
            target: "stock".into(),
            person_id: id.clone(),
            device: device(&format!("NB-{n:05}")),
        },
        WriteOp::AddSeat {
            pool: "office-suite".into(),
            person_id: id.clone(),
        },
        WriteOp::SetBundle {
            person_id: id.clone(),
            fingerprint: format!("sha256:{n:064}"),
        },
        entry(run, &id, "created account, peer, device and seat".into()),
    ]
}

/// The same 70,000 writes in one transaction on one connection: what SQLite
/// alone costs, to compare the journal's overhead against.
/// `cargo test sqlite_only_throughput -- --ignored --nocapture`
#[test]
#[ignore = "benchmark: prints numbers, asserts none"]
fn sqlite_only_throughput() {
    let (_dir, db) = temp_db();
    let mut store = Store::open(&db).unwrap();
    let run = store.begin_run(&run_info()).unwrap();
    let ops: Vec<WriteOp> = (0..10_000).flat_map(|n| person_ops(run, n)).collect();
    let started = Instant::now();
    store.write_all(&ops).unwrap();
    println!(
        "sqlite only: {} ops in {:.3} s",
        ops.len(),
        started.elapsed().as_secs_f64()
    );
}
