//! Checks of a profile beyond its types: what serde cannot say.

use super::locate::key_line;
use super::matching::{PERSON_FIELDS, UNMATCHABLE_FIELDS};
use super::{Profile, VpnKind};
use crate::error::{Problem, Problems};

/// A problem at the key `path` of the file, with its line when the file writes it.
fn at(file: &str, text: &str, path: &[&str], message: String) -> Problem {
    let mut problem = Problem::new(file, message).key(path.join("."));
    problem.line = key_line(text, path);
    problem
}

/// Check what a file writes itself (`own`: the file deserialized alone, so
/// inherited settings are checked once, at the file that writes them).
pub fn check_own(own: &Profile, file: &str, text: &str, problems: &mut Problems) {
    let profile = own;
    let at = |path: &[&str], message: String| at(file, text, path, message);

    if let Err(err) = minijinja::Environment::new().template_from_str(&profile.account.username) {
        let detail = err.detail().unwrap_or("invalid template");
        problems.push(
            at(
                &["account", "username"],
                format!("the username pattern does not parse: {detail}"),
            )
            .expected("a minijinja pattern such as `{{ given_name[:1] }}{{ family_name }}`"),
        );
    }
    if profile.account.max_length == 0 {
        problems.push(
            at(&["account", "max_length"], "must be at least 1".into())
                .expected("20 for Active Directory"),
        );
    }
    if profile.account.password.length < 8 {
        problems.push(
            at(
                &["account", "password", "length"],
                format!(
                    "a password of {} characters is too short",
                    profile.account.password.length
                ),
            )
            .expected("at least 8; 16 or more recommended"),
        );
    }

    if let Some(pool) = profile.vpn.pool {
        // Network and gateway addresses are never handed out.
        let too_small = match pool {
            ipnet::IpNet::V4(net) => net.prefix_len() > 30,
            ipnet::IpNet::V6(net) => net.prefix_len() > 126,
        };
        if too_small {
            problems.push(
                at(
                    &["vpn", "pool"],
                    format!("the pool {pool} is too small to hand out addresses"),
                )
                .expected("a prefix of /30 or shorter"),
            );
        }
    }

    for (index, device) in profile.devices.iter().enumerate() {
        if device.kind.trim().is_empty() {
            problems.push(at(
                &["devices", "kind"],
                format!("device {} has no kind", index + 1),
            ));
        }
        if device.count == 0 {
            problems.push(
                at(
                    &["devices", "count"],
                    format!("device `{}` has count 0", device.kind),
                )
                .expected("1 or more, or leave the device out"),
            );
        }
    }

    for rule in &profile.rules {
        if rule.is_empty() {
            problems.push(
                at(&["match"], "an empty rule would fit everybody".into())
                    .expected("fields such as `department: [\"Bürgeramt\"]`; use `default_profile` for everybody else"),
            );
        }
        for (field, values) in rule {
            let column = ["match", field.as_str()];
            if UNMATCHABLE_FIELDS.contains(&field.trim().to_lowercase().as_str()) {
                problems.push(
                    at(&column, format!("rules cannot match on `{field}`"))
                        .expected(format!("{} or a staff column", PERSON_FIELDS.join(", "))),
                );
            }
            if values.is_empty() {
                problems.push(
                    at(
                        &column,
                        format!("no values for `{field}`: the rule fits nobody"),
                    )
                    .expected("a list of values; a trailing `*` matches by prefix"),
                );
            }
        }
    }
}

/// Check the merged profile: what only the whole chain can say.
pub fn check_resolved(profile: &Profile, file: &str, text: &str, problems: &mut Problems) {
    if !profile.is_abstract && profile.vpn.kind != VpnKind::None && profile.vpn.pool.is_none() {
        problems.push(
            at(
                file,
                text,
                &["vpn"],
                "a VPN profile needs an address pool".into(),
            )
            .expected("`pool:` such as 10.20.0.0/17, here or in the profile it extends"),
        );
    }
}
