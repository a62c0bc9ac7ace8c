//! XLSX workbooks: the first sheet or the one named, the first non-empty row
//! as the header, spreadsheet row numbers as lines, date cells as dates.

use std::borrow::Cow;
use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use chrono::NaiveDate;

use super::columns::{column_letters, ColumnNames, Layout};
use super::validate::{number_text, Collector, Value};
use crate::error::Problem;

/// Read an XLSX workbook's sheet into `out`.
pub(super) fn read(
    file: &str,
    bytes: Vec<u8>,
    sheet: Option<&str>,
    names: &ColumnNames,
    out: &mut Collector,
) {
    let mut workbook = match Xlsx::new(Cursor::new(bytes)) {
        Ok(workbook) => workbook,
        Err(err) => {
            out.problem(
                Problem::new(file, format!("not a readable XLSX workbook: {err}"))
                    .expected("a workbook saved by Excel or LibreOffice as .xlsx"),
            );
            return;
        }
    };
    let sheets = workbook.sheet_names();
    let name = match choose_sheet(&sheets, sheet) {
        Ok(name) => name,
        Err(problem) => {
            out.problem(Problem {
                file: file.to_string(),
                ..problem
            });
            return;
        }
    };
    let range = match workbook.worksheet_range(&name) {
        Ok(range) => range,
        Err(err) => {
            out.problem(Problem::new(
                file,
                format!("cannot read sheet \"{name}\": {err}"),
            ));
            return;
        }
    };
    let (first_row, first_column) = range.start().unwrap_or((0, 0));
    let (first_row, first_column) = (first_row as usize, first_column as usize);

    let mut rows = range
        .rows()
        .enumerate()
        .filter(|(_, row)| !row.iter().all(blank));
    let Some((header_index, header_cells)) = rows.next() else {
        out.problem(
            Problem::new(file, format!("sheet \"{name}\" is empty"))
                .expected("a header row and a row per person"),
        );
        return;
    };
    let header_line = first_row + header_index + 1;
    // Columns left of the used range are empty; the header may not start in A.
    let header_texts: Vec<Cow<'_, str>> = header_cells.iter().map(header_text).collect();
    let columns = names.map(
        file,
        header_line,
        header_texts.iter().map(AsRef::as_ref),
        Layout::Sheet { first_column },
        &mut out.problems,
    );

    let mut persons = 0;
    let mut values = Vec::with_capacity(columns.headers.len());
    for (index, row) in rows {
        let line = first_row + index + 1;
        persons += 1;
        values.clear();
        for (position, cell) in row.iter().enumerate() {
            let value = match cell_value(cell) {
                Ok(value) => value,
                Err(error) => {
                    let header = columns
                        .headers
                        .get(position)
                        .map_or("", |h| h.name.as_str());
                    let problem = if header.is_empty() {
                        let cell = format!("{}{line}", column_letters(first_column + position));
                        Problem::new(file, format!("cell {cell} holds the error {error}"))
                    } else {
                        Problem::new(file, format!("the cell holds the error {error}"))
                            .column(header)
                    };
                    let problem = problem
                        .at_line(line)
                        .expected("a value, not a formula error");
                    out.problem(problem);
                    Value::Broken
                }
            };
            values.push(value);
        }
        out.add_row(file, line, &columns, &values);
    }
    if persons == 0 {
        out.problem(
            Problem::new(
                file,
                format!("no persons below the header of sheet \"{name}\""),
            )
            .at_line(header_line)
            .expected("a row per person"),
        );
    }
}

/// The sheet named by `--sheet` (exactly, else ignoring case), or the first.
fn choose_sheet(sheets: &[String], wanted: Option<&str>) -> Result<String, Problem> {
    let listed = || {
        sheets
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match wanted {
        None => sheets
            .first()
            .cloned()
            .ok_or_else(|| Problem::new("", "the workbook has no sheets")),
        Some(wanted) => sheets
            .iter()
            .find(|s| *s == wanted)
            .or_else(|| {
                sheets
                    .iter()
                    .find(|s| s.to_lowercase() == wanted.to_lowercase())
            })
            .cloned()
            .ok_or_else(|| {
                Problem::new("", format!("no sheet \"{wanted}\""))
                    .expected(format!("one of the sheets {}", listed()))
            }),
    }
}

fn blank(cell: &Data) -> bool {
    match cell {
        Data::Empty => true,
        Data::String(text) => text.trim().is_empty(),
        _ => false,
    }
}

fn header_text(cell: &Data) -> Cow<'_, str> {
    match cell_value(cell) {
        Ok(Value::Text(text)) => text,
        Ok(Value::Date(date)) => Cow::Owned(date.to_string()),
        Ok(Value::Empty | Value::Broken) => Cow::Borrowed(""),
        Err(error) => Cow::Owned(error),
    }
}

/// A cell as a value: numbers as text (ids like 1001.0 as "1001"), date
/// cells as dates; a formula error is an error.
fn cell_value(cell: &Data) -> Result<Value<'_>, String> {
    Ok(match cell {
        Data::Empty => Value::Empty,
        Data::String(text) => Value::Text(Cow::Borrowed(text)),
        Data::Int(n) => Value::Text(Cow::Owned(n.to_string())),
        Data::Float(n) => Value::Text(Cow::Owned(number_text(*n))),
        Data::Bool(b) => Value::Text(Cow::Borrowed(if *b { "true" } else { "false" })),
        Data::DateTime(moment) if moment.is_datetime() => {
            let (year, month, day, ..) = moment.to_ymd_hms_milli();
            match NaiveDate::from_ymd_opt(year.into(), month.into(), day.into()) {
                Some(date) => Value::Date(date),
                None => Value::Text(Cow::Owned(number_text(moment.as_f64()))),
            }
        }
        Data::DateTime(duration) => Value::Text(Cow::Owned(number_text(duration.as_f64()))),
        Data::DateTimeIso(text) | Data::DurationIso(text) => Value::Text(Cow::Borrowed(text)),
        Data::Error(error) => return Err(error.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheet_choice() {
        let sheets = vec!["Tabelle1".to_string(), "Personal".to_string()];
        assert_eq!(choose_sheet(&sheets, None), Ok("Tabelle1".to_string()));
        assert_eq!(
            choose_sheet(&sheets, Some("Personal")),
            Ok("Personal".to_string())
        );
        assert_eq!(
            choose_sheet(&sheets, Some("personal")),
            Ok("Personal".to_string())
        );
        let problem = choose_sheet(&sheets, Some("Staff")).expect_err("no such sheet");
        assert_eq!(
            problem.to_string(),
            ": no sheet \"Staff\" (expected one of the sheets \"Tabelle1\", \"Personal\")"
        );
    }
}
