//! The line layout the letter template renders to (see templates/letter.pdf.j2).

/// One block of a letter, in reading order.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    From(String),
    To(String),
    Info(String, String),
    Title(String),
    Heading(String),
    Para(String),
    Small(String),
    Fact(String, String),
    Secret(String, String),
    Qr(String),
    Step(String),
    Sign(String),
    Page,
}

/// A directive the layout does not know, with its 1-based line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: unknown directive `@{name}` (known: from, to, info, title, h, small, kv, secret, qr, step, sign, page)")]
pub struct UnknownDirective {
    pub line: usize,
    pub name: String,
}

fn pair(rest: &str) -> (String, String) {
    match rest.split_once('|') {
        Some((a, b)) => (a.trim().to_string(), b.trim().to_string()),
        None => (rest.trim().to_string(), String::new()),
    }
}

pub fn parse(text: &str) -> Result<Vec<Block>, UnknownDirective> {
    let mut blocks = Vec::new();
    let mut para = String::new();
    let flush = |para: &mut String, blocks: &mut Vec<Block>| {
        if !para.trim().is_empty() {
            blocks.push(Block::Para(para.trim().to_string()));
        }
        para.clear();
    };
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        let Some(directive) = line.strip_prefix('@') else {
            if line.is_empty() {
                flush(&mut para, &mut blocks);
            } else {
                if !para.is_empty() {
                    para.push(' ');
                }
                para.push_str(line);
            }
            continue;
        };
        flush(&mut para, &mut blocks);
        let (name, rest) = directive.split_once(' ').unwrap_or((directive, ""));
        let rest = rest.trim().to_string();
        blocks.push(match name {
            "from" => Block::From(rest),
            "to" => Block::To(rest),
            "info" => {
                let (a, b) = pair(&rest);
                Block::Info(a, b)
            }
            "title" => Block::Title(rest),
            "h" => Block::Heading(rest),
            "small" => Block::Small(rest),
            "kv" => {
                let (a, b) = pair(&rest);
                Block::Fact(a, b)
            }
            "secret" => {
                let (a, b) = pair(&rest);
                Block::Secret(a, b)
            }
            "qr" => Block::Qr(rest),
            "step" => Block::Step(rest),
            "sign" => Block::Sign(rest),
            "page" => Block::Page,
            other => {
                return Err(UnknownDirective {
                    line: index + 1,
                    name: other.to_string(),
                })
            }
        });
    }
    flush(&mut para, &mut blocks);
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_blocks() {
        let blocks =
            parse("@to Anna Łukasiewicz\n@kv Name | Ayşe\nHallo\nWelt\n\n@page\n").unwrap();
        assert_eq!(
            blocks,
            [
                Block::To("Anna Łukasiewicz".into()),
                Block::Fact("Name".into(), "Ayşe".into()),
                Block::Para("Hallo Welt".into()),
                Block::Page,
            ]
        );
        let err = parse("ok\n@tpo x").unwrap_err();
        assert_eq!(err.line, 2);
    }
}
