//! `list_command`: what the system already holds, for `read` (usernames a
//! new person must not get, accounts that carry a staff id nobody on our
//! books has) and for `homebase adopt` (accounts to take over). The command
//! prints one JSON object per line; a line that cannot be read refuses the
//! run with its number (a skipped line could be a person's account).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use serde::Deserialize;
use tokio::process::Command;

use crate::plan::{Account, Observed};
use crate::targets::ExistingAccount;

/// One account as the list command prints it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listed {
    pub username: String,
    #[serde(default)]
    pub staff_id: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub family_name: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    /// The system's own id of the account, recorded like an action's answer.
    #[serde(default)]
    pub remote_id: Option<String>,
}

/// Read the command's output: one object per line, blank lines skipped.
pub fn parse(stdout: &str) -> Result<Vec<Listed>, String> {
    let mut found = Vec::new();
    for (n, line) in stdout.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let listed: Listed = serde_json::from_str(line).map_err(|e| {
            format!(
                "line {}: {e}; expected a JSON object such as {{\"username\": \"emustermann\", \"staff_id\": \"P100001\"}}",
                n + 1
            )
        })?;
        if listed.username.trim().is_empty() {
            return Err(format!("line {}: an empty username", n + 1));
        }
        found.push(listed);
    }
    Ok(found)
}

/// Run the list command in `dir`, with nothing on stdin.
pub async fn run(
    program: &Path,
    args: &[String],
    dir: &Path,
    timeout: Duration,
) -> Result<Vec<Listed>> {
    let shown = || {
        std::iter::once(program.display().to_string())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run the list command {}", shown()))?;
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| {
            anyhow!(
                "the list command {} took longer than {} s",
                shown(),
                timeout.as_secs()
            )
        })?
        .with_context(|| format!("the list command {} failed", shown()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
        return Err(anyhow!(
            "the list command {} failed ({}){}",
            shown(),
            output
                .status
                .code()
                .map_or_else(|| "killed".to_string(), |c| format!("exit {c}")),
            last.map(|l| format!(": {}", l.trim())).unwrap_or_default()
        ));
    }
    parse(&String::from_utf8_lossy(&output.stdout))
        .map_err(|e| anyhow!("the list command {}: {e}", shown()))
}

/// What `read` learns: usernames taken by accounts not on our books, and
/// which of them carry a staff id (a new account for that person would be a
/// second one). Accounts on our books are the state store's.
pub fn observe(name: &str, listed: &[Listed], observed: &mut Observed) {
    let mut foreign = BTreeSet::new();
    let mut unmanaged = BTreeMap::new();
    for account in listed {
        match account.staff_id.as_deref().filter(|id| !id.is_empty()) {
            Some(id) if observed.persons.contains_key(id) => {}
            Some(id) => {
                unmanaged
                    .entry(id.to_string())
                    .or_insert_with(|| account.username.clone());
                foreign.insert(account.username.to_lowercase());
            }
            None => {
                foreign.insert(account.username.to_lowercase());
            }
        }
    }
    if !unmanaged.is_empty() {
        observed
            .unmanaged_accounts
            .insert(name.to_string(), unmanaged);
    }
    observed
        .foreign_usernames
        .entry(name.to_string())
        .or_default()
        .extend(foreign);
}

/// The accounts as `homebase adopt` matches them to persons.
pub fn existing(listed: Vec<Listed>) -> Vec<ExistingAccount> {
    listed
        .into_iter()
        .map(|l| {
            let given_name = l.given_name.unwrap_or_default();
            let family_name = l.family_name.unwrap_or_default();
            let display_name = l
                .display_name
                .unwrap_or_else(|| format!("{given_name} {family_name}").trim().to_string());
            ExistingAccount {
                staff_id: l.staff_id.filter(|id| !id.is_empty()),
                principal: None,
                remote_id: l.remote_id,
                account: Account {
                    username: l.username,
                    given_name,
                    family_name,
                    display_name,
                    email: l.email.unwrap_or_default(),
                    department: None,
                    groups: Vec::new(),
                    ou: None,
                    expires: None,
                    enabled: true,
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_objects_and_a_bad_one_is_named() {
        let found = parse(
            "{\"username\": \"emustermann\", \"staff_id\": \"P1\", \"remote_id\": \"mbx-1\"}\n\n{\"username\": \"printer\"}\n",
        )
        .unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].staff_id.as_deref(), Some("P1"));
        assert_eq!(found[1].staff_id, None);
        let err = parse("{\"username\": \"a\"}\nnot json\n").unwrap_err();
        assert!(err.starts_with("line 2: "), "{err}");
        let err = parse("{\"username\": \"a\", \"uid\": 7}\n").unwrap_err();
        assert!(err.contains("unknown field `uid`"), "{err}");
        let err = parse("{\"username\": \" \"}\n").unwrap_err();
        assert_eq!(err, "line 1: an empty username");
    }

    #[test]
    fn foreign_names_and_unmanaged_staff_ids_are_observed() {
        let mut observed = Observed::default();
        observed.persons.insert(
            "P1".into(),
            crate::plan::KnownPerson {
                username: "emustermann".into(),
                display_name: "Erika Mustermann".into(),
                profile: "office".into(),
                withdrawn: false,
                offboarded: false,
            },
        );
        let listed = parse(
            "{\"username\": \"emustermann\", \"staff_id\": \"P1\"}\n{\"username\": \"TMeyer\", \"staff_id\": \"P9\"}\n{\"username\": \"printer\"}\n",
        )
        .unwrap();
        observe("mail", &listed, &mut observed);
        let foreign = &observed.foreign_usernames["mail"];
        assert!(foreign.contains("tmeyer") && foreign.contains("printer"));
        assert!(!foreign.contains("emustermann"), "ours is the store's");
        assert_eq!(observed.unmanaged_accounts["mail"]["P9"], "TMeyer");
    }
}
