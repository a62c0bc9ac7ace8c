//! Peer changes in batches. Each `wg` call through ssh costs a connection
//! and a process on the gateway; 1,200 of them would take minutes. Changes
//! that arrive while a batch is written queue up, and the next call carries
//! all of them: one `wg addconf` (new and changed peers, keys on stdin) and
//! one `wg set` (removals). A person's action completes only when their own
//! change is on the interface. The batching is the shared one
//! (`common/batch.rs`); what is particular to `wg` is here.

use std::fmt::Write;
use std::net::IpAddr;

use super::command::Runner;
use super::dump::Secret;
use crate::targets::common::batch::{Batches, Linger};
use crate::targets::TargetError;

/// One peer change.
#[derive(Debug, Clone)]
pub enum Change {
    /// Add the peer, or set its address (and preshared key) if it exists.
    Put {
        public_key: String,
        address: IpAddr,
        preshared_key: PresharedKey,
        /// The person's previous key, removed with this change (a new key).
        replaces: Option<String>,
    },
    Remove {
        public_key: String,
    },
}

/// What to do with a peer's preshared key.
#[derive(Debug, Clone)]
pub enum PresharedKey {
    Set(Secret),
    Clear,
    /// Leave it as the server has it (an adopted peer's own key).
    Keep,
}

/// How long a writer waits before taking the queue, so that the changes of
/// persons just finishing their account join this batch.
const LINGER: std::time::Duration = std::time::Duration::from_millis(5);

/// The interface's peer changes, written in batches (`common/batch.rs`).
pub struct Batcher {
    batches: Batches<Change, ()>,
}

impl Default for Batcher {
    fn default() -> Self {
        Batcher {
            batches: Batches::new(usize::MAX, Linger::For(LINGER)),
        }
    }
}

impl Batcher {
    /// Queue `change` and wait until a batch holding it is on the interface.
    pub async fn submit(
        &self,
        runner: &Runner,
        interface: &str,
        change: Change,
    ) -> Result<(), TargetError> {
        self.batches
            .submit(interface, change, |interface, changes| async move {
                write_with_fallback(runner, &interface, &changes).await
            })
            .await
    }
}

/// Write the batch; if it fails as a whole, each change on its own, so that
/// one bad change fails only its person.
async fn write_with_fallback(
    runner: &Runner,
    interface: &str,
    changes: &[Change],
) -> Vec<Result<(), TargetError>> {
    match write(runner, interface, changes).await {
        Ok(()) => vec![Ok(()); changes.len()],
        Err(err) if changes.len() == 1 || err.is_transient() => vec![Err(err); changes.len()],
        Err(_) => {
            let mut results = Vec::with_capacity(changes.len());
            for change in changes {
                results.push(write(runner, interface, std::slice::from_ref(change)).await);
            }
            results
        }
    }
}

/// The commands for a batch: removals (and replaced keys) first, so that a
/// peer's address is free before the next takes it; then the puts.
pub fn commands(interface: &str, changes: &[Change]) -> (Vec<String>, Option<String>) {
    let mut set = vec!["set".to_string(), interface.to_string()];
    let mut conf = String::new();
    for change in changes {
        let gone = match change {
            Change::Remove { public_key } => Some(public_key),
            Change::Put {
                public_key,
                replaces,
                ..
            } => replaces.as_ref().filter(|old| *old != public_key),
        };
        if let Some(key) = gone {
            set.extend(["peer".into(), key.clone(), "remove".into()]);
        }
    }
    for change in changes {
        let Change::Put {
            public_key,
            address,
            preshared_key,
            ..
        } = change
        else {
            continue;
        };
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let _ = writeln!(conf, "[Peer]\nPublicKey = {public_key}");
        match preshared_key {
            PresharedKey::Set(psk) => {
                let _ = writeln!(conf, "PresharedKey = {}", psk.expose());
            }
            // An all-zero key is "none" to WireGuard.
            PresharedKey::Clear => {
                let _ = writeln!(
                    conf,
                    "PresharedKey = AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
                );
            }
            PresharedKey::Keep => {}
        }
        let _ = writeln!(conf, "AllowedIPs = {address}/{bits}\n");
    }
    let set = if set.len() > 2 { set } else { Vec::new() };
    (set, (!conf.is_empty()).then_some(conf))
}

