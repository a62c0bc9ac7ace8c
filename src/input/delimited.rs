//! CSV and TSV as HR tools and Excel write them: the delimiter (`,` `;` tab)
//! detected from the header, quoted fields with delimiters, doubled quotes and
//! line breaks, CRLF, Excel's `sep=;` first line, blank rows of delimiters.

use std::borrow::Cow;

use super::columns::{ColumnNames, Columns, Layout};
use super::decode::LineCounter;
use super::validate::{Collector, Value};
use crate::error::Problem;

/// The delimiters a staff list may use, in order of preference on a tie.
const CANDIDATES: [u8; 3] = [b',', b';', b'\t'];

/// What an empty delimited staff file should have held.
pub(super) const EMPTY_EXPECTED: &str = "a header line and a line per person";

/// Records looked at to choose the delimiter.
const SAMPLE_RECORDS: usize = 20;

/// Read a delimited text file into `out`.
pub(super) fn read(file: &str, text: &str, names: &ColumnNames, out: &mut Collector) {
    let (body, first_line, declared) = split_sep_line(text);
    let body = body.as_bytes();
    let delimiter = declared.unwrap_or_else(|| detect_delimiter(body));

    // The csv crate reads an unterminated quoted field to the end of the file
    // without complaint; find it first, and read only the records before it.
    let unterminated = scan(body, delimiter, |_| true);
    let readable = match &unterminated {
        Some(open) => &body[..open.record_start],
        None => body,
    };

    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(readable);
    let mut record = csv::StringRecord::new();
    let mut lines = LineCounter::starting_at(first_line);
    let mut counted = 0;
    let mut header: Option<(usize, Columns)> = None;
    let mut rows = 0;

    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(err) => {
                let line = err.position().map_or(lines.line, |p| p.line() as usize);
                out.problem(
                    Problem::new(file, format!("cannot read this line: {err}")).at_line(line),
                );
                return;
            }
        }
        if record.iter().all(|field| field.trim().is_empty()) {
            continue; // a blank row, or one of delimiters only
        }
        // The record's position is where the reader stopped after the previous
        // record; skip the line breaks between to find the line it starts on.
        let mut start = record.position().map_or(0, |p| p.byte() as usize);
        while matches!(readable.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        lines.advance(&readable[counted..start]);
        counted = start;
        let line = lines.line;

        let Some((_, columns)) = &header else {
            let columns = names.map(
                file,
                line,
                record.iter(),
                Layout::Delimited,
                &mut out.problems,
            );
            header = Some((line, columns));
            continue;
        };
        rows += 1;
        let width = columns.headers.len();
        if record.len() > width && record.iter().skip(width).any(|f| !f.trim().is_empty()) {
            out.problem(
                Problem::new(
                    file,
                    format!("long row: {} fields, the header has {width}", record.len()),
                )
                .at_line(line)
                .expected(format!(
                    "one field per column; quote values that contain {}",
                    delimiter_name(delimiter)
                )),
            );
            continue;
        }
        if record.len() < width {
            let mut problem = Problem::new(
                file,
                format!("short row: {} fields, the header has {width}", record.len()),
            )
            .at_line(line)
            .expected("one field per column");
            // Name the first missing column that has a header.
            if let Some(missing) = columns.headers[record.len()..]
                .iter()
                .find(|h| !h.name.is_empty())
            {
                problem = problem.column(&missing.name);
            }
            out.problem(problem);
        }
        let values: Vec<Value<'_>> = record
            .iter()
            .take(width)
            .map(|f| Value::Text(Cow::Borrowed(f)))
            .collect();
        out.add_row(file, line, columns, &values);
    }

    if let Some(open) = unterminated {
        let mut problem = Problem::new(
            file,
            "unterminated quote: the quoted field starting here runs to the end of the file",
        )
        .at_line(first_line - 1 + open.line)
        .expected("a closing \" (a quote inside a quoted value is written \"\")");
        if let Some((_, columns)) = &header {
            if let Some(h) = columns
                .headers
                .get(open.field)
                .filter(|h| !h.name.is_empty())
            {
                problem = problem.column(&h.name);
            }
        }
        out.problem(problem);
        return;
    }
    match header {
        None => out.problem(Problem::new(file, "file is empty").expected(EMPTY_EXPECTED)),
        Some((line, _)) if rows == 0 => out.problem(
            Problem::new(file, "no persons below the header")
                .at_line(line)
                .expected("a line per person"),
        ),
        Some(_) => {}
    }
}

