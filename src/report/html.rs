//! One self-contained HTML page to review and sign a plan: a sticky summary,
//! what stands out person by person, every group, and every person reachable
//! by search and filters. It prints as the summary, the exceptions and the
//! signature block; the full list only when asked.
//!
//! Names are data twice over: the static parts escape them, and the person
//! list is built by the page's script from a JSON block with `textContent`.
//! A Content-Security-Policy allows nothing but the page's own style and
//! script (by hash): no request leaves the page, no injected script runs.

use std::collections::BTreeSet;
use std::fmt::Write;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::escape::html as h;
use super::groups::Group;
use super::{action_line, changed_actions, estimate_line, totals, Review};
use crate::plan::Plan;

const STYLE: &str = include_str!("review/review.css");
const SCRIPT: &str = include_str!("review/review.js");

pub fn render(review: &Review) -> String {
    let plan = review.plan;
    let mut out = String::new();
    let (create, update, remove, unchanged) = totals(plan);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>homebase plan {}</title><style>{STYLE}</style></head><body>\n",
        content_security_policy(),
        h(&plan.today.to_string())
    );
    let _ = writeln!(out, "<header id=\"summary\"><h1>homebase plan</h1>");
    let _ = writeln!(
        out,
        "<p>{} person(s): <b>{create}</b> to create, <b>{update}</b> to update, <b>{remove}</b> to remove, {unchanged} unchanged · planned for {}</p>",
        plan.persons.len(),
        plan.today,
    );
    let _ = writeln!(
        out,
        "<p>Plan <code id=\"plan-digest\">{}</code> <small>(SHA-256 of the file <code>plan --out</code> saves; <code>apply --plan</code> runs exactly that file)</small></p>",
        h(&review.digest)
    );
    controls(&mut out, review);
    let _ = writeln!(out, "</header><main>");

    exceptions(&mut out, review);
    let _ = writeln!(
        out,
        "<section class=\"overview\"><h2>Groups</h2><table><tr><th>persons</th><th>same actions</th></tr>"
    );
    for group in &review.groups {
        let _ = writeln!(
            out,
            "<tr><td class=n>{}</td><td>{}{}</td></tr>",
            group.count,
            if group.exception { "! " } else { "" },
            h(&group.title)
        );
    }
    let _ = writeln!(out, "</table></section>");
    facts(&mut out, plan);
    let _ = writeln!(
        out,
        "<section class=\"overview\"><h2>Sign-off</h2><p>I reviewed plan <code>{}</code> (inputs <code>{}</code>, state <code>{}</code>).</p>\
         <div class=sign><div>Reviewed by (name, date)</div><div>Signature</div></div></section>",
        h(&review.digest),
        h(&plan.inputs.digest),
        h(&plan.state_digest)
    );
    let _ = writeln!(
        out,
        "<section id=\"full\"><h2>All persons by group</h2><div id=\"list\"></div></section></main>"
    );
    let _ = writeln!(
        out,
        "<script type=\"application/json\" id=\"plan-data\">{}</script>",
        data_json(review)
    );
    let _ = writeln!(out, "<script>{SCRIPT}</script>\n</body></html>");
    out
}

