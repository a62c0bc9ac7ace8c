//! Arguments + homebase.yaml + environment → validated settings that the rest
//! of homebase trusts. Relative paths in the configuration are resolved against
//! the configuration file's folder (the current folder for the embedded defaults).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::apply::sealed::{parse_recipient, recipient_lines, Recipients};
use crate::cli::GlobalArgs;
use crate::config::{Area, Config, DEFAULT_CONFIG};
use crate::error::{Failure, Problem, Problems};
use crate::input::{Field, InputOptions};
use crate::output::Output;
use crate::plan::{digest::InputDigest, resolve_target};
use crate::profile::{ProfileSet, VpnKind};
use crate::render::Templates;
use crate::targets::TargetConfig;
use crate::today::Today;

pub struct Settings {
    pub config: Config,
    /// Where the configuration came from: a path, or `<embedded defaults>`.
    pub config_source: String,
    config_text: String,
    pub base_dir: PathBuf,
    /// Where the state store is (`state:`, `HOMEBASE_STATE`).
    pub state: crate::state::Location,
    pub out_dir: PathBuf,
    pub jobs: Option<usize>,
    pub output: Output,
    pub input: InputOptions,
    pub profiles: ProfileSet,
    pub templates: Templates,
    /// The day plans are made for (today, or pinned by `HOMEBASE_TODAY`).
    pub today: Today,
    /// Bundles are written encrypted to these (`bundles.encrypt_to`, `--recipient`).
    pub recipients: Option<Recipients>,
}

impl Settings {
    /// Load and validate everything that does not need the network. Every
    /// problem of the configuration, profiles and templates comes back at once.
    pub fn resolve(args: &GlobalArgs) -> Result<Settings> {
        let output = Output::from_args(args);
        let today = Today::resolve()?;
        if today.pinned {
            output.info(format!(
                "note: planning for {}, the day {} pins",
                today.day,
                crate::today::PIN_VAR
            ));
        }
        let (config_source, config_text, base_dir) = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the configuration {}", path.display()))
                    .map_err(|e| Failure::usage(format!("{e:#}")))?;
                (path.display().to_string(), text, parent_dir(path))
            }
            None if Path::new("homebase.yaml").is_file() => {
                let text = std::fs::read_to_string("homebase.yaml")
                    .context("cannot read ./homebase.yaml")?;
                ("homebase.yaml".to_string(), text, PathBuf::from("."))
            }
            None => (
                "<embedded defaults>".to_string(),
                DEFAULT_CONFIG.to_string(),
                PathBuf::from("."),
            ),
        };
        let config: Config = serde_norway::from_str(&config_text).map_err(|err| {
            Failure::Invalid(crate::config::config_problems(
                &config_source,
                &config_text,
                &err,
            ))
        })?;

        let mut problems = Problems::default();
        let mut columns = BTreeMap::new();
        for (header, field) in &config.columns {
            match Field::from_name(field) {
                Some(f) => {
                    columns.insert(header.trim().to_lowercase(), f);
                }
                None => problems.push(
                    Problem::new(
                        &config_source,
                        format!("columns: \"{header}\" maps to unknown field \"{field}\""),
                    )
                    .expected(Field::ALL.map(Field::name).join(", ")),
                ),
            }
        }
        let resolve = |p: &Path| join(&base_dir, p);
        // Unnamed, the folders beside the configuration are used when they
        // exist: what lies on disk next to homebase.yaml is what an admin
        // edits and expects to be used. Else the shipped copies.
        let beside = |name: &str| Some(join(&base_dir, Path::new(name))).filter(|dir| dir.is_dir());
        let profiles_dir = config
            .profiles
            .as_deref()
            .map(resolve)
            .or_else(|| beside("profiles"));
        let templates_dir = config
            .templates
            .as_deref()
            .map(resolve)
            .or_else(|| beside("templates"));
        let mut profiles_loaded = true;
        let profiles = ProfileSet::load(profiles_dir.as_deref()).unwrap_or_else(|p| {
            problems.extend(p);
            profiles_loaded = false;
            ProfileSet::default()
        });
        let templates = match Templates::load(templates_dir.as_deref()) {
            Ok(t) => Some(t),
            Err(p) => {
                problems.extend(p);
                None
            }
        };
        let state = match crate::state::Location::resolve(
            &config.state,
            std::env::var("HOMEBASE_STATE").ok(),
            resolve,
            |name| std::env::var(name).ok(),
        ) {
            Ok(state) => Some(state),
            Err(why) => {
                problems.push(Problem::new(&config_source, why));
                None
            }
        };
        // Profiles that did not load are reported already; checking the
        // config against an empty set would only add misleading errors.
        if let Some(templates) = &templates {
            if profiles_loaded {
                validate_profiles(&config, &config_source, &profiles, templates, &mut problems);
            }
            let names: Vec<String> = profiles
                .profiles
                .values()
                .flat_map(|p| p.artifacts.iter().cloned())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            problems.extend(templates.check(&names));
            let letter = [crate::letters::TEMPLATE.to_string()];
            let letter_problems = templates.check(&letter);
            if letter_problems.is_empty() {
                problems.extend(crate::letters::check(
                    templates,
                    config.bundles.letters.form,
                ));
            }
            problems.extend(letter_problems);
        }
        for (name, target) in &config.targets {
            for problem in target.problems(name, &config_source, &resolve) {
                problems.push(at_key(problem, &config_text));
            }
        }
        let recipients = recipients(args, &config, &config_source, &config_text, &mut problems);
        problems.into_result().map_err(Failure::Invalid)?;
        let templates = templates.context("templates")?;
        let state = state.context("state")?;

        Ok(Settings {
            state,
            out_dir: resolve(&config.out),
            input: InputOptions {
                columns,
                sheet: None,
                allow_extra_columns: args.allow_extra_columns,
            },
            config,
            config_source,
            config_text,
            base_dir,
            jobs: args.jobs,
            output,
            profiles,
            templates,
            today,
            recipients,
        })
    }

    /// A path of the configuration, resolved against its folder.
    /// What is wrong with the files the targets read (`check` only: other
    /// commands need not have them), with the lines of their settings.
    pub fn target_file_problems(&self) -> Vec<Problem> {
        let resolve = |p: &Path| self.path(p);
        let mut problems = Vec::new();
        for (name, target) in &self.config.targets {
            for problem in target.file_problems(name, &self.config_source, &resolve) {
                problems.push(at_key(problem, &self.config_text));
            }
        }
        problems
    }

    pub fn path(&self, p: &Path) -> PathBuf {
        join(&self.base_dir, p)
    }

    /// A path below the output folder.
    pub fn out_path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.out_dir.join(p)
        }
    }

    /// Digest of everything a plan depends on besides the targets' state.
    pub fn inputs_digest(&self, staff_files: &[PathBuf]) -> Result<String> {
        let mut digest = InputDigest::default();
        digest.part("homebase", env!("CARGO_PKG_VERSION").as_bytes());
        digest.part("config", self.config_text.as_bytes());
        digest.part("profiles", &serde_json::to_vec(&self.profiles.profiles)?);
        digest.part("templates", self.templates.fingerprint().as_bytes());
        for file in staff_files {
            let bytes =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            digest.part(&file.display().to_string(), &bytes);
        }
        Ok(digest.finish())
    }
}

