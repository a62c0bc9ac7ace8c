//! Templates: a strict minijinja environment holding the shipped templates,
//! overridden by a configured folder.
//!
//! - Strict: an undefined variable is an error, found at `check` time by
//!   rendering against sample contexts (`BundleContext::samples`). Optional
//!   values are `none`, which is defined: test them with `{% if vpn.mtu %}`.
//! - `*.html.j2` (and `*.htm.j2`) are HTML-escaped automatically; other
//!   templates are not escaped and use the filters `md` (Markdown) and
//!   `oneline` (line-based configs) for data.
//! - `trim_blocks` and `lstrip_blocks` are on, so a `{% if %}` line leaves no
//!   blank line behind; files keep their final newline.
//! - Values are data: minijinja never evaluates what a value contains, so a
//!   person called `{{ 7*7 }}` is printed as written.

mod check;
mod context;
mod filters;
mod shipped;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

pub use context::*;
pub use shipped::SHIPPED;

use crate::error::{Problem, Problems};

/// Per profile: the context variables its bundle's templates read. A
/// profile not in it is taken to show everything.
#[derive(Debug, Clone, Default)]
pub struct BundleReads(pub BTreeMap<String, BTreeSet<String>>);

impl BundleReads {
    /// Whether the bundle of `profile` shows the variable at `path`
    /// (`person.department`): read itself, or an object above it.
    pub fn shows(&self, profile: &str, path: &str) -> bool {
        self.0
            .get(profile)
            .is_none_or(|reads| reads_path(reads, path))
    }
}