async fn write(runner: &Runner, interface: &str, changes: &[Change]) -> Result<(), TargetError> {
    let (set, conf) = commands(interface, changes);
    if !set.is_empty() {
        let mut args = vec!["wg"];
        args.extend(set.iter().map(String::as_str));
        runner
            .run(&args, None)
            .await
            .map_err(|e| e.into_target_error())?;
    }
    if let Some(conf) = conf {
        // `addconf` adds peers and replaces the allowed IPs of existing ones,
        // leaving every other peer alone; the keys come on stdin.
        runner
            .run(
                &["wg", "addconf", interface, "/dev/stdin"],
                Some(conf.as_bytes()),
            )
            .await
            .map_err(|e| e.into_target_error())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "f9KXCoD/J7BARlrVCl/yLpKE5Fv28FaF1f+LG8DP1no=";
    const K2: &str = "8uoSH1hCaQxkRTz2Uj0TXvGDGfZr28+4sygmSCt1xjs=";
    const K3: &str = "uH5uQZ0bVx0nDLcjMNNHoEsp9fqzbIkE1r8g2e0bqmM=";
    const PSK: &str = "QOHsu9NjPzh3sHtq+ymMTDIz7vF6tRiLUnEa7aKyZ98=";

    #[test]
    fn one_set_for_removals_and_one_conf_for_puts() {
        let changes = [
            Change::Put {
                public_key: K1.into(),
                address: "10.20.0.2".parse().unwrap(),
                preshared_key: PresharedKey::Set(Secret::new(PSK)),
                replaces: Some(K3.into()),
            },
            Change::Remove {
                public_key: K2.into(),
            },
            Change::Put {
                public_key: K2.into(),
                address: "fd00::7".parse().unwrap(),
                preshared_key: PresharedKey::Keep,
                replaces: None,
            },
        ];
        let (set, conf) = commands("wg0", &changes);
        assert_eq!(
            set.join(" "),
            format!("set wg0 peer {K3} remove peer {K2} remove")
        );
        assert!(
            !set.iter().any(|a| a.contains(PSK)),
            "a key on the command line"
        );
        assert_eq!(
            conf.unwrap(),
            format!(
                "[Peer]\nPublicKey = {K1}\nPresharedKey = {PSK}\nAllowedIPs = 10.20.0.2/32\n\n\
                 [Peer]\nPublicKey = {K2}\nAllowedIPs = fd00::7/128\n\n"
            )
        );
    }

    #[test]
    fn nothing_to_remove_means_no_set() {
        let (set, conf) = commands(
            "wg0",
            &[Change::Put {
                public_key: K1.into(),
                address: "10.20.0.2".parse().unwrap(),
                preshared_key: PresharedKey::Clear,
                replaces: None,
            }],
        );
        assert!(set.is_empty());
        assert!(conf.unwrap().contains("PresharedKey = AAAA"));
    }

    #[tokio::test]
    async fn concurrent_changes_share_one_call() {
        // A fake `wg` that logs each call: many submits, few calls.
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("calls");
        let script = format!("echo \"$1\" >> {}; cat >/dev/null", log.display());
        let runner = Runner::new(
            &["sh".into(), "-c".into(), script, "sh".into()],
            std::time::Duration::from_secs(10),
        );
        let batcher = std::sync::Arc::new(Batcher::default());
        let mut tasks = Vec::new();
        for i in 0..50u8 {
            let (batcher, runner) = (batcher.clone(), runner.clone());
            tasks.push(tokio::spawn(async move {
                let key = format!("{:A<43}=", i);
                batcher
                    .submit(
                        &runner,
                        "wg0",
                        Change::Put {
                            public_key: key,
                            address: IpAddr::from([10, 20, 0, i + 2]),
                            preshared_key: PresharedKey::Keep,
                            replaces: None,
                        },
                    )
                    .await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let calls = std::fs::read_to_string(&log).unwrap();
        let calls = calls.lines().count();
        assert!((1..=5).contains(&calls), "{calls} calls for 50 changes");
    }
}
