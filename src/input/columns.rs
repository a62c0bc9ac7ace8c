//! Header → field: the names HR tools give columns, in English and German,
//! and the `columns:` mapping of the configuration, which wins over them.

use std::collections::{BTreeMap, HashMap};

use super::person::Field;
use crate::error::{Problem, Problems};

/// Header names each field is known by, as people write them. They are
/// compared by [`match_key`]: case, spaces and punctuation do not matter, so
/// `E-Mail`, `e_mail` and `EMAIL` are one name, as are `Vorgesetzte(r)` and
/// `Vorgesetzter`.
pub(super) const ALIASES: &[(Field, &[&str])] = &[
    (
        Field::Id,
        &[
            "id",
            "employee_id",
            "employee_number",
            "staff_id",
            "personnel_number",
            "Personalnummer",
            "Personal-Nr.",
            "PersNr",
            "Mitarbeiternummer",
        ],
    ),
    (
        Field::GivenName,
        &["given_name", "first_name", "forename", "Vorname"],
    ),
    (
        Field::FamilyName,
        &[
            "family_name",
            "last_name",
            "surname",
            "Nachname",
            "Familienname",
        ],
    ),
    (
        Field::Email,
        &[
            "email",
            "mail",
            "email_address",
            "E-Mail-Adresse",
            "Mailadresse",
        ],
    ),
    (
        Field::Department,
        &[
            "department",
            "dept",
            "Abteilung",
            "Organisationseinheit",
            "OE",
        ],
    ),
    (Field::Profile, &["profile", "Profil"]),
    (
        Field::Phone,
        &[
            "phone",
            "phone_number",
            "telephone",
            "Telefon",
            "Telefonnummer",
            "Tel.",
        ],
    ),
    (
        Field::Location,
        &["location", "site", "Standort", "Dienstort", "Arbeitsort"],
    ),
    (
        Field::Manager,
        &[
            "manager",
            "supervisor",
            "Vorgesetzte(r)",
            "Vorgesetzte",
            "Führungskraft",
        ],
    ),
    (
        Field::Start,
        &[
            "start",
            "start_date",
            "Eintritt",
            "Eintrittsdatum",
            "Homeoffice ab",
            "Beginn",
        ],
    ),
    (
        Field::End,
        &[
            "end",
            "end_date",
            "Austritt",
            "Austrittsdatum",
            "Homeoffice bis",
            "Ende",
        ],
    ),
];

/// The comparison key of a header: its letters and digits, lowercased.
pub(super) fn match_key(header: &str) -> String {
    header
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// A header as written, without surrounding white space or a stray BOM.
pub(super) fn clean_header(header: &str) -> &str {
    header.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
}

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    Field(Field),
    /// Kept in `Person::extra` under the header.
    Extra,
    /// No header: a value here is a problem.
    Unnamed,
    /// A second column for a field or name, already reported at the header.
    Duplicate,
}

#[derive(Debug, Clone)]
pub(super) struct Header {
    /// As written in the file, trimmed.
    pub name: String,
    pub slot: Slot,
}

/// How a file's records are laid out: columns of a table, or keys of a
/// YAML/JSON mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    /// CSV/TSV: columns are numbered, and a missing column is reported once.
    Delimited,
    /// XLSX: columns have letters, counted from the sheet column of the
    /// first header (tables need not start in A); a missing column is reported once.
    Sheet { first_column: usize },
    /// YAML/JSON: each record has its own keys; missing ones are reported per record.
    Keys,
}

/// The columns of one table (or the keys of one record) and the fields they map to.
#[derive(Debug, Clone)]
pub(super) struct Columns {
    pub headers: Vec<Header>,
    fields: [Option<usize>; Field::ALL.len()],
    pub layout: Layout,
}

impl Columns {
    /// The index of the column holding `field`, if the table has one.
    pub(super) fn index(&self, field: Field) -> Option<usize> {
        self.fields[field as usize]
    }

    /// How to name a column that has no header: "column 4" or "column D".
    pub(super) fn position_name(&self, index: usize) -> String {
        match self.layout {
            Layout::Sheet { first_column } => {
                format!("column {}", column_letters(first_column + index))
            }
            Layout::Delimited | Layout::Keys => format!("column {}", index + 1),
        }
    }
}

/// Spreadsheet column letters for a 0-based index: 0 → A, 26 → AA.
pub(super) fn column_letters(index: usize) -> String {
    let mut letters = Vec::new();
    let mut n = index + 1;
    while n > 0 {
        let rem = (n - 1) % 26;
        letters.push(b'A' + rem as u8);
        n = (n - 1) / 26;
    }
    letters.reverse();
    String::from_utf8_lossy(&letters).into_owned()
}

