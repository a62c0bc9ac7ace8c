//! Rows → persons: field rules, and ids and emails unique across every file.
//! Every problem is collected; nothing stops at the first.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;

use super::columns::{aliases_of, Columns, Layout, Slot};
use super::dates::{parse_date, DateError, DATE_FORMATS, MAX_YEAR, MIN_YEAR};
use super::email::{check_email, EMAIL_FORMAT};
use super::{Field, Origin, Person};
use crate::error::{Problem, Problems};

/// One cell of a record, as a reader found it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value<'a> {
    Empty,
    /// Untrimmed text; trimming happens here.
    Text(Cow<'a, str>),
    /// A real date cell of a workbook.
    Date(NaiveDate),
    /// The reader already reported a problem with this cell.
    Broken,
}

impl Value<'_> {
    /// The trimmed text of the value; dates as ISO text.
    fn text(&self) -> Cow<'_, str> {
        match self {
            Value::Empty | Value::Broken => Cow::Borrowed(""),
            Value::Text(text) => Cow::Borrowed(text.trim()),
            Value::Date(date) => Cow::Owned(date.to_string()),
        }
    }

    pub(super) fn is_blank(&self) -> bool {
        match self {
            Value::Empty | Value::Broken => true,
            Value::Text(text) => text.trim().is_empty(),
            Value::Date(_) => false,
        }
    }
}

/// Persons and problems over all files, in the order they were read.
#[derive(Debug, Default)]
pub(super) struct Collector {
    persons: Vec<Person>,
    pub problems: Problems,
    ids: HashMap<String, Origin>,
    /// By lowercased address.
    emails: HashMap<String, Origin>,
}

/// Where a value sits: its column's header, or that a short row ended before it.
enum Cell<'c, 'v> {
    /// The table has no column for the field (reported once at the header).
    NoColumn,
    /// The row ended before the column (reported as a short row).
    PastEnd,
    At(&'c str, &'c Value<'v>),
}

/// The file and line of the record being checked, and whether it passed.
struct Record<'a> {
    file: &'a str,
    line: usize,
    ok: bool,
}

