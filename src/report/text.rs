//! Plain text for the terminal.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::escape::terminal;
use super::{action_line, changed_actions, estimate_line, totals, Listing, Review, BRIEF_PERSONS};
use crate::plan::{PersonPlan, PersonStatus};

/// Persons a brief plan names of each group that stands out…
const BRIEF_MEMBERS: usize = 5;
/// …and of all of them together, so that many such groups still fit a screen.
const BRIEF_MEMBERS_ALL: usize = 18;

/// The plan for a terminal: the groups first (what stands out on top), then
/// the totals, capacity and warnings, the plan's digest and the headline
/// last — what stays on screen is the summary.
pub fn render(review: &Review, listing: Listing, color: bool) -> String {
    let plan = review.plan;
    let paint = |code: &str, s: &str| {
        if color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let mut out = String::new();
    let all = listing == Listing::All;
    let changed = plan.persons.iter().filter(|p| p.has_changes()).count();
    // Few changes, or -v: every person under their group; else the groups
    // with the first persons of those that stand out.
    let brief = listing == Listing::Brief && changed > BRIEF_PERSONS;
    let exceptions = review.groups.iter().filter(|g| g.exception).count();
    let brief_members = (BRIEF_MEMBERS_ALL / exceptions.max(1)).clamp(1, BRIEF_MEMBERS);
    let by_id: BTreeMap<&str, &PersonPlan> =
        plan.persons.iter().map(|p| (p.id.as_str(), p)).collect();
    if !review.groups.is_empty() {
        let _ = writeln!(
            out,
            "Changes by pattern, what stands out first ({} group(s))",
            review.groups.len()
        );
    }
    for group in &review.groups {
        let mark = if group.exception {
            paint("33", "!")
        } else {
            " ".to_string()
        };
        let _ = writeln!(
            out,
            "{mark} {:>5} × {}",
            group.count,
            terminal(&group.title)
        );
        if group.kind == super::groups::GroupKind::Unchanged && !all {
            continue;
        }
        let limit = match (brief, group.exception) {
            (false, _) => usize::MAX,
            (true, true) => brief_members,
            (true, false) => 0,
        };
        for member in group.persons.iter().take(limit) {
            let Some(p) = by_id.get(member.id.as_str()) else {
                continue;
            };
            let mark = match p.status {
                PersonStatus::New => paint("32", "+"),
                PersonStatus::Changed => paint("33", "~"),
                PersonStatus::Withdrawn => paint("31", "-"),
                PersonStatus::Unchanged => " ".to_string(),
            };
            let detail = member
                .detail
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
                terminal(&detail)
            );
            if !brief {
                if let Some(why) = &p.username_reason {
                    let _ = writeln!(out, "      username {}: {}", p.username, terminal(why));
                }
                for action in changed_actions(p) {
                    let _ = writeln!(out, "      {}", terminal(&action_line(action)));
                }
            }
        }
        let more = group.persons.len().saturating_sub(limit);
        if brief && group.exception && more > 0 {
            let _ = writeln!(out, "    … and {more} more");
        }
    }
    if brief {
        let _ = writeln!(
            out,
            "Persons with changes: {changed}, listed with -v, or in a report file \
             (--report plan.html, plan.md or plan.txt)"
        );
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
        "\ninputs {}  state {}\nplan {} (sha256sum of the file `--out` saves)",
        plan.inputs.digest, plan.state_digest, review.digest
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