/// The names columns are known by: aliases and the configuration's `columns:`.
#[derive(Debug, Clone)]
pub(super) struct ColumnNames {
    /// From `columns:`, by lowercased trimmed header.
    configured: HashMap<String, Field>,
    /// Built-in aliases, by [`match_key`].
    aliases: HashMap<String, Field>,
    /// Unknown headers are kept as extra columns even when they look like a
    /// misspelt known one (`--allow-extra-columns`).
    allow_extra: bool,
}

/// How a header came to its field; a configured name outranks an alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Alias,
    Configured,
}

/// Give `field` to column `index` unless another column has it. A configured
/// name outranks an alias, which then stays an ordinary (extra) column; two
/// names of the same rank conflict, and the other column's index is returned.
fn claim(
    columns: &mut Columns,
    sources: &mut [Option<Source>; Field::ALL.len()],
    index: usize,
    field: Field,
    source: Source,
) -> Result<Slot, usize> {
    let slot = field as usize;
    match (columns.fields[slot], sources[slot], source) {
        (Some(_), Some(Source::Configured), Source::Alias) => return Ok(Slot::Extra),
        (Some(other), Some(Source::Alias), Source::Configured) => {
            columns.headers[other].slot = Slot::Extra;
        }
        (Some(other), ..) => return Err(other),
        (None, ..) => {}
    }
    columns.fields[slot] = Some(index);
    sources[slot] = Some(source);
    Ok(Slot::Field(field))
}

impl ColumnNames {
    pub(super) fn new(configured: &BTreeMap<String, Field>, allow_extra: bool) -> Self {
        let configured = configured
            .iter()
            .map(|(name, field)| (clean_header(name).to_lowercase(), *field))
            .collect();
        let mut aliases = HashMap::new();
        for (field, names) in ALIASES {
            for name in *names {
                aliases.insert(match_key(name), *field);
            }
        }
        ColumnNames {
            configured,
            aliases,
            allow_extra,
        }
    }

    fn lookup(&self, header: &str) -> Option<(Field, Source)> {
        if let Some(field) = self.configured.get(&header.to_lowercase()) {
            return Some((*field, Source::Configured));
        }
        self.aliases
            .get(&match_key(header))
            .map(|field| (*field, Source::Alias))
    }