impl Collector {
    pub(super) fn problem(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    /// Every person, or every problem found.
    pub(super) fn finish(self) -> Result<Vec<Person>, Problems> {
        self.problems.into_result().map(|()| self.persons)
    }

    /// Check one record and, if it passes, keep the person. `values` are in
    /// column order; a short row has fewer values than `columns` (already reported).
    pub(super) fn add_row(
        &mut self,
        file: &str,
        line: usize,
        columns: &Columns,
        values: &[Value<'_>],
    ) {
        let mut record = Record {
            file,
            line,
            ok: true,
        };
        let cell = |field: Field| match columns.index(field) {
            None => Cell::NoColumn,
            Some(index) => match values.get(index) {
                None => Cell::PastEnd,
                Some(value) => Cell::At(&columns.headers[index].name, value),
            },
        };

        let id = self.required(&mut record, columns, cell(Field::Id), Field::Id);
        let family_name = self.required(
            &mut record,
            columns,
            cell(Field::FamilyName),
            Field::FamilyName,
        );
        let given_name = self.single_line(&mut record, cell(Field::GivenName));
        let email = self.email(&mut record, cell(Field::Email));
        let start = self.date(&mut record, cell(Field::Start));
        let end = self.date(&mut record, cell(Field::End));
        if let (Some(start), Some(end), Cell::At(start_column, _), Cell::At(end_column, _)) =
            (start, end, cell(Field::Start), cell(Field::End))
        {
            if start > end {
                record.ok = false;
                self.problem(
                    Problem::new(
                        file,
                        format!(
                            "end {end} is before the start {start} (column \"{start_column}\")"
                        ),
                    )
                    .at_line(line)
                    .column(end_column)
                    .expected("an end on or after the start"),
                );
            }
        }

        let mut extra = BTreeMap::new();
        for (index, header) in columns.headers.iter().enumerate() {
            let Some(value) = values.get(index) else {
                break;
            };
            match header.slot {
                Slot::Extra => {
                    extra.insert(header.name.clone(), value.text().into_owned());
                }
                Slot::Unnamed if !value.is_blank() => {
                    record.ok = false;
                    self.problem(
                        Problem::new(
                            file,
                            format!(
                                "value \"{}\" in {}, which has no header",
                                value.text(),
                                columns.position_name(index)
                            ),
                        )
                        .at_line(line)
                        .expected("a header above every column that holds values"),
                    );
                }
                _ => {}
            }
        }

        let origin = Origin {
            file: file.to_string(),
            line,
        };
        if let (Some(id), Cell::At(column, _)) = (&id, cell(Field::Id)) {
            if let Some(first) = self.ids.get(id.as_str()) {
                record.ok = false;
                let message = format!("duplicate id \"{id}\", {}", first_seen(first, file));
                self.problem(
                    Problem::new(file, message)
                        .at_line(line)
                        .column(column)
                        .expected("each id once"),
                );
            } else {
                self.ids.insert(id.clone(), origin.clone());
            }
        }
        if let (Some(email), Cell::At(column, _)) = (&email, cell(Field::Email)) {
            let key = email.to_lowercase();
            if let Some(first) = self.emails.get(&key) {
                record.ok = false;
                let message = format!("duplicate email \"{email}\", {}", first_seen(first, file));
                self.problem(
                    Problem::new(file, message)
                        .at_line(line)
                        .column(column)
                        .expected("each email once (case does not matter)"),
                );
            } else {
                self.emails.insert(key, origin.clone());
            }
        }

        let (Some(id), Some(family_name), true) = (id, family_name, record.ok) else {
            return;
        };
        let optional = |field: Field| match cell(field) {
            Cell::At(_, value) => non_empty(value.text()),
            Cell::NoColumn | Cell::PastEnd => None,
        };
        self.persons.push(Person {
            id,
            given_name: given_name.unwrap_or_default(),
            family_name,
            email,
            department: optional(Field::Department),
            profile: optional(Field::Profile),
            phone: optional(Field::Phone),
            location: optional(Field::Location),
            manager: optional(Field::Manager),
            start,
            end,
            extra,
            origin,
        });
    }

    /// `id` and `family_name`: present, not empty, one line.
    fn required(
        &mut self,
        record: &mut Record<'_>,
        columns: &Columns,
        cell: Cell<'_, '_>,
        field: Field,
    ) -> Option<String> {
        match cell {
            Cell::At(_, Value::Broken) => {
                record.ok = false;
                None
            }
            Cell::At(column, value) if value.is_blank() => {
                record.ok = false;
                self.problem(
                    Problem::new(record.file, format!("{} is empty", field.name()))
                        .at_line(record.line)
                        .column(column)
                        .expected(format!("a value; {} is required", field.name())),
                );
                None
            }
            Cell::At(..) => self.single_line(record, cell),
            // A table without the column has said so once, at its header.
            Cell::NoColumn if columns.layout != Layout::Keys => {
                record.ok = false;
                None
            }
            Cell::NoColumn => {
                record.ok = false;
                self.problem(
                    Problem::new(
                        record.file,
                        format!("missing required key {}", field.name()),
                    )
                    .at_line(record.line)
                    .expected(format!("a key like {}", aliases_of(field))),
                );
                None
            }
            Cell::PastEnd => {
                record.ok = false;
                None
            }
        }
    }

    /// A name or id: kept literally, but on one line.
    fn single_line(&mut self, record: &mut Record<'_>, cell: Cell<'_, '_>) -> Option<String> {
        let Cell::At(column, value) = cell else {
            return None;
        };
        let text = value.text();
        if text.chars().any(char::is_control) {
            record.ok = false;
            self.problem(
                Problem::new(
                    record.file,
                    format!(
                        "{:?} contains a line break or control character",
                        text.as_ref()
                    ),
                )
                .at_line(record.line)
                .column(column)
                .expected("a value on one line"),
            );
            return None;
        }
        non_empty(text)
    }

    fn email(&mut self, record: &mut Record<'_>, cell: Cell<'_, '_>) -> Option<String> {
        let Cell::At(column, value) = cell else {
            return None;
        };
        let email = non_empty(value.text())?;
        match check_email(&email) {
            Ok(()) => Some(email),
            Err(why) => {
                record.ok = false;
                self.problem(
                    Problem::new(
                        record.file,
                        format!("\"{email}\" is not an email address: {why}"),
                    )
                    .at_line(record.line)
                    .column(column)
                    .expected(EMAIL_FORMAT),
                );
                None
            }
        }
    }

    fn date(&mut self, record: &mut Record<'_>, cell: Cell<'_, '_>) -> Option<NaiveDate> {
        let Cell::At(column, value) = cell else {
            return None;
        };
        let text = match value {
            Value::Date(date) => return Some(*date),
            Value::Empty | Value::Broken => return None,
            Value::Text(text) => text.trim(),
        };
        if text.is_empty() {
            return None;
        }
        let (message, expected) = match parse_date(text) {
            Ok(date) => return Some(date),
            Err(DateError::Malformed) => (
                format!("\"{text}\" is not a date"),
                DATE_FORMATS.to_string(),
            ),
            Err(DateError::Impossible(why)) => (
                format!("no such date {text} ({why})"),
                "a date that exists".to_string(),
            ),
            Err(DateError::OutOfRange) => (
                format!("{text} is out of range"),
                format!("a year from {MIN_YEAR} to {MAX_YEAR}"),
            ),
        };
        record.ok = false;
        self.problem(
            Problem::new(record.file, message)
                .at_line(record.line)
                .column(column)
                .expected(expected),
        );
        None
    }
}

/// Whole numbers without a fraction (`1001.0` → `1001`), others as Rust writes them.
pub(super) fn number_text(n: f64) -> String {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn non_empty(text: Cow<'_, str>) -> Option<String> {
    if text.is_empty() {
        None
    } else {
        Some(text.into_owned())
    }
}

/// "first on line 3", or "first in other.csv line 3".
fn first_seen(first: &Origin, file: &str) -> String {
    if first.file == file {
        format!("first on line {}", first.line)
    } else {
        format!("first in {} line {}", first.file, first.line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_text() {
        assert_eq!(number_text(1001.0), "1001");
        assert_eq!(number_text(-3.0), "-3");
        assert_eq!(number_text(12.5), "12.5");
        assert_eq!(number_text(4930123456.0), "4930123456");
        assert_eq!(number_text(f64::NAN), "NaN");
    }
}
