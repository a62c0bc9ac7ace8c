//! One self-contained HTML page that prints well: what a reviewer signs.

use std::fmt::Write;

use super::escape::html as h;
use super::{action_line, changed_actions, estimate_line, totals};
use crate::plan::{PersonStatus, Plan};

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#111}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.5em;border-bottom:1px solid #999}\
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #bbb;padding:.2em .4em;text-align:left;vertical-align:top}\
th{background:#eee}td.n{text-align:right}.warn{color:#8a4b00}.new{color:#065f06}.withdrawn{color:#8b0000}\
ul.actions{margin:0;padding-left:1.2em}.sign{margin-top:3em;display:flex;gap:4em}.sign div{border-top:1px solid #000;padding-top:.3em;width:18em}\
@page{size:A4 landscape;margin:1.5cm}@media print{body{margin:0}tr{page-break-inside:avoid}}";

pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    let (create, update, remove, unchanged) = totals(plan);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>homebase plan {}</title><style>{STYLE}</style></head><body>\n",
        h(&plan.today.to_string())
    );
    let _ = writeln!(out, "<h1>homebase plan</h1>");
    let _ = writeln!(
        out,
        "<p>{} person(s): <b>{create}</b> to create, <b>{update}</b> to update, <b>{remove}</b> to remove, {unchanged} unchanged.<br>Planned for {} · inputs <code>{}</code> · state <code>{}</code></p>",
        plan.persons.len(),
        plan.today,
        h(&plan.inputs.digest),
        h(&plan.state_digest)
    );
    let _ = writeln!(out, "<h2>Targets</h2><table><tr><th>target</th><th>kind</th><th>create</th><th>update</th><th>remove</th><th>unchanged</th></tr>");
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
    let _ = writeln!(out, "<h2>Persons</h2><table><tr><th>id</th><th>username</th><th>name</th><th>profile</th><th>status</th><th>actions</th></tr>");
    for p in &plan.persons {
        let class = match p.status {
            PersonStatus::New => "new",
            PersonStatus::Withdrawn => "withdrawn",
            _ => "",
        };
        let actions: String = changed_actions(p)
            .map(|a| format!("<li>{}</li>", h(&action_line(a))))
            .collect();
        let actions = if actions.is_empty() {
            "—".to_string()
        } else {
            format!("<ul class=actions>{actions}</ul>")
        };
        let reason = p
            .reason
            .as_deref()
            .or(p.username_reason.as_deref())
            .map(|r| format!(": {}", h(r)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:?}{reason}</td><td>{actions}</td></tr>",
            h(&p.id),
            h(&p.username),
            h(&p.display_name),
            h(&p.profile),
            p.status
        );
    }
    let _ = writeln!(out, "</table>");
    let _ = writeln!(
        out,
        "<div class=sign><div>Reviewed by (name, date)</div><div>Signature</div></div>"
    );
    let _ = writeln!(out, "</body></html>");
    out
}
