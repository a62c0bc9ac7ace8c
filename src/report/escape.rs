//! Names are data: escape them for wherever they are printed.

/// Escape for HTML text and attribute values.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escape for Markdown text and table cells: every character that could start
/// markup is backslash-escaped, `|` so cells stay cells, newlines become spaces.
pub fn markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '+' | '!' | '|'
            | '~' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// Make a value safe for a terminal: control characters (escape sequences
/// in a name could repaint the reviewer's screen) are shown as `\u{..}`.
pub fn terminal(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_markup() {
        assert_eq!(
            html("<script>\"x\" & 'y'"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn markdown_keeps_names_literal() {
        assert_eq!(markdown("=HYPERLINK(\"x\")"), "\\=HYPERLINK\\(\"x\"\\)");
        assert_eq!(markdown("Hans*)(uid=*"), "Hans\\*\\)\\(uid\\=\\*");
        assert_eq!(markdown("a|b\nc"), "a\\|b c");
        assert_eq!(markdown("{{ 7*7 }}"), "\\{\\{ 7\\*7 \\}\\}");
    }

    #[test]
    fn terminal_neutralises_escapes() {
        assert_eq!(terminal("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(terminal("Müller"), "Müller");
    }
}
