//! The dry-run report a reviewer signs off: one plan, four formats, one path.

pub mod escape;
mod html;
mod markdown;
mod text;

use crate::cli::Format;
use crate::plan::{Action, Op, PersonPlan, Plan, Resource};

/// Render the plan. `all_persons`: include persons without changes in the table.
pub fn render(plan: &Plan, format: Format, all_persons: bool, color: bool) -> String {
    match format {
        Format::Json => {
            let mut json = serde_json::to_string_pretty(plan).unwrap_or_default();
            json.push('\n');
            json
        }
        Format::Text => text::render(plan, all_persons, color),
        Format::Md => markdown::render(plan, all_persons),
        Format::Html => html::render(plan),
    }
}

/// The format a report file gets from its extension, unless `--format` said so.
pub fn format_for_path(path: &std::path::Path, given: Format) -> Format {
    if given != Format::Text {
        return given;
    }
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("json") => Format::Json,
        Some("md" | "markdown") => Format::Md,
        Some("html" | "htm") => Format::Html,
        _ => Format::Text,
    }
}

/// Persons to list: those with changes, or everyone.
fn listed(plan: &Plan, all: bool) -> impl Iterator<Item = &PersonPlan> {
    plan.persons.iter().filter(move |p| all || p.has_changes())
}

/// What an action touches, in a few words (unescaped: callers escape).
fn describe(action: &Action) -> String {
    match &action.resource {
        Resource::Account(a) => format!("account {}", a.username),
        Resource::VpnPeer(p) => format!("peer {}", p.address),
        Resource::Device(d) => {
            format!("{} {} ({}, S/N {})", d.kind, d.asset_tag, d.model, d.serial)
        }
        Resource::License(l) => format!("seat {}", l.pool),
        Resource::Bundle(b) if b.new_secrets => {
            format!("bundle {} with new keys and password", b.path)
        }
        Resource::Bundle(b) => format!("bundle {}", b.path),
    }
}

/// `create account jdoe on directory; update peer … (address: a → b)`.
fn action_line(action: &Action) -> String {
    let mut line = format!(
        "{} {} on {}",
        action.op.name(),
        describe(action),
        action.target
    );
    if !action.changes.is_empty() {
        let changes: Vec<String> = action
            .changes
            .iter()
            .map(|c| {
                format!(
                    "{}: {} → {}",
                    c.field,
                    c.from.as_deref().unwrap_or("—"),
                    c.to.as_deref().unwrap_or("—")
                )
            })
            .collect();
        line.push_str(&format!(" ({})", changes.join("; ")));
    }
    line
}

/// Counts over all targets: (create, update, remove, unchanged).
fn totals(plan: &Plan) -> (usize, usize, usize, usize) {
    plan.summary.iter().fold((0, 0, 0, 0), |t, s| {
        (
            t.0 + s.create,
            t.1 + s.update,
            t.2 + s.remove,
            t.3 + s.unchanged,
        )
    })
}

fn changed_actions(person: &PersonPlan) -> impl Iterator<Item = &Action> {
    person.actions.iter().filter(|a| a.op != Op::Unchanged)
}
