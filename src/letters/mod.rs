//! Printed letters: every selected person's welcome letter and handover
//! sheet in one A4 PDF (`homebase letters`, `apply --letters`).
//!
//! What a letter says is the template `letter.pdf.j2` (a line layout, see
//! its header); where it goes on the sheet is DIN 5008 (`pdf.rs`). Each
//! person starts on an odd page (a blank page pads an odd count), so a
//! duplex printer never puts two persons on one sheet.

mod markup;
mod pdf;

use crate::config::{DinForm, LetterOrder};
use crate::render::{BundleContext, Templates};

pub use pdf::ADDRESS_LINES;

/// The template of the printed letter.
pub const TEMPLATE: &str = "letter.pdf.j2";

#[derive(Debug, thiserror::Error)]
pub enum LetterError {
    #[error("letter of {person}: {why}")]
    Address { person: String, why: String },
    #[error("letter of {person}: template {TEMPLATE}: {why}")]
    Template { person: String, why: String },
    #[error("QR code: {0}")]
    Qr(String),
    #[error("cannot write the PDF: {0}")]
    Pdf(String),
}

/// One person's letter: what the templates see, and the WireGuard config
/// its QR code carries.
pub struct Letter {
    pub context: BundleContext,
    pub wireguard: Option<String>,
}

impl Letter {
    /// The sort key, or none when the person lacks the field.
    fn key(&self, by: LetterOrder) -> Option<&str> {
        let person = &self.context.person;
        match by {
            LetterOrder::Department => person.department.as_deref(),
            LetterOrder::Location => person.location.as_deref(),
        }
        .map(str::trim)
        .filter(|k| !k.is_empty())
    }

    fn who(&self) -> String {
        format!(
            "{} ({})",
            self.context.person.display_name, self.context.account.username
        )
    }
}

pub struct Options {
    pub by: LetterOrder,
    pub form: DinForm,
    pub print_password: bool,
}

/// The PDF, and the ids of persons without the sort field (sorted last,
/// by name: the documented fallback).
pub struct Printed {
    pub pdf: Vec<u8>,
    pub pages: usize,
    pub unsorted: Vec<String>,
}

/// Sort by the key (then family name, given name, id), lay out, write.
pub fn print(
    templates: &Templates,
    mut letters: Vec<Letter>,
    options: &Options,
) -> Result<Printed, LetterError> {
    letters.sort_by(|a, b| {
        let key = |l: &Letter| {
            (
                l.key(options.by).is_none(),
                l.key(options.by).map(str::to_lowercase),
                l.context.person.family_name.to_lowercase(),
                l.context.person.given_name.to_lowercase(),
                l.context.person.id.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    let unsorted = letters
        .iter()
        .filter(|l| l.key(options.by).is_none())
        .map(|l| l.context.person.id.clone())
        .collect();
    let mut laid = Vec::with_capacity(letters.len());
    for letter in &mut letters {
        if !options.print_password {
            letter.context.account.initial_password = None;
        }
        let text =
            templates
                .render(TEMPLATE, &letter.context)
                .map_err(|e| LetterError::Template {
                    person: letter.who(),
                    why: format!("{e:#}"),
                })?;
        let blocks = markup::parse(&text).map_err(|e| LetterError::Template {
            person: letter.who(),
            why: e.to_string(),
        })?;
        laid.push(pdf::lay_out(
            &blocks,
            letter.wireguard.as_deref(),
            options.form,
            &letter.who(),
        )?);
    }
    let mut pages: Vec<Option<&pdf::LaidOut>> = Vec::new();
    for letter in &laid {
        pages.extend(letter.iter().map(Some));
        if letter.len() % 2 == 1 {
            pages.push(None);
        }
    }
    let count = pages.len();
    let pdf = pdf::write(&pages, "Willkommensschreiben")?;
    Ok(Printed {
        pdf,
        pages: count,
        unsorted,
    })
}

/// `check`: the letter template rendered for every sample person must be
/// a layout the PDF can hold (known directives, an address that fits the
/// window). Rendering errors themselves are the template check's.
pub fn check(templates: &Templates, form: DinForm) -> crate::error::Problems {
    let mut problems = crate::error::Problems::default();
    let file = templates
        .file_of(TEMPLATE)
        .unwrap_or_else(|| format!("templates/{TEMPLATE}"));
    for (label, context) in BundleContext::samples() {
        let Ok(text) = templates.render(TEMPLATE, &context) else {
            continue;
        };
        let outcome = markup::parse(&text)
            .map_err(|e| e.to_string())
            .and_then(|blocks| {
                pdf::lay_out(&blocks, None, form, &context.person.display_name)
                    .map(drop)
                    .map_err(|e| e.to_string())
            });
        if let Err(why) = outcome {
            problems.push(crate::error::Problem::new(
                file.clone(),
                format!("{why} (rendering {label})"),
            ));
            break;
        }
    }
    problems
}

#[cfg(test)]
mod tests;