/// `base/p`, or `p` itself when it is absolute or the base is the current folder.
fn join(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() || base == Path::new(".") {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The age recipients of `bundles.encrypt_to`, `--recipient` and
/// `--recipients-file`; each one that is not a key is a problem at its line.
fn recipients(
    args: &GlobalArgs,
    config: &Config,
    source: &str,
    text: &str,
    problems: &mut Problems,
) -> Option<Recipients> {
    let mut keys = Vec::new();
    let key_line = crate::config::line_of(text, &["bundles", "encrypt_to"]);
    for (index, written) in config.bundles.encrypt_to.iter().enumerate() {
        match parse_recipient(written) {
            Ok(key) => keys.push(key),
            Err(why) => {
                let line = key_line.and_then(|from| item_line(text, from, written));
                let problem = Problem::new(source, why.to_string())
                    .key(format!("bundles.encrypt_to.{index}"));
                problems.push(match line.or(key_line) {
                    Some(line) => problem.at_line(line),
                    None => problem,
                });
            }
        }
    }
    for written in &args.recipient {
        match parse_recipient(written) {
            Ok(key) => keys.push(key),
            Err(why) => problems.push(Problem::new("--recipient", why.to_string())),
        }
    }
    for file in &args.recipients_file {
        let name = file.display().to_string();
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                problems.push(Problem::new(&name, format!("cannot read: {e}")));
                continue;
            }
        };
        let lines = recipient_lines(&text);
        if lines.is_empty() {
            problems.push(Problem::new(&name, "no recipient in the file"));
        }
        for (line, written) in lines {
            match parse_recipient(written) {
                Ok(key) => keys.push(key),
                Err(why) => problems.push(Problem::new(&name, why.to_string()).at_line(line)),
            }
        }
    }
    (!keys.is_empty()).then(|| Recipients::new(keys))
}

/// The 1-based line, at or after `from`, of a list item that holds `item`.
fn item_line(text: &str, from: usize, item: &str) -> Option<usize> {
    let needle = item.trim();
    if needle.is_empty() {
        return None;
    }
    text.lines()
        .enumerate()
        .skip(from - 1)
        .find(|(_, line)| line.contains(needle))
        .map(|(index, _)| index + 1)
}

/// Cross-references the profile module does not see: the default profile, and
/// pools inside their VPN server's network.
fn validate_profiles(
    config: &Config,
    source: &str,
    profiles: &ProfileSet,
    templates: &Templates,
    problems: &mut Problems,
) {
    if let Err(why) = profiles.check_default(&config.default_profile) {
        problems.push(Problem::new(source, why).key("default_profile"));
    }
    problems.extend(profiles.check_references(config, templates));
    for profile in profiles
        .profiles
        .values()
        .filter(|p| !p.is_abstract && p.vpn.kind != VpnKind::None)
    {
        let target = resolve_target(config, Area::Vpn, profile.vpn.target.as_deref()).ok();
        if let (Some(pool), Some(address)) = (
            profile.vpn.pool,
            target
                .and_then(|t| config.targets.get(t))
                .and_then(TargetConfig::vpn_address),
        ) {
            if !address.contains(&pool.network()) || !address.contains(&pool.broadcast()) {
                problems.push(
                    Problem::new(
                        format!("profile {}", profile.name),
                        format!(
                            "vpn.pool {pool} lies outside the network {} of its VPN target",
                            address.trunc()
                        ),
                    )
                    .key("vpn.pool"),
                );
            }
        }
    }
}

/// A target's problem whose column is `targets.NAME.KEY`, a key of the YAML
/// file: named as one, with the line of KEY (or of the target) in the file.
fn at_key(mut problem: Problem, config_text: &str) -> Problem {
    if !problem
        .column
        .as_ref()
        .is_some_and(|c| c.starts_with("targets."))
    {
        // A problem in a file the target reads, at its own line and column.
        return problem;
    }
    if let Some(path) = problem.column.take() {
        if problem.line.is_none() {
            let keys: Vec<&str> = path.split('.').collect();
            if let Some(line) = crate::config::line_of(config_text, &keys) {
                problem = problem.at_line(line);
            }
        }
        problem = problem.key(path);
    }
    problem
}
