//! The dry-run report a reviewer signs off: one plan, four formats, one path.

pub mod escape;
pub mod groups;
mod html;
mod markdown;
pub mod outcome;
pub mod table;
mod text;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::cli::Format;
use crate::plan::{Action, Estimate, Op, PersonPlan, Plan, Resource};
use groups::Group;

/// Which persons a report lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// Everyone, unchanged persons too (`-v`, report files).
    All,
    /// Persons with changes.
    Changes,
    /// Persons with changes when they are few enough to read on a terminal
    /// (at most [`BRIEF_PERSONS`]); else the groups, the first persons of
    /// those that stand out, and where to see the rest.
    Brief,
}

/// The most persons a brief text plan lists one by one.
pub const BRIEF_PERSONS: usize = 50;

/// Render the plan. Every format names the plan's digest: the SHA-256 of
/// the file `plan --out` writes, which is what `apply --plan` then runs.
pub fn render(plan: &Plan, format: Format, listing: Listing, color: bool) -> String {
    let all_persons = listing == Listing::All;
    let groups = groups::group(plan);
    if format == Format::Json {
        return document_json(plan, &groups);
    }
    let review = Review {
        plan,
        digest: document_digest(plan, &groups),
        groups,
    };
    match format {
        Format::Json => unreachable!("returned above"),
        Format::Text => text::render(&review, listing, color),
        Format::Md => markdown::render(&review, all_persons),
        Format::Html => html::render(&review),
    }
}

/// What the human formats print: the plan, its groups, its digest.
struct Review<'a> {
    plan: &'a Plan,
    groups: Vec<Group>,
    digest: String,
}

/// The plan as `homebase.plan/v1` JSON with its groups: what `--format json`
/// prints and `--out` saves, byte for byte (so `sha256sum plan.json` is the
/// digest the reports print). Reading a plan ignores `groups`: they are
/// derived from the persons, never trusted from the file.
pub fn plan_json(plan: &Plan) -> String {
    document_json(plan, &groups::group(plan))
}

fn document_json(plan: &Plan, groups: &[Group]) -> String {
    let document = PlanDocument { plan, groups };
    // A plan is plain data (string keys, finite numbers): this cannot fail.
    let mut json = serde_json::to_string_pretty(&document).unwrap_or_default();
    json.push('\n');
    json
}

/// The digest of [`plan_json`]'s bytes, hashed as they are serialised: the
/// human formats need only the digest, not a copy of a plan that is hundreds
/// of megabytes at 100,000 persons.
fn document_digest(plan: &Plan, groups: &[Group]) -> String {
    use crate::plan::digest::{pretty_json_digest, pretty_json_digest_split};
    let shell = plan.without_persons();
    let shell = PlanDocument {
        plan: &shell,
        groups,
    };
    pretty_json_digest_split(&shell, "persons", &plan.persons)
        .unwrap_or_else(|| pretty_json_digest(&PlanDocument { plan, groups }))
}

/// `homebase.plan/v1` as written: the plan's fields, then its groups (an
/// added field, so readers of the earlier documents still read these).
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(title = "homebase.plan/v1")]
pub struct PlanDocument<'a> {
    #[serde(flatten)]
    pub plan: &'a Plan,
    /// The persons grouped by the shape of their actions, exceptions first
    /// (derived from `persons`; `apply --plan` does not read it).
    #[serde(default, skip_serializing_if = "<[Group]>::is_empty")]
    pub groups: &'a [Group],
}

/// `sha256:…` of a saved plan's bytes.
pub fn plan_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
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

/// `4432 requests: ~38 min at 120 requests/min`.
pub fn estimate_line(e: &Estimate) -> String {
    let minutes = e.minutes.ceil() as u64;
    let duration = if e.minutes < 1.0 {
        "under 1 min".to_string()
    } else if minutes < 120 {
        format!("~{minutes} min")
    } else {
        format!("~{} h {} min", minutes / 60, minutes % 60)
    };
    let rate = if e.per_minute.fract() == 0.0 {
        format!("{}", e.per_minute as u64)
    } else {
        format!("{:.1}", e.per_minute)
    };
    format!("{} requests: {duration} at {rate} requests/min", e.requests)
}

/// Delivered bundles not on this machine: a count, never changes.
pub fn bundles_elsewhere_line(plan: &Plan) -> Option<String> {
    (plan.bundles_elsewhere > 0).then(|| {
        format!(
            "{} delivered bundle(s) are not on this machine and keep their keys and passwords (new ones only with `homebase rotate ID`)",
            plan.bundles_elsewhere
        )
    })
}

#[cfg(test)]
mod estimate_tests {
    use super::*;

    fn estimate(requests: u64, per_minute: f64, minutes: f64) -> Estimate {
        Estimate {
            target: "assets".into(),
            kind: "snipeit".into(),
            requests,
            per_minute,
            minutes,
        }
    }

    #[test]
    fn durations_read_like_a_person_would_say_them() {
        assert_eq!(
            estimate_line(&estimate(6240, 120.0, 51.2)),
            "6240 requests: ~52 min at 120 requests/min"
        );
        assert_eq!(
            estimate_line(&estimate(10, 120.0, 0.1)),
            "10 requests: under 1 min at 120 requests/min"
        );
        assert_eq!(
            estimate_line(&estimate(30000, 120.0, 255.1)),
            "30000 requests: ~4 h 16 min at 120 requests/min"
        );
        assert_eq!(
            estimate_line(&estimate(90, 1.5, 60.0)),
            "90 requests: ~60 min at 1.5 requests/min"
        );
    }
}

#[cfg(test)]
mod digest_tests {
    use super::groups::tests::{newcomer, plan};
    use super::*;

    #[test]
    fn every_format_names_the_digest_of_the_json_a_saved_plan_holds() {
        let plan = plan(
            (0..30)
                .map(|i| newcomer(&format!("P{i:03}"), &format!("10.20.0.{i}"), &["staff"]))
                .collect(),
            vec![],
        );
        let digest = plan_digest(plan_json(&plan).as_bytes());
        for format in [Format::Text, Format::Md, Format::Html] {
            let report = render(&plan, format, Listing::All, false);
            assert!(
                report.contains(digest.trim_start_matches("sha256:")),
                "{format:?} report lacks {digest}"
            );
        }
        let json = render(&plan, Format::Json, Listing::All, false);
        assert_eq!(plan_digest(json.as_bytes()), digest);
    }
}
