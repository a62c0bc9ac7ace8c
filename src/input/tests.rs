//! End-to-end tests of `load_staff`: files written to a temp dir, read back,
//! and every problem checked by the exact text a user sees.

use std::path::PathBuf;

use chrono::NaiveDate;
use tempfile::TempDir;

use super::{load_staff, Field, InputOptions, Person};
use crate::error::Problem;

/// A temp dir of staff files; problems are shown relative to it.
struct Files {
    dir: TempDir,
    paths: Vec<PathBuf>,
}

impl Files {
    fn new() -> Self {
        Files {
            dir: tempfile::tempdir().expect("temp dir"),
            paths: Vec::new(),
        }
    }

    fn add(mut self, name: &str, bytes: impl AsRef<[u8]>) -> Self {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).expect("write test file");
        self.paths.push(path);
        self
    }

    fn add_xlsx(mut self, name: &str, build: impl FnOnce(&mut rust_xlsxwriter::Workbook)) -> Self {
        let path = self.dir.path().join(name);
        let mut workbook = rust_xlsxwriter::Workbook::new();
        build(&mut workbook);
        workbook.save(&path).expect("write test workbook");
        self.paths.push(path);
        self
    }

    fn load_with(&self, options: &InputOptions) -> Result<Vec<Person>, Vec<String>> {
        let prefix = format!("{}{}", self.dir.path().display(), std::path::MAIN_SEPARATOR);
        load_staff(&self.paths, options).map_err(|problems| {
            problems
                .0
                .iter()
                .map(|p| p.to_string().replace(&prefix, ""))
                .collect()
        })
    }

    fn load(&self) -> Result<Vec<Person>, Vec<String>> {
        self.load_with(&InputOptions::default())
    }

    fn persons(&self) -> Vec<Person> {
        self.load()
            .unwrap_or_else(|problems| panic!("unexpected problems:\n{}", problems.join("\n")))
    }

    fn problems(&self) -> Vec<String> {
        match self.load() {
            Ok(persons) => panic!("expected problems, got {} persons", persons.len()),
            Err(problems) => problems,
        }
    }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
}

/// Windows-1252 bytes for text that only uses Latin-1 letters.
fn cp1252(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).expect("Latin-1 test text"))
        .collect()
}

// ---------------------------------------------------------------------------
// Files that read

#[test]
fn german_excel_export() {
    // ";" delimiter, Windows-1252, CRLF, German headers, a quoted line break,
    // a quoted delimiter, doubled quotes, German dates, an unknown column.
    let text = "Personalnummer;Vorname;Nachname;E-Mail;Abteilung;Straße;Homeoffice ab;Homeoffice bis\r\n\
                1001;Jürgen;Müller;juergen.mueller@stadt.example;Bürgeramt;Hauptstraße 1;01.04.2026;30.9.2026\r\n\
                1002;Anna;\"Groß; Dr.\";anna.gross@stadt.example;Kämmerei;\"Am Ring 2\r\nHinterhaus\";2026-04-01;\r\n\
                1003; Eva ;\"Meier \"\"die Ältere\"\"\";;;;;\r\n";
    let files = Files::new().add("Mitarbeiter.csv", cp1252(text));
    let persons = files.persons();
    assert_eq!(persons.len(), 3);

    let muller = &persons[0];
    assert_eq!(muller.id, "1001");
    assert_eq!(muller.given_name, "Jürgen");
    assert_eq!(muller.family_name, "Müller");
    assert_eq!(
        muller.email.as_deref(),
        Some("juergen.mueller@stadt.example")
    );
    assert_eq!(muller.department.as_deref(), Some("Bürgeramt"));
    assert_eq!(muller.start, Some(date(2026, 4, 1)));
    assert_eq!(muller.end, Some(date(2026, 9, 30)));
    assert_eq!(
        muller.extra.get("Straße").map(String::as_str),
        Some("Hauptstraße 1")
    );
    assert_eq!(muller.origin.line, 2);
    assert!(muller.origin.file.ends_with("Mitarbeiter.csv"));

    let gross = &persons[1];
    assert_eq!(gross.family_name, "Groß; Dr.");
    assert_eq!(gross.extra["Straße"], "Am Ring 2\r\nHinterhaus");
    assert_eq!(gross.end, None);
    assert_eq!(gross.origin.line, 3);

    let meier = &persons[2];
    assert_eq!(meier.given_name, "Eva");
    assert_eq!(meier.family_name, "Meier \"die Ältere\"");
    assert_eq!(meier.email, None);
    assert_eq!(meier.department, None);
    assert_eq!(meier.extra["Straße"], "");
    // The quoted line break moved this record one line down.
    assert_eq!(meier.origin.line, 5);
}

