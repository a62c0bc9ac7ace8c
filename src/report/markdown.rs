//! Markdown for a merge request: every name escaped so it renders literally.

use std::fmt::Write;

use super::escape::markdown as md;
use super::{action_line, changed_actions, estimate_line, listed, totals};
use crate::plan::Plan;

pub fn render(plan: &Plan, all: bool) -> String {
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
    if let Some(line) = super::bundles_elsewhere_line(plan) {
        let _ = writeln!(out, "{line}\n");
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
    let _ = writeln!(out, "\n## Persons\n\n| id | username | name | profile | status | actions |\n|---|---|---|---|---|---|");
    for p in listed(plan, all) {
        let actions: Vec<String> = changed_actions(p).map(|a| md(&action_line(a))).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:?}{} | {} |",
            md(&p.id),
            md(&p.username),
            md(&p.display_name),
            md(&p.profile),
            p.status,
            p.reason
                .as_deref()
                .or(p.username_reason.as_deref())
                .map(|r| format!(": {}", md(r)))
                .unwrap_or_default(),
            if actions.is_empty() {
                "—".to_string()
            } else {
                actions.join("<br>")
            }
        );
    }
    out
}