/// Whether `reads` (see [`Templates::reads`]) covers `path`: the path
/// itself or an object above it.
pub fn reads_path(reads: &BTreeSet<String>, path: &str) -> bool {
    {
        let mut prefix = path;
        loop {
            if reads.contains(prefix) {
                return true;
            }
            match prefix.rsplit_once('.') {
                Some((up, _)) => prefix = up,
                None => return false,
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Templates {
    env: Environment<'static>,
    /// Template name → file as shown in problems (`templates/NAME` for shipped ones).
    files: BTreeMap<String, String>,
    /// Digest of every template's name and text: bundles and saved plans
    /// notice when templates change.
    fingerprint: String,
}

impl Templates {
    /// The shipped templates, with those of `dir` (if any) replacing or adding:
    /// every `*.j2` file directly in `dir`, named by its file name. Every syntax
    /// error of every template is reported, with file and line.
    pub fn load(dir: Option<&Path>) -> Result<Templates, Problems> {
        let mut problems = Problems::default();
        let mut sources: BTreeMap<String, (String, Cow<'static, str>)> = SHIPPED
            .iter()
            .map(|(name, text)| {
                (
                    name.to_string(),
                    (format!("templates/{name}"), Cow::Borrowed(*text)),
                )
            })
            .collect();
        if let Some(dir) = dir {
            for (name, file, text) in read_dir(dir, &mut problems) {
                sources.insert(name, (file, Cow::Owned(text)));
            }
        }

        let mut digest = crate::plan::digest::InputDigest::default();
        for (name, (_, text)) in &sources {
            digest.part(name, text.as_bytes());
        }
        let mut templates = Templates {
            env: environment(),
            files: BTreeMap::new(),
            fingerprint: digest.finish(),
        };
        for (name, (file, text)) in sources {
            templates.files.insert(name.clone(), file);
            if let Err(err) = templates.env.add_template_owned(name, text) {
                problems.push(templates.problem(&err));
            }
        }
        problems.into_result().map(|()| templates)
    }

    /// The file a template came from, as shown in problems.
    pub fn file_of(&self, name: &str) -> Option<String> {
        self.files.get(name).cloned()
    }

    /// Render one template. Errors name the template file and line
    /// (`Templates::problem` turns one into a [`Problem`]).
    pub fn render(&self, name: &str, context: &BundleContext) -> Result<String, minijinja::Error> {
        self.render_value(name, &Self::value(context))
    }

    /// A context as the templates see it: converted once for all of a
    /// bundle's templates rather than once each.
    pub fn value(context: &BundleContext) -> minijinja::Value {
        minijinja::Value::from_serialize(context)
    }

    /// Render one template with a context made by [`Templates::value`].
    pub fn render_value(
        &self,
        name: &str,
        context: &minijinja::Value,
    ) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(context)
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The context variables a template reads, as dotted paths
    /// (`person.department`; `person` when it takes all of it). `None` when
    /// that cannot be told: it includes, extends or imports other templates.
    pub fn reads(&self, name: &str) -> Option<BTreeSet<String>> {
        let template = self.env.get_template(name).ok()?;
        let pulls_in = template.source().split("{%").skip(1).any(|tag| {
            let word = tag.trim_start_matches(['-', '+']).trim_start();
            ["include", "extends", "import", "from"]
                .iter()
                .any(|k| word.starts_with(k))
        });
        if pulls_in {
            return None;
        }
        Some(template.undeclared_variables(true).into_iter().collect())
    }

    /// What each profile's bundle shows: the union of what its artifacts
    /// read (see [`Templates::reads`]); left out when that cannot be told.
    pub fn bundle_reads(&self, profiles: &crate::profile::ProfileSet) -> BundleReads {
        let mut reads = BundleReads::default();
        for (name, profile) in &profiles.profiles {
            if let Some(all) = self.profile_reads(profile) {
                reads.0.insert(name.clone(), all);
            }
        }
        reads
    }

    /// What one profile's artifacts read together; `None` when unknown.
    pub fn profile_reads(&self, profile: &crate::profile::Profile) -> Option<BTreeSet<String>> {
        profile
            .artifacts
            .iter()
            .map(|a| self.reads(a))
            .try_fold(BTreeSet::new(), |mut acc, r| {
                acc.extend(r?);
                Some(acc)
            })
    }

    /// Names of all templates, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.files.keys().map(String::as_str).collect()
    }

    pub fn has(&self, name: &str) -> bool {
        self.files.contains_key(name)
    }

    /// The file a template came from, as shown in problems.
    pub fn file(&self, name: &str) -> Option<&str> {
        self.files.get(name).map(String::as_str)
    }

    /// A minijinja error as a problem: the template's file and line, what went
    /// wrong, and the expression at fault (`undefined value: person.nickname`).
    pub fn problem(&self, err: &minijinja::Error) -> Problem {
        let name = err.name().unwrap_or("template");
        let file = self
            .file(name)
            .map_or_else(|| name.to_string(), str::to_string);
        let mut message = err.kind().to_string();
        if let Some(detail) = err.detail() {
            message = format!("{message}: {detail}");
        }
        // The template's own source: `Error::template_source` needs debug info,
        // which release builds leave out.
        let template = self.env.get_template(name).ok();
        let text = template.as_ref().map(|t| t.source());
        let source = text
            .or_else(|| err.template_source())
            .zip(err.range())
            .and_then(|(text, range)| text.get(range))
            .map(str::trim)
            .filter(|snippet| !snippet.is_empty() && snippet.len() <= 80);
        if let Some(snippet) = source {
            message = format!("{message} in `{snippet}`");
        }
        let mut cause = std::error::Error::source(err);
        while let Some(inner) = cause {
            message = format!("{message}: {inner}");
            cause = inner.source();
        }
        let mut problem = Problem::new(file, message);
        problem.line = err.line();
        if err.kind() == minijinja::ErrorKind::UndefinedError {
            problem.expected = Some(
                "a variable of the bundle context: organisation, person, profile, account, vpn, devices, licenses, generated"
                    .into(),
            );
        }
        problem
    }
}

/// The environment every template runs in.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|name| {
        if is_html(name) {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    env.add_filter("md", filters::md);
    env.add_filter("oneline", filters::oneline);
    env.add_filter("ovpn_route", filters::ovpn_route);
    env.add_filter("de_date", filters::de_date);
    env.add_filter("device_de", filters::device_de);
    env
}

/// Templates whose output is HTML, by name: `x.html.j2`, `x.htm.j2` (or without `.j2`).
fn is_html(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let name = name.strip_suffix(".j2").unwrap_or(&name);
    name.ends_with(".html") || name.ends_with(".htm")
}

/// Every `*.j2` file directly in `dir`: (name, file as shown, text).
fn read_dir(dir: &Path, problems: &mut Problems) -> Vec<(String, String, String)> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            problems.push(
                Problem::new(
                    dir.display().to_string(),
                    format!("cannot read the template folder: {err}"),
                )
                .expected("a folder of NAME.j2 templates"),
            );
            return Vec::new();
        }
    };
    let mut paths: Vec<_> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "j2"))
        .collect();
    paths.sort();
    let mut found = Vec::new();
    for path in paths {
        let file = path.display().to_string();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            problems.push(Problem::new(file, "the file name is not valid UTF-8"));
            continue;
        };
        match fs::read_to_string(&path) {
            Ok(text) => found.push((name.to_string(), file, text)),
            Err(err) => problems.push(Problem::new(
                file,
                format!("cannot read the template: {err}"),
            )),
        }
    }
    found
}

#[cfg(test)]
mod tests;