#[test]
fn utf8_with_and_without_bom_comma_and_lf() {
    let body = "id,given_name,family_name,email\n7,Zoë,Ångström,zoe@example.org\n";
    for bytes in [
        body.as_bytes().to_vec(),
        [b"\xEF\xBB\xBF".as_slice(), body.as_bytes()].concat(),
    ] {
        let persons = Files::new().add("staff.csv", bytes).persons();
        assert_eq!(persons.len(), 1);
        assert_eq!(persons[0].id, "7");
        assert_eq!(persons[0].given_name, "Zoë");
        assert_eq!(persons[0].family_name, "Ångström");
    }
}

#[test]
fn excel_unicode_text_is_utf16_with_tabs() {
    let mut bytes = vec![0xFF, 0xFE];
    for unit in
        "Personalnummer\tNachname\tTelefon\r\n42\tŁukasiewicz\t+49 30 1234\r\n".encode_utf16()
    {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    let persons = Files::new().add("staff.txt", bytes).persons();
    assert_eq!(persons[0].family_name, "Łukasiewicz");
    assert_eq!(persons[0].phone.as_deref(), Some("+49 30 1234"));
    assert_eq!(persons[0].origin.line, 2);
}

#[test]
fn tsv_and_excel_sep_line() {
    let persons = Files::new()
        .add("a.tsv", "id\tfamily_name\tnote\n1\tA, B\tx;y\n")
        .add("b.csv", "sep=;\r\nid;family_name\r\n2;C, D\r\n")
        .persons();
    assert_eq!(persons[0].family_name, "A, B");
    assert_eq!(persons[0].extra["note"], "x;y");
    assert_eq!(persons[1].family_name, "C, D");
    assert_eq!(persons[1].origin.line, 3);
}

#[test]
fn blank_lines_and_rows_of_delimiters_are_skipped_and_lines_still_count() {
    let text = "\r\nid;family_name;x;;\r\n\r\n1;A;;;\r\n;;;;\r\n2;B;;;\r\n";
    let persons = Files::new().add("staff.csv", text).persons();
    let lines: Vec<usize> = persons.iter().map(|p| p.origin.line).collect();
    assert_eq!(lines, [4, 6]);
    // Columns without a header are dropped when they hold nothing.
    assert_eq!(persons[0].extra.keys().collect::<Vec<_>>(), ["x"]);
}

#[test]
fn old_mac_line_endings() {
    let persons = Files::new()
        .add("staff.csv", "id,family_name\r1,A\r2,B\r")
        .persons();
    let lines: Vec<usize> = persons.iter().map(|p| p.origin.line).collect();
    assert_eq!(lines, [2, 3]);
}

#[test]
fn names_are_data() {
    let text = "id,given_name,family_name,department,manager\n\
                1,{{ 7*7 }},\"Hans*)(uid=*\",../../etc/passwd,\"=HYPERLINK(\"\"x\"\")\"\n\
                2,\"Müller, Jürgen\",'; DROP TABLE staff;--,<script>alert(1)</script>,@SUM(A1)\n";
    let persons = Files::new().add("staff.csv", text).persons();
    assert_eq!(persons[0].given_name, "{{ 7*7 }}");
    assert_eq!(persons[0].family_name, "Hans*)(uid=*");
    assert_eq!(persons[0].department.as_deref(), Some("../../etc/passwd"));
    assert_eq!(persons[0].manager.as_deref(), Some("=HYPERLINK(\"x\")"));
    assert_eq!(persons[1].given_name, "Müller, Jürgen");
    assert_eq!(persons[1].family_name, "'; DROP TABLE staff;--");
    assert_eq!(
        persons[1].department.as_deref(),
        Some("<script>alert(1)</script>")
    );
    assert_eq!(persons[1].manager.as_deref(), Some("@SUM(A1)"));
}

#[test]
fn all_fields_and_the_profile_unchecked() {
    let text = "ID,First Name,Last Name,Mail,Department,Profile,Phone,Location,Manager,Start,End,Cost centre\n\
                 A-1 , Ann , Lee , ann@example.org , IT , no-such-profile , 123 , Berlin , Bob , 2026-04-01 , 2026-12-31 , 4711 \n";
    let persons = Files::new().add("staff.csv", text).persons();
    let p = &persons[0];
    assert_eq!(
        (p.id.as_str(), p.given_name.as_str(), p.family_name.as_str()),
        ("A-1", "Ann", "Lee")
    );
    assert_eq!(p.email.as_deref(), Some("ann@example.org"));
    assert_eq!(p.profile.as_deref(), Some("no-such-profile"));
    assert_eq!(p.phone.as_deref(), Some("123"));
    assert_eq!(p.location.as_deref(), Some("Berlin"));
    assert_eq!(p.manager.as_deref(), Some("Bob"));
    assert_eq!(
        (p.start, p.end),
        (Some(date(2026, 4, 1)), Some(date(2026, 12, 31)))
    );
    assert_eq!(p.extra["Cost centre"], "4711");
}

#[test]
fn configured_columns_win() {
    let files = Files::new().add("staff.csv", "Kennung;Name;Nachname\nk1;Lee;ignored\n");
    let options = InputOptions {
        columns: [
            ("kennung".to_string(), Field::Id),
            ("Name".to_string(), Field::FamilyName),
        ]
        .into_iter()
        .collect(),
        ..InputOptions::default()
    };
    let persons = files.load_with(&options).expect("loads");
    assert_eq!(persons[0].id, "k1");
    assert_eq!(persons[0].family_name, "Lee");
    assert_eq!(persons[0].extra["Nachname"], "ignored");
}

#[test]
fn unknown_extension_is_sniffed_and_a_workbook_is_read_as_one() {
    let files = Files::new()
        .add("export.dat", "id;family_name\n1;A\n")
        .add_xlsx("named-wrong.csv", |book| {
            let sheet = book.add_worksheet();
            sheet.write_string(0, 0, "id").expect("cell");
            sheet.write_string(0, 1, "family_name").expect("cell");
            sheet.write_string(1, 0, "2").expect("cell");
            sheet.write_string(1, 1, "B").expect("cell");
        });
    let persons = files.persons();
    assert_eq!(persons.len(), 2);
    assert_eq!(persons[1].family_name, "B");
}

// ---------------------------------------------------------------------------
// XLSX

#[test]
fn xlsx_sheet_with_dates_numbers_and_row_numbers() {
    use rust_xlsxwriter::{ExcelDateTime, Format};
    let files = Files::new().add_xlsx("staff.xlsx", |book| {
        let first = book.add_worksheet();
        first.set_name("Deckblatt").expect("name");
        first
            .write_string(0, 0, "not the staff list")
            .expect("cell");
        let sheet = book.add_worksheet();
        sheet.set_name("Personal").expect("name");
        let date_format = Format::new().set_num_format("dd.mm.yyyy");
        // The table starts at B3: row numbers and letters are the sheet's.
        for (col, header) in [
            "Personalnummer",
            "Vorname",
            "Nachname",
            "Eintritt",
            "Austritt",
            "Telefon",
        ]
        .iter()
        .enumerate()
        {
            sheet
                .write_string(2, col as u16 + 1, *header)
                .expect("cell");
        }
        sheet.write_number(3, 1, 1001.0).expect("cell");
        sheet.write_string(3, 2, "Jürgen").expect("cell");
        sheet.write_string(3, 3, "Müller, Jürgen").expect("cell");
        let start = ExcelDateTime::from_ymd(2026, 4, 1).expect("date");
        sheet
            .write_datetime_with_format(3, 4, &start, &date_format)
            .expect("cell");
        sheet.write_string(3, 5, "31.12.2026").expect("cell");
        sheet.write_number(3, 6, 4930123456.0).expect("cell");
        sheet.write_string(5, 1, "1002").expect("cell");
        sheet.write_string(5, 3, "=HYPERLINK(\"x\")").expect("cell");
    });
    let options = InputOptions {
        sheet: Some("personal".to_string()),
        ..InputOptions::default()
    };
    let persons = files.load_with(&options).expect("loads");
    assert_eq!(persons.len(), 2);
    let p = &persons[0];
    assert_eq!(p.id, "1001");
    assert_eq!(p.family_name, "Müller, Jürgen");
    assert_eq!(p.start, Some(date(2026, 4, 1)));
    assert_eq!(p.end, Some(date(2026, 12, 31)));
    assert_eq!(p.phone.as_deref(), Some("4930123456"));
    assert_eq!(p.origin.line, 4);
    assert_eq!(persons[1].family_name, "=HYPERLINK(\"x\")");
    assert_eq!(persons[1].origin.line, 6);
}

#[test]
fn xlsx_problems_name_row_and_header() {
    use rust_xlsxwriter::{ExcelDateTime, Format, Formula};
    let files = Files::new().add_xlsx("staff.xlsx", |book| {
        let sheet = book.add_worksheet();
        let date_format = Format::new().set_num_format("yyyy-mm-dd");
        for (col, header) in ["id", "family_name", "start", "end"].iter().enumerate() {
            sheet.write_string(0, col as u16, *header).expect("cell");
        }
        sheet.write_number(1, 0, 1.0).expect("cell");
        sheet.write_string(1, 1, "A").expect("cell");
        let start = ExcelDateTime::from_ymd(2026, 5, 1).expect("date");
        let end = ExcelDateTime::from_ymd(2026, 4, 1).expect("date");
        sheet
            .write_datetime_with_format(1, 2, &start, &date_format)
            .expect("cell");
        sheet
            .write_datetime_with_format(1, 3, &end, &date_format)
            .expect("cell");
        sheet.write_number(2, 0, 2.0).expect("cell");
        sheet
            .write_formula(2, 1, Formula::new("=VLOOKUP(1,A1:A2,3)").set_result("#N/A"))
            .expect("cell");
        sheet.write_number(3, 0, 3.0).expect("cell");
        sheet.write_string(3, 1, "C").expect("cell");
        sheet.write_string(3, 5, "stray note").expect("cell");
    });
    assert_eq!(
        files.problems(),
        [
            "staff.xlsx:2: column \"end\": end 2026-04-01 is before the start 2026-05-01 (column \"start\") \
             (expected an end on or after the start)",
            "staff.xlsx:3: column \"family_name\": the cell holds the error #N/A (expected a value, not a formula error)",
            "staff.xlsx:4: value \"stray note\" in column F, which has no header \
             (expected a header above every column that holds values)",
        ]
    );
}

#[test]
fn xlsx_table_away_from_a1_names_sheet_columns() {
    let files = Files::new().add_xlsx("staff.xlsx", |book| {
        let sheet = book.add_worksheet();
        sheet.write_string(1, 2, "id").expect("cell");
        sheet.write_string(1, 3, "family_name").expect("cell");
        sheet.write_string(1, 4, "Notiz").expect("cell");
        sheet.write_string(1, 6, "notiz").expect("cell");
        sheet.write_string(2, 2, "1").expect("cell");
        sheet.write_string(2, 3, "A").expect("cell");
        sheet.write_string(2, 5, "stray").expect("cell");
    });
    assert_eq!(
        files.problems(),
        [
            "staff.xlsx:2: column \"notiz\": header appears twice (also column E) (expected each header once)",
            "staff.xlsx:3: value \"stray\" in column F, which has no header \
             (expected a header above every column that holds values)",
        ]
    );
}

#[test]
fn xlsx_unknown_sheet_lists_the_sheets() {
    let files = Files::new().add_xlsx("staff.xlsx", |book| {
        book.add_worksheet().set_name("Tabelle1").expect("name");
        book.add_worksheet().set_name("Tabelle2").expect("name");
    });
    let options = InputOptions {
        sheet: Some("Personal".to_string()),
        ..InputOptions::default()
    };
    assert_eq!(
        files.load_with(&options).expect_err("no such sheet"),
        ["staff.xlsx: no sheet \"Personal\" (expected one of the sheets \"Tabelle1\", \"Tabelle2\")"]
    );
}

#[test]
fn xlsx_empty_sheet_and_not_a_workbook() {
    let files = Files::new()
        .add_xlsx("empty.xlsx", |book| {
            book.add_worksheet();
        })
        .add("text.xlsx", "id,family_name\n1,A\n")
        .add("broken.xlsx", b"PK\x03\x04 not really a zip");
    let problems = files.problems();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].starts_with("broken.xlsx: not a readable XLSX workbook: "));
    assert_eq!(
        problems[1],
        "empty.xlsx: sheet \"Sheet1\" is empty (expected a header row and a row per person)"
    );
    assert_eq!(
        problems[2],
        "text.xlsx: not an XLSX workbook: the file holds text \
         (expected a workbook, or the file named .csv, .yaml or .json as it is)"
    );
}