/// Excel's `sep=;` first line names the delimiter. Returns the rest of the
/// text, the line it starts on, and the delimiter if one was named.
fn split_sep_line(text: &str) -> (&str, usize, Option<u8>) {
    let Some(rest) = text
        .strip_prefix("sep=")
        .or_else(|| text.strip_prefix("SEP="))
    else {
        return (text, 1, None);
    };
    let bytes = rest.as_bytes();
    match (bytes.first(), bytes.get(1)) {
        (Some(&delimiter), None | Some(b'\r' | b'\n')) if CANDIDATES.contains(&delimiter) => {
            let after = rest[1..]
                .strip_prefix("\r\n")
                .or_else(|| rest[1..].strip_prefix(['\n', '\r']));
            (after.unwrap_or(""), 2, Some(delimiter))
        }
        _ => (text, 1, None),
    }
}

fn delimiter_name(delimiter: u8) -> String {
    match delimiter {
        b'\t' => "a tab".to_string(),
        other => format!("\"{}\"", other as char),
    }
}

/// Pick the delimiter that splits the header into the most columns, among
/// those the following records agree with: for each candidate, count the
/// fields (outside quotes) of the first records. A candidate is consistent
/// when at least half of the records after the header have as many fields as
/// the header. Consistent beats inconsistent, then more columns wins; a file
/// of one column is read with `,`.
pub(super) fn detect_delimiter(body: &[u8]) -> u8 {
    let mut best = (false, 1, CANDIDATES[0]);
    for delimiter in CANDIDATES {
        let mut counts = Vec::with_capacity(SAMPLE_RECORDS);
        scan(body, delimiter, |fields| {
            counts.push(fields);
            counts.len() < SAMPLE_RECORDS
        });
        let Some((&header, rest)) = counts.split_first() else {
            continue;
        };
        if header < 2 {
            continue;
        }
        let agreeing = rest.iter().filter(|&&n| n == header).count();
        let consistent = agreeing * 2 >= rest.len();
        if (consistent, header) > (best.0, best.1) {
            best = (consistent, header, delimiter);
        }
    }
    best.2
}

/// A quoted field still open at the end of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OpenQuote {
    /// The line its opening quote is on.
    pub line: usize,
    /// 0-based field index within its record.
    pub field: usize,
    /// Byte offset of the record it belongs to.
    pub record_start: usize,
}