/// Only the page's own style and script, by hash; nothing else loads.
fn content_security_policy() -> String {
    let hash = |s: &str| B64.encode(Sha256::digest(s.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{}'; script-src 'sha256-{}'; base-uri 'none'; form-action 'none'",
        hash(STYLE),
        hash(SCRIPT)
    )
}

/// Search and the filters, with the values the plan has.
fn controls(out: &mut String, review: &Review) {
    let plan = review.plan;
    let _ = write!(
        out,
        "<div class=\"controls\"><input id=\"search\" type=\"search\" placeholder=\"Search name, id, username, department\" aria-label=\"Search\">"
    );
    let mut kinds: Vec<(&str, usize)> = Vec::new();
    for group in &review.groups {
        match kinds.iter_mut().find(|(k, _)| *k == group.kind.name()) {
            Some(entry) => entry.1 += group.count,
            None => kinds.push((group.kind.name(), group.count)),
        }
    }
    select(
        out,
        "f-kind",
        "every kind",
        kinds
            .iter()
            .map(|(k, n)| (k.to_string(), format!("{k} ({n})"))),
    );
    let targets: BTreeSet<String> = plan
        .persons
        .iter()
        .flat_map(|p| p.actions.iter().map(|a| a.target.to_string()))
        .collect();
    select(
        out,
        "f-target",
        "every target",
        targets.into_iter().map(|t| (t.clone(), t)),
    );
    let profiles: BTreeSet<&str> = plan.persons.iter().map(|p| p.profile.as_str()).collect();
    select(
        out,
        "f-profile",
        "every profile",
        profiles.into_iter().map(|p| (p.to_string(), p.to_string())),
    );
    let departments: BTreeSet<&str> = plan
        .persons
        .iter()
        .filter_map(|p| p.department.as_deref())
        .collect();
    select(
        out,
        "f-department",
        "every department",
        departments
            .into_iter()
            .map(|d| (d.to_string(), d.to_string())),
    );
    let _ = writeln!(
        out,
        "<label><input type=\"checkbox\" id=\"print-all\"> print the full list</label><span id=\"matches\" aria-live=\"polite\"></span></div>"
    );
}

fn select(out: &mut String, id: &str, any: &str, options: impl Iterator<Item = (String, String)>) {
    let _ = write!(
        out,
        "<select id=\"{id}\" aria-label=\"{any}\"><option value=\"\">{any}</option>"
    );
    for (value, label) in options {
        let _ = write!(
            out,
            "<option value=\"{}\">{}</option>",
            h(&value),
            h(&label)
        );
    }
    out.push_str("</select>");
}

/// Exception groups larger than this whose persons share one note are
/// printed as a roster in columns rather than a table.
const ROSTER_FROM: usize = 12;

/// The groups that stand out, person by person: what is printed and signed.
fn exceptions(out: &mut String, review: &Review) {
    let exceptions: Vec<&Group> = review.groups.iter().filter(|g| g.exception).collect();
    if exceptions.is_empty() {
        let _ = writeln!(
            out,
            "<section class=\"overview\"><h2>What stands out</h2><p>Nothing: no withdrawal, update, shortage, expiry, adoption, re-key or sensitive access.</p></section>"
        );
        return;
    }
    let by_id: std::collections::HashMap<&str, &crate::plan::PersonPlan> = review
        .plan
        .persons
        .iter()
        .map(|p| (p.id.as_str(), p))
        .collect();
    let _ = writeln!(
        out,
        "<section class=\"overview\" id=\"exceptions\"><h2>What stands out</h2>"
    );
    for group in exceptions {
        let _ = writeln!(
            out,
            "<h3 class=\"{}\">{} × {}</h3>",
            group.kind.name(),
            group.count,
            h(&group.title)
        );
        let members = group
            .persons
            .iter()
            .filter_map(|m| Some((m, *by_id.get(m.id.as_str())?)));
        // Many persons with one and the same note (207 new full tunnels):
        // the note once, the persons as a dense roster that prints in columns.
        let uniform = group.persons.len() > ROSTER_FROM
            && group.persons.windows(2).all(|w| w[0].detail == w[1].detail);
        if uniform {
            let note = group.persons[0].detail.as_deref().unwrap_or("—");
            let _ = writeln!(
                out,
                "<p>note for each: {}</p><ul class=\"roster\">",
                h(note)
            );
            for (_, p) in members {
                let _ = writeln!(
                    out,
                    "<li><b>{}</b> {} — {}, {}</li>",
                    h(&p.id),
                    h(&p.username),
                    h(&p.display_name),
                    h(p.department.as_deref().unwrap_or("—"))
                );
            }
            let _ = writeln!(out, "</ul>");
            continue;
        }
        let _ = writeln!(
            out,
            "<table><tr><th>id</th><th>username</th><th>name</th><th>department</th><th>note</th></tr>"
        );
        for (member, p) in members {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                h(&p.id),
                h(&p.username),
                h(&p.display_name),
                h(p.department.as_deref().unwrap_or("—")),
                h(member.detail.as_deref().unwrap_or("—"))
            );
        }
        let _ = writeln!(out, "</table>");
    }
    let _ = writeln!(out, "</section>");
}