// ---------------------------------------------------------------------------
// YAML and JSON

#[test]
fn yaml_list_with_lines_and_merge_keys() {
    let text = "# staff\n\
                - id: 1001\n  Vorname: Jürgen\n  Nachname: Müller\n  Eintritt: 01.04.2026\n  Raum: 12\n\
                - &common\n  id: \"0042\"\n  family_name: \"{{ 7*7 }}\"\n  department: IT\n  end: 2026-12-31\n  phone: null\n\
                \n\
                - <<: *common\n  id: 43\n";
    let persons = Files::new().add("staff.yaml", text).persons();
    assert_eq!(persons.len(), 3);
    assert_eq!(persons[0].id, "1001");
    assert_eq!(persons[0].given_name, "Jürgen");
    assert_eq!(persons[0].start, Some(date(2026, 4, 1)));
    assert_eq!(persons[0].extra["Raum"], "12");
    assert_eq!(persons[0].origin.line, 2);
    assert_eq!(persons[1].id, "0042");
    assert_eq!(persons[1].family_name, "{{ 7*7 }}");
    assert_eq!(persons[1].end, Some(date(2026, 12, 31)));
    assert_eq!(persons[1].phone, None);
    assert_eq!(persons[1].origin.line, 7);
    assert_eq!(persons[2].id, "43");
    assert_eq!(persons[2].department.as_deref(), Some("IT"));
    assert_eq!(persons[2].origin.line, 14);
}

