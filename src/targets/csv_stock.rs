//! The `csv` inventory: stock from a CSV list; who holds what lives in the state store.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Limits;
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};

use crate::error::{Failure, Problem, Problems};
use crate::plan::StockItem;

/// Read the stock list. Columns (any order, case-insensitive): `asset_tag`,
/// `serial`, `kind`, `model`, optional `status` (`available` or empty = usable).
/// `assigned` maps asset tags to the staff id holding them.
pub fn read(path: &Path, assigned: &BTreeMap<String, String>) -> Result<Vec<StockItem>> {
    let bytes = std::fs::read(path).map_err(|e| {
        Failure::usage_with_hint(
            format!("cannot read the stock list {}: {e}", path.display()),
            "set `stock:` of the csv inventory target in homebase.yaml (`homebase init` writes an example)",
        )
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let delimiter = if text.lines().next().is_some_and(|h| h.contains(';')) {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let file = path.display().to_string();
    let headers: Vec<String> = reader
        .headers()
        .with_context(|| format!("cannot read the header of {file}"))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let mut problems = Problems::default();
    let (tag, serial, kind, model) = match (
        column("asset_tag"),
        column("serial"),
        column("kind"),
        column("model"),
    ) {
        (Some(t), Some(s), Some(k), Some(m)) => (t, s, k, m),
        _ => {
            problems.push(
                Problem::new(&file, "missing columns")
                    .at_line(1)
                    .expected(format!(
                        "asset_tag, serial, kind, model (found {})",
                        headers.join(", ")
                    )),
            );
            return Err(Failure::Invalid(problems).into());
        }
    };
    let status = column("status");
    let mut items = Vec::new();
    let mut seen = BTreeMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(err) => {
                let line = err.position().map_or(0, |p| p.line() as usize);
                problems.push(Problem::new(&file, err.to_string()).at_line(line));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        let get = |i: usize| record.get(i).unwrap_or("").to_string();
        let asset_tag = get(tag);
        if asset_tag.is_empty() {
            problems.push(
                Problem::new(&file, "empty asset tag")
                    .at_line(line)
                    .column("asset_tag"),
            );
            continue;
        }
        if let Some(first) = seen.insert(asset_tag.clone(), line) {
            problems.push(
                Problem::new(
                    &file,
                    format!("asset tag {asset_tag} appears twice (first on line {first})"),
                )
                .at_line(line)
                .column("asset_tag"),
            );
            continue;
        }
        let available = status.is_none_or(|i| {
            matches!(
                record.get(i).unwrap_or("").to_ascii_lowercase().as_str(),
                "" | "available" | "ready" | "verfügbar"
            )
        });
        items.push(StockItem {
            assigned_to: assigned.get(&asset_tag).cloned(),
            asset_tag,
            serial: get(serial),
            kind: get(kind),
            model: get(model),
            available,
        });
    }
    problems.into_result().map_err(Failure::Invalid)?;
    Ok(items)
}

/// What is wrong with the stock list, found offline: `check` reports what
/// `plan` would stop at (an unreadable file, missing columns, bad lines).
pub fn problems(name: &str, source: &str, path: &Path) -> Vec<Problem> {
    let Err(err) = read(path, &BTreeMap::new()) else {
        return Vec::new();
    };
    match err.downcast::<Failure>() {
        Ok(Failure::Invalid(problems)) => problems.0,
        Ok(other) => vec![unreadable(name, source, other.to_string())],
        Err(other) => vec![unreadable(name, source, format!("{other:#}"))],
    }
}

fn unreadable(name: &str, source: &str, message: String) -> Problem {
    Problem::new(source, message)
        .column(format!("targets.{name}.stock"))
        .expected(
            "a CSV stock list with the columns asset_tag, serial, kind, model; \
 `homebase init` writes homebase.yaml and an example one",
        )
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvInventory {
    /// Stock list: `asset_tag`, `serial`, `kind`, `model` (and optional `status`).
    pub stock: PathBuf,
    #[serde(flatten)]
    pub limits: Limits,
}