/// Walk the records the way the csv crate splits them: a quote opens a quoted
/// field only at the start of a field; inside, `""` is a quote and a lone `"`
/// closes it; `\r`, `\n` or both end a record; blank lines are skipped.
/// Calls `record(fields)` for each record until it returns false, and returns
/// the quoted field left open at the end, if any.
fn scan(bytes: &[u8], delimiter: u8, mut record: impl FnMut(usize) -> bool) -> Option<OpenQuote> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        RecordStart,
        FieldStart,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let mut state = State::RecordStart;
    let mut lines = LineCounter::default();
    let mut fields = 0;
    let mut record_start = 0;
    let mut open = OpenQuote {
        line: 0,
        field: 0,
        record_start: 0,
    };
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let newline = b == b'\r' || b == b'\n';
        match state {
            State::RecordStart if newline => {}
            State::RecordStart => {
                record_start = i;
                fields = 1;
                state = State::FieldStart;
                continue; // look at this byte again as the start of a field
            }
            State::FieldStart | State::Unquoted | State::QuoteInQuoted if newline => {
                if !record(fields) {
                    return None;
                }
                state = State::RecordStart;
                continue; // the line break is counted at the record start
            }
            State::FieldStart if b == b'"' => {
                open = OpenQuote {
                    line: lines.line,
                    field: fields - 1,
                    record_start,
                };
                state = State::Quoted;
            }
            State::FieldStart | State::Unquoted | State::QuoteInQuoted if b == delimiter => {
                fields += 1;
                state = State::FieldStart;
            }
            State::FieldStart | State::Unquoted => state = State::Unquoted,
            State::Quoted if b == b'"' => state = State::QuoteInQuoted,
            State::Quoted => {}
            State::QuoteInQuoted if b == b'"' => state = State::Quoted,
            State::QuoteInQuoted => state = State::Unquoted,
        }
        lines.step(b);
        i += 1;
    }
    match state {
        State::Quoted => Some(open),
        State::RecordStart => None,
        _ => {
            record(fields);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(text: &str, delimiter: u8) -> (Vec<usize>, Option<OpenQuote>) {
        let mut counts = Vec::new();
        let open = scan(text.as_bytes(), delimiter, |n| {
            counts.push(n);
            true
        });
        (counts, open)
    }

    #[test]
    fn scan_counts_fields_outside_quotes() {
        let (n, open) = counts(
            "a;b;c\r\n1;\"x;y\";3\r\n\r\n2;\"multi\r\nline\";\"he said \"\"hi\"\"\"\r\n",
            b';',
        );
        assert_eq!(n, [3, 3, 3]);
        assert_eq!(open, None);
        // A quote inside an unquoted field is a literal character.
        let (n, _) = counts("a,b\n1,5\" screen\n", b',');
        assert_eq!(n, [2, 2]);
        // Lone CR line ends, and no final line break.
        let (n, _) = counts("a,b\r1,2\r3,4", b',');
        assert_eq!(n, [2, 2, 2]);
    }

    #[test]
    fn scan_finds_the_open_quote() {
        let text = "id;name;note\n1;a;b\n2;\"Müller;x\n3;c;d\n";
        let (n, open) = counts(text, b';');
        assert_eq!(n, [3, 3]);
        assert_eq!(
            open,
            Some(OpenQuote {
                line: 3,
                field: 1,
                record_start: text.find("2;").expect("in text"),
            })
        );
    }

    #[test]
    fn detects_semicolon_when_names_contain_commas() {
        let text = "Personalnummer;Name;Abteilung\n1;Müller, Jürgen;IT\n2;Schmidt, Anna;HR\n";
        assert_eq!(detect_delimiter(text.as_bytes()), b';');
    }

    #[test]
    fn detects_comma_with_quoted_semicolons() {
        let text = "id,name,note\n1,\"a;b;c;d\",x\n";
        assert_eq!(detect_delimiter(text.as_bytes()), b',');
    }

    #[test]
    fn detects_tab() {
        let text = "id\tfamily_name\tnote\n1\tMüller, J.\ta;b\n";
        assert_eq!(detect_delimiter(text.as_bytes()), b'\t');
    }

    #[test]
    fn more_columns_win_when_both_are_consistent() {
        let text = "Name, Vorname;Abteilung;Ort\nMüller, Jürgen;IT;Köln\n";
        assert_eq!(detect_delimiter(text.as_bytes()), b';');
    }

    #[test]
    fn consistency_beats_a_header_accident() {
        // The header has more commas than semicolons, but the rows disagree.
        let text = "id;Name, Vorname, Titel, Rang;x\n1;a;b\n2;c;d\n3;e;f\n";
        assert_eq!(detect_delimiter(text.as_bytes()), b';');
    }

    #[test]
    fn one_column_defaults_to_comma() {
        assert_eq!(detect_delimiter(b"id\n1\n2\n"), b',');
        assert_eq!(detect_delimiter(b""), b',');
    }

    #[test]
    fn sep_line() {
        assert_eq!(
            split_sep_line("sep=;\r\na;b\r\n"),
            ("a;b\r\n", 2, Some(b';'))
        );
        assert_eq!(split_sep_line("sep=\t\na\tb\n"), ("a\tb\n", 2, Some(b'\t')));
        assert_eq!(split_sep_line("sep=,"), ("", 2, Some(b',')));
        assert_eq!(split_sep_line("sep=x\na"), ("sep=x\na", 1, None));
        assert_eq!(split_sep_line("id;sep\n"), ("id;sep\n", 1, None));
    }

    /// A small deterministic generator of CSV-ish text.
    fn random_texts(count: usize) -> Vec<String> {
        const ALPHABET: &[&str] = &[
            "a", "b", ",", ";", "\t", "\"", "\"\"", "\r", "\n", "\r\n", " ", "ü",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        (0..count)
            .map(|_| {
                let len = (next() % 40) as usize;
                (0..len)
                    .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                    .collect()
            })
            .collect()
    }

    #[test]
    fn scan_splits_records_like_the_csv_crate() {
        for text in random_texts(1500) {
            for delimiter in CANDIDATES {
                let (ours, open) = counts(&text, delimiter);
                if open.is_some() {
                    continue; // the crate reads an open quote to the end
                }
                let mut reader = csv::ReaderBuilder::new()
                    .has_headers(false)
                    .flexible(true)
                    .delimiter(delimiter)
                    .from_reader(text.as_bytes());
                let theirs: Vec<usize> = reader
                    .records()
                    .map(|r| r.expect("valid UTF-8").len())
                    .collect();
                assert_eq!(ours, theirs, "{text:?} split by {:?}", delimiter as char);
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        let names = ColumnNames::new(&Default::default(), false);
        for text in random_texts(1500) {
            let mut out = Collector::default();
            read(
                "x.csv",
                &format!("id,family_name\n{text}"),
                &names,
                &mut out,
            );
            read("y.csv", &text, &names, &mut out);
            let _ = out.finish();
        }
    }
}