#[test]
fn yaml_scalars_are_kept_as_written() {
    let text =
        "- id: 0042\n  family_name: 1.50\n  phone: +4930123456\n  Raum: 0x1F\n  active: true\n\
                - <<: {department: 007}\n  id: 43\n  family_name: B\n";
    let persons = Files::new().add("staff.yaml", text).persons();
    assert_eq!(persons[0].id, "0042");
    assert_eq!(persons[0].family_name, "1.50");
    assert_eq!(persons[0].phone.as_deref(), Some("+4930123456"));
    assert_eq!(persons[0].extra["Raum"], "0x1F");
    assert_eq!(persons[0].extra["active"], "true");
    // Merge keys still work beside the literal reading.
    assert_eq!(persons[1].department.as_deref(), Some("007"));
}

#[test]
fn yaml_problems_have_item_lines_and_keys() {
    let text = "- id: 1\n  family_name: A\n  email: a(at)example.org\n\
                - id: 2\n  Vorname: B\n\
                - just text\n\
                - id: 3\n  family_name: C\n  groups: [a, b]\n";
    assert_eq!(
        Files::new().add("staff.yml", text).problems(),
        [
            "staff.yml:1: column \"email\": \"a(at)example.org\" is not an email address: no @ \
             (expected an address like name@example.org)",
            "staff.yml:4: missing required key family_name (expected a key like \"family_name\", \"last_name\", \
             \"surname\", \"Nachname\", \"Familienname\")",
            "staff.yml:6: a person is a mapping of column names to values, not text (expected keys like id: and family_name:)",
            "staff.yml:7: column \"groups\": a list or mapping is not a value (expected text, a number or a date)",
        ]
    );
}

