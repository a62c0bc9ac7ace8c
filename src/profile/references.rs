//! Cross-checks of profiles against the configuration and the templates:
//! license pools, targets and artifacts a profile names must exist.

use super::locate::key_line;
use super::{Profile, ProfileSet, VpnKind};
use crate::config::{Area, Config};
use crate::error::{Problem, Problems};
use crate::render::Templates;

impl ProfileSet {
    /// Problems with what the profiles refer to: license pools of `config`,
    /// directory/VPN/inventory targets, and templates named as artifacts.
    /// Each problem points at the file of the chain that writes the setting.
    pub fn check_references(&self, config: &Config, templates: &Templates) -> Problems {
        let mut problems = Problems::default();
        for profile in self.profiles.values().filter(|p| !p.is_abstract) {
            self.check_profile(profile, config, templates, &mut problems);
        }
        problems
    }

    fn check_profile(
        &self,
        profile: &Profile,
        config: &Config,
        templates: &Templates,
        problems: &mut Problems,
    ) {
        let problem = |path: &[&str], message: String| {
            let (file, line) = self.origin(&profile.name, path);
            let mut problem = Problem::new(file, message).key(path.join("."));
            problem.line = line;
            problem
        };

        for license in &profile.licenses {
            if !config.licenses.contains_key(license) {
                problems.push(
                    problem(&["licenses"], format!("unknown license pool `{license}`")).expected(
                        one_of(
                            config.licenses.keys(),
                            "license pools in homebase.yaml `licenses:`",
                        ),
                    ),
                );
            }
        }
        for artifact in &profile.artifacts {
            if !templates.has(artifact) {
                problems.push(
                    problem(&["artifacts"], format!("unknown template `{artifact}`"))
                        .expected(one_of(templates.names().into_iter(), "templates")),
                );
            }
        }

        let directory = target_check(
            config,
            Area::Directory,
            profile.account.target.as_deref(),
            None,
        );
        if let Err(message) = directory {
            problems.push(problem(&["account", "target"], message));
        }
        if profile.vpn.kind != VpnKind::None {
            let kind = match profile.vpn.kind {
                VpnKind::Wireguard => "wireguard",
                VpnKind::Openvpn => "openvpn",
                VpnKind::None => "none",
            };
            if let Err(message) =
                target_check(config, Area::Vpn, profile.vpn.target.as_deref(), Some(kind))
            {
                problems.push(problem(&["vpn", "target"], message));
            }
        }
        if !profile.devices.is_empty() {
            if let Err(message) = target_check(config, Area::Inventory, None, None) {
                problems.push(problem(&["devices"], message));
            }
        }
    }

    /// The file (and line) that writes `path` for the profile `name`: the
    /// profile itself or the nearest ancestor that has the key, else the
    /// profile's own file without a line.
    fn origin(&self, name: &str, path: &[&str]) -> (String, Option<usize>) {
        let mut current = self.profiles.get(name);
        // Bounded: a chain cannot be longer than the number of profiles.
        for _ in 0..=self.profiles.len() {
            let Some(profile) = current else { break };
            if let Some(source) = self.sources.get(&profile.name) {
                if let Some(line) = key_line(&source.text, path) {
                    return (source.file.clone(), Some(line));
                }
            }
            current = profile
                .extends
                .as_deref()
                .and_then(|parent| self.find(parent));
        }
        let file = self
            .sources
            .get(name)
            .map_or_else(|| format!("profile `{name}`"), |source| source.file.clone());
        (file, None)
    }
}

/// The named target of `area` exists (and, for VPNs, is of the right kind); or,
/// with no name, the configuration has exactly one target of that area.
fn target_check(
    config: &Config,
    area: Area,
    name: Option<&str>,
    vpn_kind: Option<&str>,
) -> Result<(), String> {
    let area_name = area.name();
    let of_area: Vec<&str> = config
        .targets
        .iter()
        .filter(|(_, target)| target.area() == area)
        .map(|(name, _)| name.as_str())
        .collect();
    let chosen = match (name, of_area.as_slice()) {
        (Some(name), _) => name,
        (None, [only]) => *only,
        (None, []) => return Err(format!("homebase.yaml has no {area_name} target")),
        (None, several) => {
            return Err(format!(
                "homebase.yaml has several {area_name} targets ({}); name one with `target:`",
                quoted(several.iter()).join(", ")
            ))
        }
    };
    let Some(target) = config.targets.get(chosen) else {
        return Err(format!(
            "unknown target `{chosen}` (expected {})",
            one_of(
                of_area.iter(),
                &format!("{area_name} targets in homebase.yaml")
            )
        ));
    };
    if target.area() != area {
        return Err(format!(
            "target `{chosen}` is a {} target, not a {area_name} target",
            target.area().name()
        ));
    }
    if let Some(kind) = vpn_kind {
        if target.vpn_protocol() != Some(kind) {
            return Err(format!(
                "a {kind} profile cannot use the {} target `{chosen}`",
                target.kind()
            ));
        }
    }
    Ok(())
}

fn quoted<S: AsRef<str>>(names: impl Iterator<Item = S>) -> Vec<String> {
    names.map(|name| format!("`{}`", name.as_ref())).collect()
}

/// "one of `a`, `b`", or "WHAT; none are configured".
fn one_of<S: AsRef<str>>(names: impl Iterator<Item = S>, what: &str) -> String {
    let names = quoted(names);
    if names.is_empty() {
        format!("{what}; none are configured")
    } else {
        format!("one of {}", names.join(", "))
    }
}