/// Targets, duration, capacity, warnings and files, as before the groups.
fn facts(out: &mut String, plan: &Plan) {
    let _ = writeln!(out, "<section class=\"overview\"><h2>Targets</h2><table><tr><th>target</th><th>kind</th><th>create</th><th>update</th><th>remove</th><th>unchanged</th></tr>");
    for s in &plan.summary {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            h(&s.target),
            h(&s.kind),
            s.create,
            s.update,
            s.remove,
            s.unchanged
        );
    }
    let _ = writeln!(out, "</table>");
    if let Some(line) = super::bundles_elsewhere_line(plan) {
        let _ = writeln!(out, "<p>{}</p>", h(&line));
    }
    if !plan.estimates.is_empty() {
        let _ = writeln!(out, "<h2>Duration</h2><ul>");
        for e in &plan.estimates {
            let _ = writeln!(
                out,
                "<li>{} ({}): {}</li>",
                h(&e.target),
                h(&e.kind),
                h(&estimate_line(e))
            );
        }
        let _ = writeln!(out, "</ul>");
    }
    if !plan.capacity.is_empty() {
        let _ = writeln!(out, "<h2>Capacity</h2><table><tr><th>what</th><th>name</th><th>used</th><th>total</th><th>%</th></tr>");
        for c in &plan.capacity {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{:.1}</td></tr>",
                h(&c.kind),
                h(&c.name),
                c.used,
                c.total,
                c.percent
            );
        }
        let _ = writeln!(out, "</table>");
    }
    if !plan.warnings.is_empty() {
        let _ = writeln!(out, "<h2>Warnings</h2><ul>");
        for w in &plan.warnings {
            let persons = if w.persons.is_empty() {
                String::new()
            } else {
                format!("<br><small>{}</small>", h(&w.persons.join(", ")))
            };
            let _ = writeln!(out, "<li class=warn>{}{persons}</li>", h(&w.message));
        }
        let _ = writeln!(out, "</ul>");
    }
    if !plan.files.is_empty() {
        let _ = writeln!(out, "<h2>Files to rewrite from the state store</h2><ul>");
        for f in &plan.files {
            let _ = writeln!(
                out,
                "<li class=warn><code>{}</code>: {}</li>",
                h(&f.path),
                h(&f.reason)
            );
        }
        let _ = writeln!(out, "</ul>");
    }
    let _ = writeln!(out, "</section>");
}

/// The persons and groups for the page's script.
#[derive(Serialize)]
struct Data<'a> {
    groups: Vec<DataGroup<'a>>,
    persons: Vec<DataPerson<'a>>,
}

#[derive(Serialize)]
struct DataGroup<'a> {
    kind: &'static str,
    exception: bool,
    title: &'a str,
    /// Indexes into `persons`.
    persons: Vec<usize>,
}

#[derive(Serialize)]
struct DataPerson<'a> {
    id: &'a str,
    username: &'a str,
    name: &'a str,
    department: Option<&'a str>,
    profile: &'a str,
    note: Option<&'a str>,
    targets: Vec<String>,
    actions: Vec<String>,
}

/// JSON that cannot end its `<script>` element or be read as markup:
/// `<`, `>` and `&` (and the line separators old parsers choke on) are
/// written as `\u` escapes, which JSON reads back as the same characters.
fn data_json(review: &Review) -> String {
    let plan = review.plan;
    let index: std::collections::HashMap<&str, usize> = plan
        .persons
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.as_str(), i))
        .collect();
    let notes: std::collections::HashMap<&str, &str> = review
        .groups
        .iter()
        .flat_map(|g| &g.persons)
        .filter_map(|m| Some((m.id.as_str(), m.detail.as_deref()?)))
        .collect();
    let data = Data {
        groups: review
            .groups
            .iter()
            .map(|g| DataGroup {
                kind: g.kind.name(),
                exception: g.exception,
                title: &g.title,
                persons: g
                    .persons
                    .iter()
                    .filter_map(|m| index.get(m.id.as_str()).copied())
                    .collect(),
            })
            .collect(),
        persons: plan
            .persons
            .iter()
            .map(|p| DataPerson {
                id: &p.id,
                username: &p.username,
                name: &p.display_name,
                department: p.department.as_deref(),
                profile: &p.profile,
                note: notes
                    .get(p.id.as_str())
                    .copied()
                    .or(p.username_reason.as_deref()),
                targets: changed_actions(p)
                    .map(|a| a.target.to_string())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
                actions: changed_actions(p).map(action_line).collect(),
            })
            .collect(),
    };
    let json = serde_json::to_string(&data).unwrap_or_default();
    script_safe(&json)
}

fn script_safe(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + json.len() / 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_json_cannot_close_its_script() {
        let raw = serde_json::to_string("</script><b>&\u{2028}\u{202e}").expect("json");
        let safe = script_safe(&raw);
        assert!(!safe.contains('<') && !safe.contains('>') && !safe.contains('&'));
        assert!(!safe.contains('\u{2028}'));
        let back: String = serde_json::from_str(&safe).expect("still JSON");
        assert_eq!(back, "</script><b>&\u{2028}\u{202e}");
    }

    #[test]
    fn the_policy_names_the_page_style_and_script() {
        let csp = content_security_policy();
        assert!(csp.starts_with("default-src 'none'; "), "{csp}");
        assert_eq!(csp.matches("'sha256-").count(), 2, "{csp}");
    }
}