#[test]
fn yaml_syntax_error_has_line_and_column() {
    let text = "- id: 1\n  family_name: A\n - id: 2\n";
    let problems = Files::new().add("staff.yaml", text).problems();
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].starts_with("staff.yaml:3: not valid YAML: "),
        "{problems:?}"
    );
    assert!(problems[0].contains("line 3 column 2"), "{problems:?}");
}

#[test]
fn yaml_that_is_not_a_list() {
    assert_eq!(
        Files::new()
            .add("staff.yaml", "# comment\nstaff:\n  - id: 1\n")
            .problems(),
        [
            "staff.yaml:2: a list of persons is expected, not a mapping \
          (expected a YAML list of mappings, one per person (- id: 1001))"
        ]
    );
    assert_eq!(
        Files::new().add("staff.yaml", "[]\n").problems(),
        ["staff.yaml:1: the list of persons is empty (expected one entry per person)"]
    );
}

#[test]
fn json_list_with_lines() {
    let text = "[\n  {\"id\": 1001, \"family_name\": \"Müller\", \"start\": \"2026-04-01\"},\n  {\n    \"id\": \"1002\",\n    \"Nachname\": \"Schmidt\",\n    \"end\": \"31.02.2026\"\n  }\n]\n";
    assert_eq!(
        Files::new().add("staff.json", text).problems(),
        ["staff.json:3: column \"end\": no such date 31.02.2026 (February 2026 has 28 days) (expected a date that exists)"]
    );
    let good = "[{\"id\": 1.0, \"family_name\": \"A\", \"active\": true}]";
    let persons = Files::new().add("staff.json", good).persons();
    assert_eq!(persons[0].id, "1");
    assert_eq!(persons[0].extra["active"], "true");
}

