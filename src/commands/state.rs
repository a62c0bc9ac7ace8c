//! `homebase state migrate --to URL` and `homebase state dump`: the state
//! moves between SQLite and PostgreSQL whole, and is checked to have arrived
//! whole (the content digests of both sides must match).

use anyhow::{Context, Result};

use crate::cli::{DumpArgs, MigrateArgs, StateCommand};
use crate::error::{ExitCode, Failure};
use crate::settings::Settings;
use crate::state::{Location, StateConfig, StateLock, Store};

pub fn run(settings: &Settings, command: &StateCommand) -> Result<ExitCode> {
    match command {
        StateCommand::Migrate(args) => migrate(settings, args),
        StateCommand::Dump(args) => dump(settings, args),
    }
}

fn dump(settings: &Settings, args: &DumpArgs) -> Result<ExitCode> {
    let Some(store) = Store::open_existing_read_only_at(&settings.state)? else {
        return Err(Failure::usage(format!(
            "no state store at {}: nothing to dump",
            settings.state
        ))
        .into());
    };
    let dump = store.dump()?;
    let mut json = serde_json::to_vec_pretty(&dump)?;
    json.push(b'\n');
    match &args.out {
        Some(path) => {
            crate::apply::fsutil::write_atomic(path, &json, Some(0o600))
                .with_context(|| format!("cannot write {}", path.display()))?;
            settings.output.info(format!(
                "{} row(s) of {} written to {}; digest {}",
                dump.rows(),
                settings.state,
                path.display(),
                dump.digest
            ));
        }
        None => crate::output::print_stdout(&String::from_utf8_lossy(&json))?,
    }
    Ok(ExitCode::Success)
}

fn migrate(settings: &Settings, args: &MigrateArgs) -> Result<ExitCode> {
    let to = Location::resolve(
        &StateConfig::Location(args.to.clone()),
        None,
        |p| settings.path(p),
        |name| std::env::var(name).ok(),
    )
    .map_err(|why| Failure::usage(format!("--to: {why}")))?;
    if to == settings.state {
        return Err(Failure::usage("--to names the state store itself").into());
    }
    // Nothing may change the source while it is copied, nor the target.
    let _from_lock = super::lock(settings, args.lock_timeout)?;
    let _to_lock = StateLock::acquire_at(&to, args.lock_timeout).map_err(|err| match err {
        crate::state::StateError::Locked { .. } => Failure::usage(err.to_string()).into(),
        other => anyhow::Error::from(other),
    })?;
    let Some(source) = Store::open_existing_read_only_at(&settings.state)? else {
        return Err(Failure::usage(format!(
            "no state store at {}: nothing to migrate",
            settings.state
        ))
        .into());
    };
    let dump = source.dump()?;
    let mut target = Store::open_at(&to)?;
    target.load(&dump).map_err(|err| match err {
        crate::state::StateError::NotEmpty { .. } => Failure::usage(err.to_string()).into(),
        other => anyhow::Error::from(other),
    })?;
    let copied = target.dump()?;
    if copied.digest != dump.digest {
        anyhow::bail!(
            "the copy in {to} differs from {} (digest {} instead of {}); do not use it",
            settings.state,
            copied.digest,
            dump.digest
        );
    }
    settings.output.info(format!(
        "copied {} row(s) from {} to {to}; content digest {} on both sides",
        dump.rows(),
        settings.state,
        dump.digest
    ));
    settings.output.info(format!(
        "point `state:` (or HOMEBASE_STATE) at {to} to use it; {} is left as it was",
        settings.state
    ));
    Ok(ExitCode::Success)
}
