//! Staff files: CSV/TSV (delimiter and encoding detected), XLSX, YAML and JSON,
//! read into [`Person`] records with every problem reported in one pass.
//!
//! Each file is read into bytes, recognised (`decode`), split into records by
//! its format (`delimited`, `xlsx`, `structured`), its headers mapped to fields
//! (`columns`), and each record checked and turned into a person (`validate`).

mod columns;
mod dates;
mod decode;
mod delimited;
mod email;
mod person;
mod structured;
mod validate;
mod xlsx;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use person::{Field, Origin, Person};

use self::columns::ColumnNames;
use self::decode::{decode, Content};
use self::validate::Collector;
use crate::error::{Problem, Problems};

/// How to read staff files, from the configuration and the command line.
#[derive(Debug, Clone, Default)]
pub struct InputOptions {
    /// Extra header names (compared case-insensitively) → field, from `columns:`.
    pub columns: BTreeMap<String, Field>,
    /// XLSX sheet; default the first.
    pub sheet: Option<String>,
    /// Keep an unknown header that looks like a misspelt known one as an
    /// extra column instead of refusing it.
    pub allow_extra_columns: bool,
}

/// Read every staff file, validate every record, and check ids and emails are
/// unique across all files. Either all persons, or every problem found.
pub fn load_staff(paths: &[PathBuf], options: &InputOptions) -> Result<Vec<Person>, Problems> {
    let names = ColumnNames::new(&options.columns, options.allow_extra_columns);
    let mut out = Collector::default();
    for path in paths {
        read_file(path, options, &names, &mut out);
    }
    out.finish()
}

/// The format a file's name promises; content can overrule it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Delimited,
    Xlsx,
    Yaml,
    Json,
}

fn format_of(path: &Path) -> Format {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("xlsx" | "xlsm") => Format::Xlsx,
        Some("yaml" | "yml") => Format::Yaml,
        Some("json") => Format::Json,
        // csv, tsv, txt, tab, and anything else: delimited text if it is text.
        _ => Format::Delimited,
    }
}

const WHAT_WE_READ: &str = "CSV/TSV text, an XLSX workbook, YAML or JSON";

fn read_file(path: &Path, options: &InputOptions, names: &ColumnNames, out: &mut Collector) {
    let file = path.display().to_string();
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) => {
            out.problem(Problem::new(file, format!("cannot read the file: {err}")));
            return;
        }
    };
    read_bytes(&file, format_of(path), bytes, options, names, out);
}

/// The staff file `name` from its bytes, as [`load_staff`] reads each file:
/// the fuzz targets feed it raw bytes without a file on disk.
#[doc(hidden)]
pub fn load_staff_bytes(
    name: &str,
    bytes: Vec<u8>,
    options: &InputOptions,
) -> Result<Vec<Person>, Problems> {
    let names = ColumnNames::new(&options.columns, options.allow_extra_columns);
    let mut out = Collector::default();
    read_bytes(
        name,
        format_of(Path::new(name)),
        bytes,
        options,
        &names,
        &mut out,
    );
    out.finish()
}

fn read_bytes(
    file: &str,
    format: Format,
    bytes: Vec<u8>,
    options: &InputOptions,
    names: &ColumnNames,
    out: &mut Collector,
) {
    let file = file.to_string();
    let text = match decode(&bytes) {
        // A workbook is read as one whatever its name says.
        Content::Zip => {
            xlsx::read(&file, bytes, options.sheet.as_deref(), names, out);
            return;
        }
        Content::OldExcel => {
            out.problem(
                Problem::new(
                    file,
                    "an old Excel .xls workbook, which homebase does not read",
                )
                .expected("the list saved as .xlsx or CSV"),
            );
            return;
        }
        Content::Empty => {
            let expected = match format {
                Format::Yaml | Format::Json => structured::EMPTY_EXPECTED,
                Format::Delimited | Format::Xlsx => delimited::EMPTY_EXPECTED,
            };
            out.problem(Problem::new(file, "file is empty").expected(expected));
            return;
        }
        Content::Binary { line, byte } => {
            out.problem(
                Problem::new(
                    file,
                    format!("not a text file: it holds the byte 0x{byte:02X}"),
                )
                .at_line(line)
                .expected(WHAT_WE_READ),
            );
            return;
        }
        Content::Text(_) if format == Format::Xlsx => {
            out.problem(
                Problem::new(file, "not an XLSX workbook: the file holds text")
                    .expected("a workbook, or the file named .csv, .yaml or .json as it is"),
            );
            return;
        }
        Content::Text(text) => text,
    };
    match format {
        Format::Yaml => structured::read_yaml(&file, &text, names, out),
        Format::Json => structured::read_json(&file, &text, names, out),
        Format::Delimited | Format::Xlsx => delimited::read(&file, &text, names, out),
    }
}
