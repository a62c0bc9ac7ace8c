//! The result of an apply as JSON (`apply --format json`): what a CI job
//! parses to see, per person and action, what was done.
//!
//! Schema `homebase.apply/v1` (docs/contract.md, "Run result"): the run's
//! counts and `result`, then every person of the plan with their planned
//! actions — the same fields as in `homebase.plan/v1` — each with an
//! `outcome`: `done`, `failed` (with `reason`), `not_reached` (an earlier
//! step of the person failed, or the run was interrupted) or `unchanged`.
//! Like the plan, it carries no secret.

use serde_json::{json, Map, Value};

use crate::apply::{ActionResult, Outcome};
use crate::plan::{Op, Plan};

pub const APPLY_SCHEMA: &str = "homebase.apply/v1";

/// The run result of `plan` carried out with `outcome` (`None`: nothing to do).
pub fn json(plan: &Plan, ran: Option<&Outcome>) -> Value {
    let empty = Outcome::default();
    let run = ran.unwrap_or(&empty);
    let result = match ran {
        None => "nothing_to_do",
        Some(o) if o.failed.is_empty() && o.not_started == 0 => "success",
        Some(_) => "partial",
    };
    let persons: Vec<Value> = plan
        .persons
        .iter()
        .map(|person| {
            let results = run.results.get(&person.id);
            let not_started = run.not_started_ids.contains(&person.id);
            let mut failed = false;
            let mut worked = false;
            let actions: Vec<Value> = person
                .actions
                .iter()
                .enumerate()
                .map(|(index, action)| {
                    let mut fields = match serde_json::to_value(action) {
                        Ok(Value::Object(map)) => map,
                        _ => Map::new(),
                    };
                    let result = results
                        .and_then(|r| r.iter().find(|(i, _)| *i == index))
                        .map(|(_, result)| result);
                    let outcome = match result {
                        Some(ActionResult::Done) => "done",
                        Some(ActionResult::Failed(reason)) => {
                            fields.insert("reason".into(), reason.clone().into());
                            "failed"
                        }
                        None if action.op == Op::Unchanged => "unchanged",
                        None if ran.is_none() => "unchanged",
                        None => "not_reached",
                    };
                    failed |= outcome == "failed";
                    worked |= outcome != "unchanged";
                    fields.insert("outcome".into(), outcome.into());
                    Value::Object(fields)
                })
                .collect();
            let outcome = if not_started {
                "not_started"
            } else if failed || has_failure(run, &person.id) {
                "failed"
            } else if worked {
                "done"
            } else {
                "unchanged"
            };
            json!({
                "id": person.id,
                "username": person.username,
                "status": person.status,
                "outcome": outcome,
                "actions": actions,
            })
        })
        .collect();
    json!({
        "schema": APPLY_SCHEMA,
        "homebase_version": plan.homebase_version,
        "today": plan.today,
        "result": result,
        "done": run.done,
        "failed": run.failed.len(),
        "not_started": run.not_started,
        "persons": persons,
    })
}

/// Any failure of the person, also one that is no planned action (writing
/// the state store).
fn has_failure(run: &Outcome, id: &str) -> bool {
    run.failed.iter().any(|f| f.person_id == id)
}