    /// Map the headers of a table (or the keys of a record) to fields. Problems
    /// with the headers themselves are reported at `line`: two columns for one
    /// field, a header written twice, a required field without a column.
    pub(super) fn map<'h>(
        &self,
        file: &str,
        line: usize,
        headers: impl IntoIterator<Item = &'h str>,
        layout: Layout,
        problems: &mut Problems,
    ) -> Columns {
        let mut columns = Columns {
            headers: Vec::new(),
            fields: [None; Field::ALL.len()],
            layout,
        };
        let mut sources: [Option<Source>; Field::ALL.len()] = [None; Field::ALL.len()];
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (index, raw) in headers.into_iter().enumerate() {
            let name = clean_header(raw);
            let slot = if name.is_empty() {
                Slot::Unnamed
            } else if let Some(&first) = seen.get(&name.to_lowercase()) {
                problems.push(
                    Problem::new(
                        file,
                        format!(
                            "header appears twice (also {})",
                            columns.position_name(first)
                        ),
                    )
                    .at_line(line)
                    .column(name)
                    .expected("each header once"),
                );
                Slot::Duplicate
            } else {
                seen.insert(name.to_lowercase(), index);
                match self.lookup(name) {
                    None => Slot::Extra,
                    Some((field, source)) => {
                        match claim(&mut columns, &mut sources, index, field, source) {
                            Ok(slot) => slot,
                            Err(other) => {
                                problems.push(
                                Problem::new(
                                    file,
                                    format!(
                                        "means {} like column \"{}\"",
                                        field.name(),
                                        columns.headers[other].name
                                    ),
                                )
                                .at_line(line)
                                .column(name)
                                .expected(format!(
                                    "one column for {}; name the one to use under `columns:` in the configuration",
                                    field.name()
                                )),
                            );
                                Slot::Duplicate
                            }
                        }
                    }
                }
            };
            columns.headers.push(Header {
                name: name.to_string(),
                slot,
            });
        }
        if layout != Layout::Keys {
            self.report_missing(file, line, &columns, problems);
        }
        if !self.allow_extra {
            self.report_near_misses(file, line, &columns, problems);
        }
        columns
    }

    /// An unknown header one typo away from the name of a field no other
    /// column holds is almost always that field misspelt (`departmnt`,
    /// `emial`): read as an extra column, it would silently drop the field
    /// for every person. Refused with a did-you-mean, unless the admin allows
    /// extra columns.
    fn report_near_misses(
        &self,
        file: &str,
        line: usize,
        columns: &Columns,
        problems: &mut Problems,
    ) {
        for header in &columns.headers {
            if header.slot != Slot::Extra || self.lookup(&header.name).is_some() {
                continue;
            }
            let Some((name, field)) = self.near_miss(&header.name) else {
                continue;
            };
            if columns.index(field).is_some() {
                continue;
            }
            let meaning = if match_key(&name) == match_key(field.name()) {
                String::new()
            } else {
                format!(" ({})", field.name())
            };
            problems.push(
                Problem::new(
                    file,
                    format!("not a known column; did you mean \"{name}\"{meaning}?"),
                )
                .at_line(line)
                .column(header.name.as_str())
                .expected(
                    "a header homebase knows, a `columns:` entry for it, or --allow-extra-columns to keep it as an extra column",
                ),
            );
        }
    }

    /// The known name (configured or built-in) closest to `header`, if it is
    /// a plausible typo of it. Headers of fewer than four letters are too
    /// short to tell a typo from another word.
    fn near_miss(&self, header: &str) -> Option<(String, Field)> {
        let key = match_key(header);
        if key.chars().count() < 4 {
            return None;
        }
        let mut known: Vec<(String, String, Field)> = self
            .configured
            .iter()
            .map(|(name, field)| (match_key(name), name.clone(), *field))
            .collect();
        for (field, names) in ALIASES {
            for name in *names {
                known.push((match_key(name), (*name).to_string(), *field));
            }
        }
        let keys: Vec<&str> = known.iter().map(|(k, _, _)| k.as_str()).collect();
        let closest = crate::profile::closest(&key, keys)?;
        known
            .iter()
            .find(|(k, _, _)| k == closest)
            .map(|(_, name, field)| (name.clone(), *field))
    }

    /// A required field without a column is reported once, naming the headers found.
    fn report_missing(&self, file: &str, line: usize, columns: &Columns, problems: &mut Problems) {
        for field in Field::ALL.into_iter().filter(|f| f.required()) {
            if columns.index(field).is_some() {
                continue;
            }
            let found: Vec<String> = columns
                .headers
                .iter()
                .filter(|h| !h.name.is_empty())
                .map(|h| format!("\"{}\"", h.name))
                .collect();
            let found = if found.is_empty() {
                "no headers".to_string()
            } else {
                found.join(", ")
            };
            problems.push(
                Problem::new(file, format!("missing required column {}", field.name()))
                    .at_line(line)
                    .expected(format!(
                        "a header like {}; found {found}",
                        self.known_names(field)
                    )),
            );
        }
    }

    /// A few names `field` is known by, for messages: `"id", "Personalnummer"`.
    pub(super) fn known_names(&self, field: Field) -> String {
        let mut names: Vec<&str> = self
            .configured
            .iter()
            .filter(|(_, f)| **f == field)
            .map(|(name, _)| name.as_str())
            .collect();
        names.sort_unstable();
        let mut names: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
        names.push(aliases_of(field));
        names.join(", ")
    }
}