#[test]
fn json_syntax_error_has_line_and_column() {
    let text = "[\n  {\"id\": 1,\n   \"family_name\": \"A\",}\n]\n";
    assert_eq!(
        Files::new().add("staff.json", text).problems(),
        ["staff.json:3: not valid JSON: trailing comma at line 3 column 23"]
    );
}

// ---------------------------------------------------------------------------
// Every broken-file class, with its exact line and column

#[test]
fn problem_display_format() {
    let problem = Problem::new("staff.csv", "\"x\" is not a date")
        .at_line(4)
        .column("Eintritt")
        .expected("a date like 2026-03-31 or 31.03.2026");
    assert_eq!(
        problem.to_string(),
        "staff.csv:4: column \"Eintritt\": \"x\" is not a date (expected a date like 2026-03-31 or 31.03.2026)"
    );
    // And as load_staff produces it.
    let files = Files::new().add("staff.csv", "Personalnummer;Nachname;Eintritt\n1;A;x\n");
    assert_eq!(
        files.problems(),
        ["staff.csv:2: column \"Eintritt\": \"x\" is not a date (expected a date like 2026-03-31 or 31.03.2026)"]
    );
}

#[test]
fn duplicate_id_names_the_first_line() {
    let files = Files::new().add(
        "staff.csv",
        "Personalnummer;Nachname\n1001;A\n1002;B\n1001;C\n",
    );
    assert_eq!(
        files.problems(),
        ["staff.csv:4: column \"Personalnummer\": duplicate id \"1001\", first on line 2 (expected each id once)"]
    );
}

#[test]
fn duplicate_id_across_files() {
    let files = Files::new()
        .add("a.csv", "id,family_name\n1,A\n2,B\n")
        .add("b.csv", "PersNr;Nachname\n3;C\n2;D\n");
    assert_eq!(
        files.problems(),
        ["b.csv:3: column \"PersNr\": duplicate id \"2\", first in a.csv line 3 (expected each id once)"]
    );
}

#[test]
fn duplicate_email_ignores_case() {
    let files = Files::new().add(
        "staff.csv",
        "id,family_name,E-Mail\n1,A,anna@example.org\n2,B,\n3,C,\n4,D, Anna@Example.ORG \n",
    );
    assert_eq!(
        files.problems(),
        ["staff.csv:5: column \"E-Mail\": duplicate email \"Anna@Example.ORG\", first on line 2 \
          (expected each email once (case does not matter))"]
    );
}

#[test]
fn empty_required_fields() {
    let files = Files::new().add(
        "staff.csv",
        "Personalnummer;Vorname;Nachname\n ;Anna;A\n2;Bob;  \n",
    );
    assert_eq!(
        files.problems(),
        [
            "staff.csv:2: column \"Personalnummer\": id is empty (expected a value; id is required)",
            "staff.csv:3: column \"Nachname\": family_name is empty (expected a value; family_name is required)",
        ]
    );
}

#[test]
fn impossible_and_malformed_dates() {
    let files = Files::new().add(
        "staff.csv",
        "id;Nachname;Eintritt;Austritt\n1;A;31.02.2026;\n2;B;;März 2026\n3;C;01.01.0226;\n",
    );
    assert_eq!(
        files.problems(),
        [
            "staff.csv:2: column \"Eintritt\": no such date 31.02.2026 (February 2026 has 28 days) (expected a date that exists)",
            "staff.csv:3: column \"Austritt\": \"März 2026\" is not a date (expected a date like 2026-03-31 or 31.03.2026)",
            "staff.csv:4: column \"Eintritt\": 01.01.0226 is out of range (expected a year from 1900 to 2199)",
        ]
    );
}

#[test]
fn malformed_email() {
    let files = Files::new().add(
        "staff.csv",
        "id;Nachname;E-Mail-Adresse\n1;A;anna.example.org\n2;B;b@localhost\n",
    );
    assert_eq!(
        files.problems(),
        [
            "staff.csv:2: column \"E-Mail-Adresse\": \"anna.example.org\" is not an email address: no @ \
             (expected an address like name@example.org)",
            "staff.csv:3: column \"E-Mail-Adresse\": \"b@localhost\" is not an email address: the domain has no dot \
             (expected an address like name@example.org)",
        ]
    );
}

