//! Printed letters: every selected person's welcome letter and handover
//! sheet in one A4 PDF (`homebase letters`, `apply --letters`).
//!
//! What a letter says is the template `letter.pdf.j2` (a line layout, see
//! its header); where it goes on the sheet is DIN 5008 (`pdf.rs`). Each
//! person starts on an odd page (a blank page pads an odd count), so a
//! duplex printer never puts two persons on one sheet.

mod markup;
mod parallel;
mod pdf;
mod shape;

use std::borrow::Cow;

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

/// One person's letter: what the templates see, the WireGuard config its
/// QR code carries, and whether its profile prints the first password
/// (unset: [`Options::print_password`]).
pub struct Letter {
    pub context: BundleContext,
    pub wireguard: Option<String>,
    pub print_password: Option<bool>,
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
    /// For letters whose profile does not say (`bundles.letters.print_password`).
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
///
/// Letters are rendered, laid out and shaped on one thread per CPU while
/// this thread writes the pages in order (krilla's document is one
/// writer); at most a few letters wait laid out, not all of them.
pub fn print(
    templates: &Templates,
    mut letters: Vec<Letter>,
    options: &Options,
) -> Result<Printed, LetterError> {
    letters.sort_by_cached_key(|l| {
        (
            l.key(options.by).is_none(),
            l.key(options.by).map(str::to_lowercase),
            l.context.person.family_name.to_lowercase(),
            l.context.person.given_name.to_lowercase(),
            l.context.person.id.clone(),
        )
    });
    let unsorted = letters
        .iter()
        .filter(|l| l.key(options.by).is_none())
        .map(|l| l.context.person.id.clone())
        .collect();
    let mut writer = pdf::Writer::new("Willkommensschreiben");
    let mut count = 0;
    parallel::in_order(
        &letters,
        |shaper, letter| lay_out(templates, letter, options, shaper),
        |pages| {
            for page in &pages {
                writer.page(Some(page));
            }
            // Each person starts on a front side.
            if pages.len() % 2 == 1 {
                writer.page(None);
            }
            count += pages.len() + pages.len() % 2;
        },
    )?;
    Ok(Printed {
        pdf: writer.finish()?,
        pages: count,
        unsorted,
    })
}

/// One letter's pages: its template rendered, read as blocks, laid out.
fn lay_out(
    templates: &Templates,
    letter: &Letter,
    options: &Options,
    shaper: &mut shape::Shaper,
) -> Result<Vec<pdf::LaidOut>, LetterError> {
    let text = templates
        .render(TEMPLATE, &context_of(letter, options))
        .map_err(|e| LetterError::Template {
            person: letter.who(),
            why: format!("{e:#}"),
        })?;
    let blocks = markup::parse(&text).map_err(|e| LetterError::Template {
        person: letter.who(),
        why: e.to_string(),
    })?;
    pdf::lay_out(
        &blocks,
        letter.wireguard.as_deref(),
        options.form,
        &letter.who(),
        shaper,
    )
}

/// What the letter template sees: the bundle's context, without the first
/// password when the profile (or the default) hands it over separately.
fn context_of<'a>(letter: &'a Letter, options: &Options) -> Cow<'a, BundleContext> {
    let printed = letter.print_password.unwrap_or(options.print_password);
    if printed || letter.context.account.initial_password.is_none() {
        return Cow::Borrowed(&letter.context);
    }
    let mut context = letter.context.clone();
    context.account.initial_password = None;
    context.account.password_separate = true;
    Cow::Owned(context)
}

/// `check`: the letter template rendered for every sample person must be
/// a layout the PDF can hold (known directives, an address that fits the
/// window). Rendering errors themselves are the template check's.
pub fn check(templates: &Templates, form: DinForm) -> crate::error::Problems {
    let mut problems = crate::error::Problems::default();
    let file = templates
        .file_of(TEMPLATE)
        .unwrap_or_else(|| format!("templates/{TEMPLATE}"));
    let mut shaper = pdf::shaper();
    for (label, context) in BundleContext::samples() {
        let Ok(text) = templates.render(TEMPLATE, &context) else {
            continue;
        };
        let outcome = markup::parse(&text)
            .map_err(|e| e.to_string())
            .and_then(|blocks| {
                pdf::lay_out(
                    &blocks,
                    None,
                    form,
                    &context.person.display_name,
                    &mut shaper,
                )
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
