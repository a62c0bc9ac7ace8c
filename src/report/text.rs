//! Plain text for the terminal.

use std::fmt::Write;

use super::escape::terminal;
use super::{action_line, changed_actions, estimate_line, listed, totals, Listing, BRIEF_PERSONS};
use crate::plan::{PersonStatus, Plan};

/// The plan for a terminal: the persons first, then the totals, capacity and
/// warnings, and the headline last — what stays on screen is the summary.
pub fn render(plan: &Plan, listing: Listing, color: bool) -> String {
    let paint = |code: &str, s: &str| {
        if color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let mut out = String::new();
    let all = listing == Listing::All;
    let persons: Vec<_> = listed(plan, all).collect();
    let changed = plan.persons.iter().filter(|p| p.has_changes()).count();
    if listing == Listing::Brief && changed > BRIEF_PERSONS {
        let _ = writeln!(
            out,
            "Persons with changes: {changed}, listed with -v, or in a report file \
             (--report plan.html, plan.md or plan.txt)"
        );
    } else if !persons.is_empty() {
        let _ = writeln!(out, "Persons{}", if all { "" } else { " with changes" });
        for p in persons {
            let mark = match p.status {
                PersonStatus::New => paint("32", "+"),
                PersonStatus::Changed => paint("33", "~"),
                PersonStatus::Withdrawn => paint("31", "-"),
                PersonStatus::Unchanged => " ".to_string(),
            };
            let reason = p
                .reason
                .as_deref()
                .map(|r| format!(" — {r}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{mark} {} {} \"{}\" [{}]{}",
                terminal(&p.id),
                p.username,
                terminal(&p.display_name),
                p.profile,
                terminal(&reason)
            );
            if let Some(why) = &p.username_reason {
                let _ = writeln!(out, "      username {}: {}", p.username, terminal(why));
            }
            for action in changed_actions(p) {
                let _ = writeln!(out, "      {}", terminal(&action_line(action)));
            }
        }
    }
    if !plan.summary.is_empty() {
        let _ = writeln!(out, "\nTargets");
        let width = plan
            .summary
            .iter()
            .map(|s| s.target.len() + s.kind.len() + 3)
            .max()
            .unwrap_or(0);
        for s in &plan.summary {
            let name = format!("{} ({})", s.target, s.kind);
            let _ = writeln!(
                out,
                "  {name:<width$}  create {:>6}  update {:>6}  remove {:>6}  unchanged {:>6}",
                s.create, s.update, s.remove, s.unchanged
            );
        }
    }
    if !plan.estimates.is_empty() {
        let _ = writeln!(out, "\nDuration");
        for e in &plan.estimates {
            let name = format!("{} ({})", e.target, e.kind);
            let _ = writeln!(out, "  {name}  {}", estimate_line(e));
        }
    }
    if !plan.capacity.is_empty() {
        let _ = writeln!(out, "\nCapacity");
        for c in &plan.capacity {
            let _ = writeln!(
                out,
                "  {:<8} {:<32} {:>7} / {:<7} {:>5.1} %",
                c.kind, c.name, c.used, c.total, c.percent
            );
        }
    }
    if !plan.warnings.is_empty() {
        let _ = writeln!(out, "\nWarnings");
        for w in &plan.warnings {
            let _ = writeln!(out, "  {} {}", paint("33", "!"), terminal(&w.message));
            if !w.persons.is_empty() {
                let shown: Vec<&str> = w.persons.iter().take(10).map(String::as_str).collect();
                let more = w.persons.len().saturating_sub(shown.len());
                let tail = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                let _ = writeln!(out, "    {}{tail}", terminal(&shown.join(", ")));
            }
        }
    }
    if !plan.files.is_empty() {
        let _ = writeln!(out, "\nFiles to rewrite from the state store");
        for f in &plan.files {
            let _ = writeln!(
                out,
                "  {} {}: {}",
                paint("33", "~"),
                terminal(&f.path),
                f.reason
            );
        }
    }
    let (create, update, remove, unchanged) = totals(plan);
    let _ = writeln!(
        out,
        "\ninputs {}  state {}",
        plan.inputs.digest, plan.state_digest
    );
    if let Some(line) = super::bundles_elsewhere_line(plan) {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(
        out,
        "Plan for {} person(s): {} to create, {} to update, {} to remove, {} unchanged",
        plan.persons.len(),
        create,
        update,
        remove,
        unchanged
    );
    if !plan.has_changes() {
        let _ = writeln!(out, "Nothing to do: the targets match the staff list.");
    }
    out
}