/// The built-in names of `field`, for messages: `"id", "Personalnummer", …`.
pub(super) fn aliases_of(field: Field) -> String {
    let aliases = ALIASES
        .iter()
        .find(|(f, _)| *f == field)
        .map_or(&[][..], |(_, aliases)| aliases);
    let quoted: Vec<String> = aliases.iter().map(|n| format!("\"{n}\"")).collect();
    quoted.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(headers: &[&str], configured: &[(&str, Field)]) -> (Columns, Vec<String>) {
        let configured = configured
            .iter()
            .map(|(name, field)| (name.to_string(), *field))
            .collect();
        let names = ColumnNames::new(&configured, false);
        let mut problems = Problems::default();
        let columns = names.map(
            "staff.csv",
            1,
            headers.iter().copied(),
            Layout::Delimited,
            &mut problems,
        );
        (
            columns,
            problems.0.iter().map(ToString::to_string).collect(),
        )
    }

    fn slots(columns: &Columns) -> Vec<Slot> {
        columns.headers.iter().map(|h| h.slot).collect()
    }

    #[test]
    fn english_names_and_variants() {
        let (columns, problems) = map(
            &[
                "ID",
                " First Name ",
                "lastname",
                "E-Mail",
                "Department",
                "profile",
                "Phone",
                "Location",
                "Manager",
                "Start",
                "END",
            ],
            &[],
        );
        assert!(problems.is_empty(), "{problems:?}");
        let expected: Vec<Slot> = Field::ALL.into_iter().map(Slot::Field).collect();
        assert_eq!(slots(&columns), expected);
        assert_eq!(columns.headers[1].name, "First Name");
    }

    #[test]
    fn a_misspelt_optional_column_is_refused_with_the_name_it_was_meant_to_be() {
        let (_, problems) = map(&["id", "given_name", "family_name", "departmnt"], &[]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("column \"departmnt\"")
                && problems[0].contains("did you mean \"department\"?"),
            "{problems:?}"
        );
        // Swapped letters count as one typo; a German alias is named with its field.
        let (_, problems) = map(&["id", "Nachname", "emial", "Abteilnug"], &[]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems.iter().any(|p| p.contains("\"email\"?")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("\"Abteilung\" (department)?")),
            "{problems:?}"
        );
        // A configured name is a known name too.
        let (_, problems) = map(
            &["id", "family_name", "Kostenstele"],
            &[("Kostenstelle", Field::Department)],
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    #[test]
    fn extra_columns_that_resemble_nothing_missing_are_kept() {
        // Far from every name, too short to judge, or its field already has a column.
        let (columns, problems) = map(
            &[
                "id",
                "family_name",
                "Notizen",
                "PLZ",
                "email",
                "mail2",
                "Telefax",
                "Telefon",
            ],
            &[],
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(columns.headers[2].slot, Slot::Extra);
        assert_eq!(columns.headers[5].slot, Slot::Extra);
        assert_eq!(columns.headers[6].slot, Slot::Extra);
        // Allowed on request.
        let names = ColumnNames::new(&BTreeMap::new(), true);
        let mut problems = Problems::default();
        names.map(
            "staff.csv",
            1,
            ["id", "family_name", "departmnt"],
            Layout::Delimited,
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn german_aliases() {
        for (header, field) in [
            ("Personalnummer", Field::Id),
            ("Personal-Nr.", Field::Id),
            ("PersNr", Field::Id),
            ("Vorname", Field::GivenName),
            ("Nachname", Field::FamilyName),
            ("Familienname", Field::FamilyName),
            ("Abteilung", Field::Department),
            ("Organisationseinheit", Field::Department),
            ("E-Mail", Field::Email),
            ("E-Mail-Adresse", Field::Email),
            ("Telefon", Field::Phone),
            ("Telefonnummer", Field::Phone),
            ("Standort", Field::Location),
            ("Dienstort", Field::Location),
            ("Vorgesetzte(r)", Field::Manager),
            ("Vorgesetzter", Field::Manager),
            ("Führungskraft", Field::Manager),
            ("FÜHRUNGSKRAFT", Field::Manager),
            ("Profil", Field::Profile),
            ("Eintritt", Field::Start),
            ("Eintrittsdatum", Field::Start),
            ("Homeoffice ab", Field::Start),
            ("Austritt", Field::End),
            ("Homeoffice bis", Field::End),
            ("Home-Office bis", Field::End),
            ("Ende", Field::End),
        ] {
            let (columns, _) = map(&[header], &[]);
            assert_eq!(columns.headers[0].slot, Slot::Field(field), "{header}");
        }
    }

    #[test]
    fn unknown_and_unnamed_columns() {
        let (columns, problems) = map(&["id", "Nachname", "Kostenstelle", "", " "], &[]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            slots(&columns)[2..],
            [Slot::Extra, Slot::Unnamed, Slot::Unnamed]
        );
        assert_eq!(columns.headers[2].name, "Kostenstelle");
    }

    #[test]
    fn configured_names_win_over_aliases() {
        let (columns, problems) = map(
            &["Personalnummer", "Name", "Kennung", "Nachname"],
            &[("name", Field::FamilyName), ("KENNUNG ", Field::Id)],
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            slots(&columns),
            [
                Slot::Extra,
                Slot::Field(Field::FamilyName),
                Slot::Field(Field::Id),
                Slot::Extra
            ]
        );
        assert_eq!(columns.index(Field::Id), Some(2));
    }

    #[test]
    fn two_columns_for_one_field() {
        let (_, problems) = map(&["id", "Nachname", "Familienname"], &[]);
        assert_eq!(
            problems,
            ["staff.csv:1: column \"Familienname\": means family_name like column \"Nachname\" \
              (expected one column for family_name; name the one to use under `columns:` in the configuration)"]
        );
    }

    #[test]
    fn header_written_twice() {
        let (columns, problems) = map(&["id", "Nachname", "Notiz", "notiz"], &[]);
        assert_eq!(
            problems,
            ["staff.csv:1: column \"notiz\": header appears twice (also column 3) (expected each header once)"]
        );
        assert_eq!(columns.headers[3].slot, Slot::Duplicate);
    }

    #[test]
    fn missing_required_columns_name_the_headers_found() {
        let (_, problems) = map(&["Vorname", "E-Mail"], &[]);
        assert_eq!(problems.len(), 2);
        assert!(problems[0].starts_with(
            "staff.csv:1: missing required column id (expected a header like \"id\", "
        ));
        assert!(problems[0].ends_with("; found \"Vorname\", \"E-Mail\")"));
        assert!(problems[1].starts_with("staff.csv:1: missing required column family_name"));
        assert!(problems[1].contains("\"Nachname\""));
    }

    #[test]
    fn column_letters_like_a_spreadsheet() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(27), "AB");
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
    }
}
