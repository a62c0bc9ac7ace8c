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
/// `serial`, `kind`, `model`, optional `status` (`available` or empty = usable),
/// optional `assigned_to` (handed out before homebase: not usable).
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
    // Handed out before homebase (`homebase adopt` records it as the
    // holder's): never handed out again, whoever holds it.
    let holder = column("assigned_to");
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
        let held = holder.is_some_and(|i| !record.get(i).unwrap_or("").is_empty());
        let available = !held
            && status.is_none_or(|i| {
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

/// Where homebase writes who holds what of a `csv` inventory after each
/// apply (relative to `out`), so that `homebase adopt` can rebuild it.
pub fn assignments_path(name: &str) -> PathBuf {
    PathBuf::from(format!("server/{name}-assignments.csv"))
}

/// After an apply: `asset_tag,assigned_to,username` of every device checked out.
pub fn finish(
    name: &str,
    settings: &crate::settings::Settings,
    store: &crate::state::Store,
) -> Result<()> {
    let persons = store.persons()?;
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(["asset_tag", "assigned_to", "username"])?;
    let mut rows: Vec<(String, String)> = store
        .devices(name)?
        .into_iter()
        .map(|(id, device)| (device.asset_tag, id))
        .collect();
    rows.sort();
    for (tag, id) in rows {
        let username = persons.get(&id).map_or("", |p| p.username.as_str());
        writer.write_record([tag.as_str(), id.as_str(), username])?;
    }
    let bytes = writer.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::apply::fsutil::write_if_changed(
        &settings.out_path(&assignments_path(name)),
        &bytes,
        Some(0o644),
    )?;
    Ok(())
}

/// Who holds what, for `homebase adopt`: the `assigned_to` column of the
/// stock list (a staff id or username), then the assignments homebase wrote
/// out. (asset tag, holder, file, line).
pub fn existing_assignments(
    name: &str,
    config: &CsvInventory,
    settings: &crate::settings::Settings,
) -> Result<Vec<(String, String, String, usize)>> {
    let mut found = Vec::new();
    for path in [
        settings.path(&config.stock),
        settings.out_path(&assignments_path(name)),
    ] {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        let delimiter = if text.lines().next().is_some_and(|h| h.contains(';')) {
            b';'
        } else {
            b','
        };
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .trim(csv::Trim::All)
            .flexible(true)
            .from_reader(text.as_bytes());
        let headers: Vec<String> = reader
            .headers()?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').to_ascii_lowercase())
            .collect();
        let column = |n: &str| headers.iter().position(|h| h == n);
        let (Some(tag), Some(holder)) = (column("asset_tag"), column("assigned_to")) else {
            continue;
        };
        let file = path.display().to_string();
        for record in reader.records().flatten() {
            let line = record.position().map_or(0, |p| p.line() as usize);
            let (Some(t), Some(h)) = (record.get(tag), record.get(holder)) else {
                continue;
            };
            if !t.is_empty() && !h.is_empty() {
                found.push((t.to_string(), h.to_string(), file.clone(), line));
            }
        }
    }
    Ok(found)
}