#[test]
fn short_and_long_rows() {
    let files = Files::new().add(
        "staff.csv",
        "id;Nachname;E-Mail;Abteilung\r\n1;A;a@example.org;IT\r\n2;B\r\n3;C;c@example.org;IT;extra\r\n4;D;;;\r\n",
    );
    assert_eq!(
        files.problems(),
        [
            "staff.csv:3: column \"E-Mail\": short row: 2 fields, the header has 4 (expected one field per column)",
            "staff.csv:4: long row: 5 fields, the header has 4 (expected one field per column; quote values that contain \";\")",
        ]
    );
}

#[test]
fn unterminated_quote_names_the_line_it_opens_on() {
    let files = Files::new().add(
        "staff.csv",
        "id,family_name,note\r\n1,A,x\r\n2,\"Müller, J.,y\r\n3,C,z\r\n4,D,w\r\n",
    );
    assert_eq!(
        files.problems(),
        ["staff.csv:3: column \"family_name\": unterminated quote: the quoted field starting here runs to the end of the file \
          (expected a closing \" (a quote inside a quoted value is written \"\"))"]
    );
}

#[test]
fn unterminated_quote_after_a_sep_line() {
    let files = Files::new().add("staff.csv", "sep=;\r\nid;family_name\r\n1;A\r\n2;\"B\r\n");
    assert_eq!(
        files.problems(),
        ["staff.csv:4: column \"family_name\": unterminated quote: the quoted field starting here runs to the end of the file \
          (expected a closing \" (a quote inside a quoted value is written \"\"))"]
    );
}

#[test]
fn short_row_names_the_first_missing_column_with_a_header() {
    let files = Files::new().add("staff.csv", "id;family_name;;note\n1;A\n2;B;;\n");
    assert_eq!(
        files.problems(),
        ["staff.csv:2: column \"note\": short row: 2 fields, the header has 4 (expected one field per column)"]
    );
}

#[test]
fn unterminated_quote_in_the_header() {
    let files = Files::new().add("staff.csv", "id,\"family_name\n1,A\n");
    assert_eq!(
        files.problems(),
        ["staff.csv:1: unterminated quote: the quoted field starting here runs to the end of the file \
          (expected a closing \" (a quote inside a quoted value is written \"\"))"]
    );
}

#[test]
fn empty_files() {
    let files = Files::new()
        .add("a-empty.csv", "")
        .add("b-bom.csv", b"\xEF\xBB\xBF\r\n")
        .add("c-header.csv", "id;Nachname\r\n")
        .add("d-delimiters.csv", ";;;\r\n;;;\r\n")
        .add("e-empty.yaml", "# nothing yet\n");
    assert_eq!(
        files.problems(),
        [
            "a-empty.csv: file is empty (expected a header line and a line per person)",
            "b-bom.csv: file is empty (expected a header line and a line per person)",
            "c-header.csv:1: no persons below the header (expected a line per person)",
            "d-delimiters.csv: file is empty (expected a header line and a line per person)",
            "e-empty.yaml: file is empty (expected a list of persons)",
        ]
    );
}

