//! Markdown for a merge request: every name escaped so it renders literally.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::escape::markdown as md;
use super::groups::{Group, GroupKind};
use super::{estimate_line, totals, Review};
use crate::plan::PersonPlan;

/// A GitHub comment holds at most 65,536 characters; GitLab's notes more.
pub const COMMENT_LIMIT: usize = 65_000;

/// Exception tables longer than this fold into `<details>`.
const OPEN_ROWS: usize = 20;

/// How the routine groups list their persons.
#[derive(Clone, Copy, PartialEq)]
enum Names {
    /// `P100001 tmeyer (Thomas Meyer)`.
    Full,
    /// `P100001`: when names would break the comment limit.
    Ids,
    /// A count only.
    None,
}

/// The plan for a merge request: groups first, exceptions person by person,
/// routine groups folded; within a comment's limit where the plan allows.
pub fn render(review: &Review, all: bool) -> String {
    for names in [Names::Full, Names::Ids, Names::None] {
        let text = render_with(review, all, names);
        if text.chars().count() <= COMMENT_LIMIT || names == Names::None {
            return text;
        }
    }
    unreachable!("the last choice always returns")
}

fn render_with(review: &Review, all: bool, names: Names) -> String {
    let plan = review.plan;
    let by_id: BTreeMap<&str, &PersonPlan> =
        plan.persons.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut out = String::new();
    let (create, update, remove, unchanged) = totals(plan);
    let _ = writeln!(out, "# homebase plan\n");
    let _ = writeln!(
        out,
        "{} person(s): **{create}** to create, **{update}** to update, **{remove}** to remove, {unchanged} unchanged.\n",
        plan.persons.len()
    );
    let _ = writeln!(
        out,
        "Inputs `{}` · state `{}` · planned for {}\n",
        plan.inputs.digest, plan.state_digest, plan.today
    );
    let _ = writeln!(
        out,
        "**Plan `{}`** — the SHA-256 of the file `homebase plan --out` saves (`sha256sum plan.json`); `homebase apply --plan` runs that file and refuses it once stale.\n",
        review.digest
    );
    if let Some(line) = super::bundles_elsewhere_line(plan) {
        let _ = writeln!(out, "{line}\n");
    }
    let exceptions: Vec<&Group> = review.groups.iter().filter(|g| g.exception).collect();
    if !exceptions.is_empty() {
        let _ = writeln!(out, "## What stands out\n");
    }
    for group in exceptions {
        let _ = writeln!(out, "### {} × {}\n", group.count, md(&group.title));
        let fold = group.persons.len() > OPEN_ROWS;
        if fold {
            let _ = writeln!(
                out,
                "<details><summary>{} person(s)</summary>\n",
                group.count
            );
        }
        let _ = writeln!(
            out,
            "| id | username | name | department | {} |\n|---|---|---|---|---|",
            detail_header(group.kind)
        );
        for member in &group.persons {
            let Some(p) = by_id.get(member.id.as_str()) else {
                continue;
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                md(&p.id),
                md(&p.username),
                md(&p.display_name),
                md(p.department.as_deref().unwrap_or("—")),
                md(member.detail.as_deref().unwrap_or("—"))
            );
        }
        if fold {
            let _ = writeln!(out, "\n</details>");
        }
        out.push('\n');
    }
    let routine: Vec<&Group> = review.groups.iter().filter(|g| !g.exception).collect();
    if !routine.is_empty() {
        let _ = writeln!(out, "## Groups\n\n| persons | same actions |\n|---:|---|");
        for group in &routine {
            let _ = writeln!(out, "| {} | {} |", group.count, md(&group.title));
        }
        out.push('\n');
    }
    for group in routine {
        if names == Names::None || (group.kind == GroupKind::Unchanged && !all) {
            continue;
        }
        let listed: Vec<String> = group
            .persons
            .iter()
            .filter_map(|m| by_id.get(m.id.as_str()))
            .map(|p| match names {
                Names::Full => format!(
                    "{} {} ({})",
                    md(&p.id),
                    md(&p.username),
                    md(&p.display_name)
                ),
                _ => md(&p.id),
            })
            .collect();
        let _ = writeln!(
            out,
            "<details><summary>{} × {}</summary>\n\n{}\n\n</details>\n",
            group.count,
            // An HTML element: its text is HTML, not Markdown.
            super::escape::html(&group.title),
            listed.join(", ")
        );
    }
    if names == Names::None {
        let _ = writeln!(
            out,
            "The persons of the groups are listed in the HTML report and the JSON plan (too many for a comment).\n"
        );
    }
    let _ = writeln!(out, "## Targets\n\n| target | kind | create | update | remove | unchanged |\n|---|---|---:|---:|---:|---:|");
    for s in &plan.summary {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            md(&s.target),
            s.kind,
            s.create,
            s.update,
            s.remove,
            s.unchanged
        );
    }
    if !plan.estimates.is_empty() {
        let _ = writeln!(out, "\n## Duration\n");
        for e in &plan.estimates {
            let _ = writeln!(
                out,
                "- {} ({}): {}",
                md(&e.target),
                e.kind,
                estimate_line(e)
            );
        }
    }
    if !plan.capacity.is_empty() {
        let _ = writeln!(
            out,
            "\n## Capacity\n\n| what | name | used | total | % |\n|---|---|---:|---:|---:|"
        );
        for c in &plan.capacity {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.1} |",
                c.kind,
                md(&c.name),
                c.used,
                c.total,
                c.percent
            );
        }
    }
    if !plan.warnings.is_empty() {
        let _ = writeln!(out, "\n## Warnings\n");
        for w in &plan.warnings {
            let persons = if w.persons.is_empty() {
                String::new()
            } else {
                format!(" ({})", md(&w.persons.join(", ")))
            };
            let _ = writeln!(out, "- **{:?}**: {}{persons}", w.kind, md(&w.message));
        }
    }
    if !plan.files.is_empty() {
        let _ = writeln!(out, "\n## Files to rewrite from the state store\n");
        for f in &plan.files {
            let _ = writeln!(out, "- `{}`: {}", f.path.replace('`', "'"), md(&f.reason));
        }
    }
    let _ = writeln!(
        out,
        "\n## Sign-off\n\nReviewed plan `{}`: name, date, signature.",
        review.digest
    );
    out
}

