//! Bytes → text: byte-order marks, UTF-8 or Windows-1252, and files that are
//! not text at all (binary data, workbooks, nothing).

use std::borrow::Cow;

use encoding_rs::{UTF_16BE, UTF_16LE, WINDOWS_1252};

/// What a file's bytes turned out to be.
#[derive(Debug)]
pub(super) enum Content<'a> {
    /// Decoded text: UTF-8 (with or without BOM), UTF-16 with BOM (Excel's
    /// "Unicode text"), or Windows-1252 when it is not valid UTF-8 (what German
    /// Excel saves as "CSV (Trennzeichen-getrennt)").
    Text(Cow<'a, str>),
    /// No bytes, or only a byte-order mark and white space.
    Empty,
    /// A NUL or another control byte that text files do not have, at `line`.
    Binary { line: usize, byte: u8 },
    /// A ZIP container: an XLSX workbook (or another Office file).
    Zip,
    /// An OLE compound document: an old Excel `.xls` workbook.
    OldExcel,
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
const ZIP_EMPTY_MAGIC: &[u8] = b"PK\x05\x06";
const OLE_MAGIC: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";

/// Tell what `bytes` are and decode them if they are text.
pub(super) fn decode(bytes: &[u8]) -> Content<'_> {
    if bytes.starts_with(ZIP_MAGIC) || bytes.starts_with(ZIP_EMPTY_MAGIC) {
        return Content::Zip;
    }
    if bytes.starts_with(OLE_MAGIC) {
        return Content::OldExcel;
    }
    let utf16 = match bytes {
        [0xFF, 0xFE, rest @ ..] => Some(UTF_16LE.decode_without_bom_handling(rest).0),
        [0xFE, 0xFF, rest @ ..] => Some(UTF_16BE.decode_without_bom_handling(rest).0),
        _ => None,
    };
    let text = match utf16 {
        // UTF-16 is checked after decoding: its bytes are full of NULs.
        Some(text) => {
            if let Some((line, byte)) = first_control_byte(text.as_bytes()) {
                return Content::Binary { line, byte };
            }
            text
        }
        None => {
            let rest = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
            if let Some((line, byte)) = first_control_byte(rest) {
                return Content::Binary { line, byte };
            }
            match std::str::from_utf8(rest) {
                Ok(text) => Cow::Borrowed(text),
                Err(_) => WINDOWS_1252.decode_without_bom_handling(rest).0,
            }
        }
    };
    if text.trim().is_empty() {
        return Content::Empty;
    }
    Content::Text(text)
}

/// The line and value of the first byte that has no place in a text file:
/// NUL and the C0 controls other than tab, line feed, form feed, carriage
/// return and the old DOS end-of-file mark (0x1A).
fn first_control_byte(bytes: &[u8]) -> Option<(usize, u8)> {
    let position = bytes
        .iter()
        .position(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0C | 0x1A))?;
    Some((line_of(&bytes[..position]), bytes[position]))
}

/// The 1-based line a position is on, given the bytes before it. A line ends
/// with CRLF, LF, or a lone CR (old Mac files).
pub(super) fn line_of(before: &[u8]) -> usize {
    let mut counter = LineCounter::default();
    counter.advance(before);
    counter.line
}

/// Counts lines incrementally over consecutive slices of one text.
#[derive(Debug, Clone, Copy)]
pub(super) struct LineCounter {
    pub line: usize,
    after_cr: bool,
}

impl Default for LineCounter {
    fn default() -> Self {
        LineCounter {
            line: 1,
            after_cr: false,
        }
    }
}

impl LineCounter {
    pub(super) fn starting_at(line: usize) -> Self {
        LineCounter {
            line,
            after_cr: false,
        }
    }

    /// Count the line breaks in `bytes`, which follow what was counted before.
    pub(super) fn advance(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.step(b);
        }
    }

    #[inline]
    pub(super) fn step(&mut self, b: u8) {
        match b {
            b'\n' if self.after_cr => {}
            b'\n' | b'\r' => self.line += 1,
            _ => {}
        }
        self.after_cr = b == b'\r';
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: &[u8]) -> String {
        match decode(bytes) {
            Content::Text(text) => text.into_owned(),
            other => panic!("expected text, got {other:?}"),
        }
    }

    #[test]
    fn plain_utf8_is_borrowed() {
        let bytes = "id;Nachname\n1;Müller\n".as_bytes();
        match decode(bytes) {
            Content::Text(text) => {
                assert!(matches!(text, Cow::Borrowed(_)));
                assert_eq!(text, "id;Nachname\n1;Müller\n");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn utf8_bom_is_removed() {
        let text = text(b"\xEF\xBB\xBFid,family_name\r\n1,M\xC3\xBCller\r\n");
        assert_eq!(text, "id,family_name\r\n1,Müller\r\n");
    }

    #[test]
    fn invalid_utf8_is_windows_1252() {
        // "Müller;Straße;€" as German Excel writes it.
        assert_eq!(text(b"M\xFCller;Stra\xDFe;\x80\r\n"), "Müller;Straße;€\r\n");
    }

    #[test]
    fn windows_1252_after_a_utf8_bom_still_decodes() {
        assert_eq!(text(b"\xEF\xBB\xBFM\xFCller\n"), "Müller\n");
    }

    #[test]
    fn utf16_with_bom() {
        let mut le = vec![0xFF, 0xFE];
        let mut be = vec![0xFE, 0xFF];
        for unit in "id\tNachname\r\n1\tMüller\r\n".encode_utf16() {
            le.extend_from_slice(&unit.to_le_bytes());
            be.extend_from_slice(&unit.to_be_bytes());
        }
        assert_eq!(text(&le), "id\tNachname\r\n1\tMüller\r\n");
        assert_eq!(text(&be), "id\tNachname\r\n1\tMüller\r\n");
    }

    #[test]
    fn empty_and_blank_files() {
        assert!(matches!(decode(b""), Content::Empty));
        assert!(matches!(decode(b"\xEF\xBB\xBF"), Content::Empty));
        assert!(matches!(decode(b" \r\n\t\n"), Content::Empty));
        assert!(matches!(decode(b"\xFF\xFE"), Content::Empty));
    }

    #[test]
    fn nul_bytes_are_binary_with_their_line() {
        match decode(b"id,name\r\n1,a\r\n2,\x00b\r\n") {
            Content::Binary { line, byte } => assert_eq!((line, byte), (3, 0)),
            other => panic!("{other:?}"),
        }
        match decode(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR") {
            Content::Binary { line, byte } => assert_eq!((line, byte), (3, 0)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn workbooks_are_recognised() {
        assert!(matches!(decode(b"PK\x03\x04rest"), Content::Zip));
        assert!(matches!(
            decode(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1rest"),
            Content::OldExcel
        ));
    }

    #[test]
    fn line_counting_handles_crlf_lf_and_cr() {
        assert_eq!(line_of(b""), 1);
        assert_eq!(line_of(b"a\r\nb\r\n"), 3);
        assert_eq!(line_of(b"a\nb\n"), 3);
        assert_eq!(line_of(b"a\rb\r"), 3);
        let mut counter = LineCounter::default();
        counter.advance(b"a\r");
        counter.advance(b"\nb");
        assert_eq!(counter.line, 2);
    }
}
