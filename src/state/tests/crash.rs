//! A committed write survives the process dying at any moment.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::plan::Op;
use crate::state::{Entry, EntryOutcome, Journal, ResourceKind, Store, WriteOp};

use super::{account, run_info, store_with_person, temp_db};

const CHILD_ENV: &str = "HOMEBASE_TEST_CRASH_CHILD";
const CHILD_TASKS: usize = 8;

fn integrity(store: &Store) -> String {
    store
        .conn()
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap()
}

fn messages(store: &Store) -> Vec<String> {
    let mut stmt = store.conn().prepare("SELECT message FROM journal").unwrap();
    let rows = stmt.query_map([], |row| row.get(0)).unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

/// Runs in a child process: journals from several tasks, printing each
/// acknowledged write, until it is killed.
#[test]
#[ignore = "helper run in a child process by acknowledged_writes_survive_a_killed_process"]
fn child_journals_until_killed() {
    let Some(db) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let db = Path::new(&db).to_path_buf();
    let mut store = Store::open(&db).unwrap();
    let run = store.begin_run(&run_info()).unwrap();
    let journal = Journal::open(&db).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for task in 0..CHILD_TASKS {
            let journal = journal.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0.. {
                    let entry = Entry::new(
                        run,
                        None,
                        "directory",
                        ResourceKind::Account,
                        Op::Create,
                        EntryOutcome::Ok,
                        format!("{task} {i}"),
                    );
                    journal.write(WriteOp::Entry(entry)).await.unwrap();
                    println!("acked {task} {i}");
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
}

#[test]
fn acknowledged_writes_survive_a_killed_process() {
    let (_dir, db) = temp_db();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "state::tests::crash::child_journals_until_killed",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked: BTreeMap<usize, usize> = BTreeMap::new();
    let mut record = |line: &str| {
        let mut parts = line.strip_prefix("acked ")?.split(' ');
        let task: usize = parts.next()?.parse().ok()?;
        let i: usize = parts.next()?.parse().ok()?;
        let last = acked.entry(task).or_default();
        *last = (*last).max(i);
        Some(())
    };
    let mut seen = 0;
    for line in lines.by_ref() {
        if record(&line.unwrap()).is_some() {
            seen += 1;
            if seen == 2000 {
                break;
            }
        }
    }
    assert_eq!(seen, 2000, "the child stopped early");
    // SIGKILL: no destructor, no checkpoint, no close.
    child.kill().unwrap();
    // Everything printed before the kill was acknowledged before it.
    for line in lines.map_while(Result::ok) {
        record(&line);
    }
    child.wait().unwrap();
    assert!(
        db.with_extension("db-wal").exists(),
        "the killed process should have left its write-ahead log"
    );

    // `plan` right after the crash reads everything acknowledged...
    let reader = Store::open_existing_read_only(&db).unwrap().unwrap();
    let read = messages(&reader).len();
    drop(reader);
    // ...and so does the next apply, which recovers the log.
    let store = Store::open(&db).unwrap();
    assert_eq!(integrity(&store), "ok");
    assert_eq!(messages(&store).len(), read);
    let found: std::collections::BTreeSet<String> = messages(&store).into_iter().collect();
    for (task, last) in acked {
        for i in 0..=last {
            assert!(
                found.contains(&format!("{task} {i}")),
                "acknowledged write {task} {i} is missing"
            );
        }
    }
}

#[test]
fn a_store_dropped_without_close_is_consistent() {
    let (dir, db) = temp_db();
    let mut store = store_with_person(&db);
    let run = store.begin_run(&run_info()).unwrap();
    store
        .put_account("directory", "P1", &account("jmueller"), None)
        .unwrap();
    let journal = store.journal().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        for i in 0..100 {
            let entry = Entry::new(
                run,
                Some("P1"),
                "directory",
                ResourceKind::Account,
                Op::Update,
                EntryOutcome::Ok,
                format!("{i}"),
            );
            journal.write(WriteOp::Entry(entry)).await.unwrap();
        }
    });
    // What a crashed process leaves: the files as they are, nothing closed
    // or checkpointed.
    let copy = dir.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let name = format!("state.db{suffix}");
        let from = db.with_file_name(&name);
        if from.exists() {
            std::fs::copy(&from, copy.join(&name)).unwrap();
        }
    }
    assert!(copy.join("state.db-wal").exists());
    std::mem::forget(journal);
    std::mem::forget(store);

    let store = Store::open(&copy.join("state.db")).unwrap();
    assert_eq!(integrity(&store), "ok");
    assert_eq!(messages(&store).len(), 100);
    assert_eq!(store.accounts("directory").unwrap().len(), 1);
    assert_eq!(store.person("P1").unwrap().unwrap().username, "jmueller");
}