fn detail_header(kind: GroupKind) -> &'static str {
    match kind {
        GroupKind::Withdraw => "why",
        GroupKind::Update => "before → after",
        GroupKind::Shortage => "missing",
        GroupKind::Expiring => "ends",
        _ => "what",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::groups::tests::{newcomer, plan};

    fn review(persons: usize, name_len: usize) -> String {
        let persons = (0..persons)
            .map(|i| {
                let mut p = newcomer(&format!("P{i:06}"), "10.20.0.2", &["staff"]);
                p.display_name = "N".repeat(name_len);
                p
            })
            .collect();
        let plan = plan(persons, vec![]);
        let review = Review {
            plan: &plan,
            groups: crate::report::groups::group(&plan),
            digest: "sha256:0".into(),
        };
        render(&review, true)
    }

    #[test]
    fn a_big_plan_keeps_to_a_comment_dropping_names_then_lists() {
        let small = review(100, 12);
        assert!(small.contains("P000099 p000099 (NNNNNNNNNNNN)"), "{small}");
        let ids_only = review(1_500, 40);
        assert!(ids_only.chars().count() <= COMMENT_LIMIT);
        assert!(ids_only.contains("P001499") && !ids_only.contains("NNNN"));
        let counts_only = review(9_000, 40);
        assert!(counts_only.chars().count() <= COMMENT_LIMIT);
        assert!(!counts_only.contains("P008999"));
        assert!(counts_only.contains("too many for a comment"));
        assert!(
            counts_only.contains("| 9000 | new office: "),
            "{counts_only}"
        );
    }
}