#[test]
fn binary_files() {
    let files = Files::new()
        .add("photo.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
        .add("nul.csv", b"id,family_name\n1,A\n2,B\x00\n")
        .add("old.xls", b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\x00\x00");
    assert_eq!(
        files.problems(),
        [
            "nul.csv:3: not a text file: it holds the byte 0x00 (expected CSV/TSV text, an XLSX workbook, YAML or JSON)",
            "old.xls: an old Excel .xls workbook, which homebase does not read (expected the list saved as .xlsx or CSV)",
            "photo.csv:3: not a text file: it holds the byte 0x00 (expected CSV/TSV text, an XLSX workbook, YAML or JSON)",
        ]
    );
}

#[test]
fn missing_required_column_lists_the_headers_found() {
    let files = Files::new().add("staff.csv", "Personalnummer;Vorname;Abteilung\n1;Anna;IT\n");
    let problems = files.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        problems[0],
        "staff.csv:1: missing required column family_name (expected a header like \"family_name\", \
         \"last_name\", \"surname\", \"Nachname\", \"Familienname\"; found \"Personalnummer\", \"Vorname\", \"Abteilung\")"
    );
}

#[test]
fn start_after_end() {
    let files = Files::new().add("staff.csv", "id;Nachname;Homeoffice ab;Homeoffice bis\n1;A;01.05.2026;30.04.2026\n2;B;1.5.2026;1.5.2026\n");
    assert_eq!(
        files.problems(),
        ["staff.csv:2: column \"Homeoffice bis\": end 2026-04-30 is before the start 2026-05-01 (column \"Homeoffice ab\") \
          (expected an end on or after the start)"]
    );
}

#[test]
fn value_under_no_header() {
    let files = Files::new().add("staff.csv", "id;Nachname;;x\n1;A;;\n2;B;oops;\n");
    assert_eq!(
        files.problems(),
        [
            "staff.csv:3: value \"oops\" in column 3, which has no header \
          (expected a header above every column that holds values)"
        ]
    );
}

#[test]
fn two_columns_for_one_field() {
    let files = Files::new().add("staff.csv", "id;Nachname;Familienname\n1;A;A\n");
    assert_eq!(
        files.problems(),
        ["staff.csv:1: column \"Familienname\": means family_name like column \"Nachname\" \
          (expected one column for family_name; name the one to use under `columns:` in the configuration)"]
    );
}

#[test]
fn line_break_inside_a_name() {
    let files = Files::new().add("staff.csv", "id,family_name\n1,\"A\nB\"\n2,C\n");
    assert_eq!(
        files.problems(),
        ["staff.csv:2: column \"family_name\": \"A\\nB\" contains a line break or control character \
          (expected a value on one line)"]
    );
}

#[test]
fn unreadable_files_are_problems_not_panics() {
    let files = Files::new().add("ok.csv", "id,family_name\n1,A\n");
    let mut paths = files.paths.clone();
    paths.push(files.dir.path().join("missing.csv"));
    paths.push(files.dir.path().to_path_buf());
    let problems = load_staff(&paths, &InputOptions::default()).expect_err("problems");
    assert_eq!(problems.len(), 2);
    let texts: Vec<String> = problems.0.iter().map(ToString::to_string).collect();
    assert!(
        texts.iter().any(|t| t.ends_with(
            "missing.csv: cannot read the file: No such file or directory (os error 2)"
        )),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.contains(": cannot read the file: ")),
        "{texts:?}"
    );
}

#[test]
fn every_problem_in_every_file_in_one_pass() {
    let files = Files::new()
        .add(
            "a.csv",
            "id;Nachname;E-Mail;Eintritt\n1;;x;31.02.2026\n1;B;;\n",
        )
        .add("b.csv", "")
        .add("c.yaml", "- id: 1\n  family_name: C\n");
    assert_eq!(
        files.problems(),
        [
            "a.csv:2: column \"E-Mail\": \"x\" is not an email address: no @ (expected an address like name@example.org)",
            "a.csv:2: column \"Eintritt\": no such date 31.02.2026 (February 2026 has 28 days) (expected a date that exists)",
            "a.csv:2: column \"Nachname\": family_name is empty (expected a value; family_name is required)",
            "a.csv:3: column \"id\": duplicate id \"1\", first on line 2 (expected each id once)",
            "b.csv: file is empty (expected a header line and a line per person)",
            "c.yaml:1: column \"id\": duplicate id \"1\", first in a.csv line 2 (expected each id once)",
        ]
    );
}

// ---------------------------------------------------------------------------
// Speed

/// `cargo test --release input::tests::ten_thousand_rows -- --ignored --nocapture`
#[test]
#[ignore = "timing; run with --release"]
fn ten_thousand_rows() {
    let mut text = String::from("Personalnummer;Vorname;Nachname;E-Mail;Abteilung;Standort;Eintritt;Austritt;Kostenstelle\r\n");
    for i in 0..10_000 {
        text.push_str(&format!(
            "{i};Vorname{i};\"Müller, {i}\";person{i}@stadt.example;Amt {};Haus {};01.04.2026;2026-12-31;{}\r\n",
            i % 40,
            i % 7,
            4000 + i % 100
        ));
    }
    let files = Files::new().add("big.csv", cp1252(&text));
    let started = std::time::Instant::now();
    let persons = files.persons();
    let elapsed = started.elapsed();
    assert_eq!(persons.len(), 10_000);
    println!("10,000 rows in {elapsed:?}");
}
