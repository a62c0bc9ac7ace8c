//! Digests that make a saved plan refuse to apply once its world has moved on.

use sha2::{Digest, Sha256};

use super::observed::Observed;

/// Feeds named parts into one SHA-256; names keep `ab`+`c` apart from `a`+`bc`.
#[derive(Default)]
pub struct InputDigest(Sha256);

impl InputDigest {
    pub fn part(&mut self, name: &str, bytes: &[u8]) {
        self.0.update((name.len() as u64).to_le_bytes());
        self.0.update(name.as_bytes());
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    pub fn finish(self) -> String {
        format!("sha256:{}", hex::encode(self.0.finalize()))
    }
}

/// Digest of the observed state (its JSON is deterministic: ordered maps
/// only), hashed as it is serialised rather than from a copy.
pub fn observed_digest(observed: &Observed) -> String {
    json_digest(observed)
}

/// `sha256:…` of `value`'s compact JSON as `serde_json` writes it, hashed as
/// it is written rather than held in memory.
pub fn json_digest(value: &impl serde::Serialize) -> String {
    digest_with(|hashing| serde_json::to_writer(hashing, value))
}

/// [`json_digest`] of the pretty JSON plus the newline a saved plan ends with.
pub fn pretty_json_digest(value: &impl serde::Serialize) -> String {
    digest_with(|hashing| {
        serde_json::to_writer_pretty(&mut *hashing, value)?;
        hashing.0.update(b"\n");
        Ok(())
    })
}

/// [`pretty_json_digest`] of a document whose top-level field `key` holds
/// `items`, given `shell`: the same document with that field's array empty.
/// The items are serialised on every core, a stretch at a time, and hashed
/// in order: a 100,000-person plan is 200 MB of pretty JSON, most of a
/// report's time on one thread. `None` if `shell` has no such top-level
/// field (the caller then hashes the whole document).
///
/// Exact because of how `serde_json` pretty-prints: an item inside the
/// array is its own pretty JSON with every line indented by two more
/// levels (a newline inside a string value is always written escaped), and
/// a non-empty array is `[`, the items each on their own line after `,`,
/// then `]` on a line of its own.
pub fn pretty_json_digest_split<T: serde::Serialize + Sync>(
    shell: &impl serde::Serialize,
    key: &str,
    items: &[T],
) -> Option<String> {
    let head = serde_json::to_vec_pretty(shell).ok()?;
    let field = format!("\n  {}: []", serde_json::to_string(key).ok()?);
    let at = head
        .windows(field.len())
        .position(|w| w == field.as_bytes())?
        + field.len()
        - 1;
    let mut hash = Sha256::new();
    hash.update(&head[..at]);
    if !items.is_empty() {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let chunks: Vec<&[T]> = items.chunks(ITEMS_PER_CHUNK).collect();
        std::thread::scope(|scope| {
            // Thread t serialises chunks t, t + threads, … into its own
            // short queue; this thread takes them in order from each in turn.
            let queues: Vec<_> = (0..threads.min(chunks.len()))
                .map(|t| {
                    let (send, receive) = std::sync::mpsc::sync_channel(2);
                    let mine = chunks.iter().enumerate().skip(t).step_by(threads);
                    scope.spawn(move || {
                        for (n, chunk) in mine {
                            if send.send(indented_items(chunk, n == 0)).is_err() {
                                return;
                            }
                        }
                    });
                    receive
                })
                .collect();
            for n in 0..chunks.len() {
                match queues[n % queues.len()].recv() {
                    Ok(bytes) => hash.update(&bytes),
                    Err(_) => return,
                }
            }
        });
        hash.update(b"\n  ");
    }
    hash.update(&head[at..]);
    hash.update(b"\n");
    Some(format!("sha256:{}", hex::encode(hash.finalize())))
}

/// Items a thread serialises at a time: big enough to be worth a hand-over,
/// small enough that the queues hold a few MB.
const ITEMS_PER_CHUNK: usize = 512;

/// `items` as they stand inside a top-level array of a pretty document:
/// each after `\n` (the first of all) or `,\n`, indented two levels.
fn indented_items<T: serde::Serialize>(items: &[T], first: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(items.len() * 2048);
    for (i, value) in items.iter().enumerate() {
        out.extend_from_slice(if first && i == 0 { b"\n" } else { b",\n" });
        out.extend_from_slice(INDENT);
        // Plain data into memory: cannot fail.
        let _ = serde_json::to_writer_pretty(Indented(&mut out), value);
    }
    out
}

/// Two levels of the pretty printer's indentation.
const INDENT: &[u8] = b"    ";

/// Appends what it is written to its buffer, with [`INDENT`] after every
/// newline (the pretty printer writes one only between tokens).
struct Indented<'a>(&'a mut Vec<u8>);

impl std::io::Write for Indented<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut rest = bytes;
        while let Some(at) = rest.iter().position(|&b| b == b'\n') {
            self.0.extend_from_slice(&rest[..=at]);
            self.0.extend_from_slice(INDENT);
            rest = &rest[at + 1..];
        }
        self.0.extend_from_slice(rest);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn digest_with(write: impl FnOnce(&mut Hashing) -> serde_json::Result<()>) -> String {
    let mut hashing = Hashing(Sha256::new());
    // Plain data (string keys, finite numbers) into a hash: cannot fail.
    let _ = write(&mut hashing);
    format!("sha256:{}", hex::encode(hashing.0.finalize()))
}

/// An `io::Write` that feeds SHA-256.
struct Hashing(Sha256);

impl std::io::Write for Hashing {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn item(n: usize) -> serde_json::Value {
        json!({
            "id": format!("P{n}"),
            "name": "a \"quoted\"\nline: [] {}",
            "actions": (0..n % 4).map(|k| json!({"op": k, "empty": [], "none": {}})).collect::<Vec<_>>(),
            "nested": {"deeper": {"list": [n, n + 1]}},
        })
    }

    #[test]
    fn split_digest_is_the_digest_of_the_whole_document() {
        let counts = [
            0,
            1,
            2,
            ITEMS_PER_CHUNK,
            ITEMS_PER_CHUNK + 1,
            3 * ITEMS_PER_CHUNK + 7,
        ];
        for count in counts {
            let items: Vec<_> = (0..count).map(item).collect();
            let whole = json!({"a": 1, "persons": items, "z": {"persons": [1], "k": []}});
            let shell = json!({"a": 1, "persons": [], "z": {"persons": [1], "k": []}});
            assert_eq!(
                pretty_json_digest_split(&shell, "persons", &items),
                Some(pretty_json_digest(&whole)),
                "{count} items"
            );
        }
    }

    #[test]
    fn split_digest_wants_the_field_at_the_top() {
        let shell = json!({"a": {"persons": []}});
        assert_eq!(pretty_json_digest_split(&shell, "persons", &[1]), None);
    }
}
