//! What the FAKE Snipe-IT keeps on disk when it runs as its own process
//! (`process.rs`): an append-only journal, one JSON record a line, each the
//! whole row after a change (a user, an asset …) or an event of the
//! history (a checkout, a checkin). It stands where the real Snipe-IT has
//! MySQL: a fake killed and started again finds its users, assets and
//! checkouts as they were.
//!
//! A change is appended before its answer is sent (MySQL commits before
//! Laravel answers), with one `write` of the line and its newline. SIGKILL
//! can still cut a write short (Linux stops a write at a page boundary
//! for a fatal signal), so a last line without its newline is a change
//! whose answer was never sent: opening the journal for writing cuts it
//! off, and readers skip it. Any other line that does not read is a
//! broken journal and fails loudly. Nothing is synced to the disk: the
//! page cache outlives a killed process, and a power loss is not what the
//! tests simulate.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Asset, User};

/// One line of the journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Record {
    /// (id, name)
    Category(u64, String),
    /// (id, name, category id)
    Model(u64, String, u64),
    User(User),
    Asset(Asset),
    /// (asset id, user id)
    Checkout(u64, u64),
    /// asset id
    Checkin(u64),
}

/// The journal open for appending (the serving process's only).
pub(super) struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    /// Open (or create) the journal and read it; a torn last line is cut off.
    pub(super) fn open(path: &Path) -> (Journal, Vec<Record>) {
        let text = std::fs::read(path).unwrap_or_default();
        let whole = whole_lines(&text);
        let records = parse(path, &text[..whole]);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap_or_else(|e| panic!("open the journal {}: {e}", path.display()));
        if whole < text.len() {
            file.set_len(whole as u64)
                .unwrap_or_else(|e| panic!("cut the torn end of {}: {e}", path.display()));
        }
        let journal = Journal {
            file,
            path: path.to_path_buf(),
        };
        (journal, records)
    }

    /// The journal's records as they are now, without opening it for
    /// writing (the test reading what a running fake holds).
    pub(super) fn read(path: &Path) -> Vec<Record> {
        let text = std::fs::read(path).unwrap_or_default();
        parse(path, &text[..whole_lines(&text)])
    }

    pub(super) fn append(&mut self, record: &Record) {
        let mut line = serde_json::to_vec(record).expect("a record serialises");
        line.push(b'\n');
        self.file
            .write_all(&line)
            .unwrap_or_else(|e| panic!("append to {}: {e}", self.path.display()));
    }
}

/// The length of the journal's whole lines: up to its last newline.
fn whole_lines(text: &[u8]) -> usize {
    text.iter().rposition(|b| *b == b'\n').map_or(0, |n| n + 1)
}

fn parse(path: &Path, lines: &[u8]) -> Vec<Record> {
    lines
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(n, line)| {
            serde_json::from_slice(line).unwrap_or_else(|e| {
                panic!(
                    "the journal {} is broken at line {}: {e}",
                    path.display(),
                    n + 1
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkout(n: u64) -> Record {
        Record::Checkout(n, n + 100)
    }

    fn asset_ids(records: &[Record]) -> Vec<u64> {
        records
            .iter()
            .filter_map(|r| match r {
                Record::Checkout(a, _) => Some(*a),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_write_cut_short_by_a_kill_is_dropped_and_the_journal_goes_on() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("snipeit.journal");
        let (mut journal, records) = Journal::open(&path);
        assert!(records.is_empty());
        journal.append(&checkout(1));
        journal.append(&checkout(2));
        drop(journal);
        // The first half of a third record, as a SIGKILL mid-write leaves it.
        let third = serde_json::to_vec(&checkout(3)).expect("serialise");
        let mut file = OpenOptions::new().append(true).open(&path).expect("open");
        file.write_all(&third[..third.len() / 2]).expect("write");
        drop(file);

        assert_eq!(
            asset_ids(&Journal::read(&path)),
            [1, 2],
            "a reader skips it"
        );
        let (mut journal, records) = Journal::open(&path);
        assert_eq!(asset_ids(&records), [1, 2]);
        journal.append(&checkout(4));
        drop(journal);
        let (_, records) = Journal::open(&path);
        assert_eq!(asset_ids(&records), [1, 2, 4], "the next record reads");
    }

    #[test]
    #[should_panic(expected = "is broken at line 2")]
    fn a_broken_line_inside_the_journal_fails_loudly() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("snipeit.journal");
        let first = serde_json::to_string(&checkout(1)).expect("serialise");
        std::fs::write(&path, format!("{first}\n{{\"checkout\": [2\n{first}\n")).expect("write");
        let _ = Journal::open(&path);
    }
}
