//! A titled table as Markdown or a self-contained HTML page, for the reports
//! that are lists (`status`, `status --history`); every cell escaped.

use std::fmt::Write;

use super::escape;

pub struct Table {
    pub title: String,
    /// One line under the title (counts).
    pub summary: String,
    pub headers: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// GitHub/GitLab-flavoured Markdown.
    pub fn markdown(&self) -> String {
        // Title and summary are homebase's own words; the cells are data.
        let mut out = format!("# {}\n\n{}\n\n", self.title, self.summary);
        if self.rows.is_empty() {
            return out;
        }
        let _ = writeln!(out, "| {} |", self.headers.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(self.headers.len()));
        for row in &self.rows {
            let cells: Vec<String> = row.iter().map(|c| escape::markdown(c)).collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        out
    }

    /// One HTML page with its own style, printable.
    pub fn html(&self) -> String {
        let title = escape::html(&self.title);
        let mut out = format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title><style>{STYLE}</style></head><body>\n<h1>{title}</h1>\n<p>{}</p>\n",
            escape::html(&self.summary)
        );
        if !self.rows.is_empty() {
            out.push_str("<table>\n<tr>");
            for header in &self.headers {
                let _ = write!(out, "<th>{}</th>", escape::html(header));
            }
            out.push_str("</tr>\n");
            for row in &self.rows {
                out.push_str("<tr>");
                for cell in row {
                    let _ = write!(out, "<td>{}</td>", escape::html(cell));
                }
                out.push_str("</tr>\n");
            }
            out.push_str("</table>\n");
        }
        out.push_str("</body></html>\n");
        out
    }
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#111}\
h1{font-size:1.5em}table{border-collapse:collapse;width:100%}\
th,td{border:1px solid #bbb;padding:.2em .4em;text-align:left;vertical-align:top}th{background:#eee}\
@page{size:A4 landscape;margin:1.5cm}@media print{body{margin:0}tr{page-break-inside:avoid}}";

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table {
            title: "status".into(),
            summary: "1 person".into(),
            headers: vec!["id", "name"],
            rows: vec![vec!["P1".into(), "<b>Ann | *Lee*</b>".into()]],
        }
    }

    #[test]
    fn cells_are_escaped_in_markdown() {
        let md = table().markdown();
        assert!(md.contains("| id | name |\n|---|---|\n"), "{md}");
        assert!(
            md.contains("| P1 | &lt;b&gt;Ann \\| \\*Lee\\*&lt;/b&gt; |"),
            "{md}"
        );
    }

    #[test]
    fn cells_are_escaped_in_html() {
        let html = table().html();
        assert!(
            html.contains("<td>&lt;b&gt;Ann | *Lee*&lt;/b&gt;</td>"),
            "{html}"
        );
        assert!(!html.contains("<b>Ann"), "{html}");
    }
}
