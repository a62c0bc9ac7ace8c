//! JSON Schemas of homebase.yaml and of profile files, generated from the Rust
//! types, so editors (yaml-language-server) validate and complete the YAML;
//! and of the saved plan (`homebase.plan/v1`), for the scripts that read it.
//!
//! The generated files are committed as `schema/config.schema.json`,
//! `schema/profile.schema.json` and `schema/plan.schema.json`; a test fails
//! when they drift from the types.
//! Regenerate them with `HOMEBASE_UPDATE_SCHEMA=1 cargo test schema`.

use crate::config::Config;
use crate::profile::Profile;

/// The schema of `homebase.yaml`, pretty JSON with a final newline.
pub fn config_schema() -> String {
    pretty(&schemars::schema_for!(Config))
}

/// The schema of a profile file (`profiles/NAME.yaml`), pretty JSON with a final newline.
pub fn profile_schema() -> String {
    pretty(&schemars::schema_for!(Profile))
}

/// The schema of a saved plan and of `plan --format json`.
pub fn plan_schema() -> String {
    pretty(&schemars::schema_for!(crate::report::PlanDocument<'static>))
}

fn pretty(schema: &schemars::Schema) -> String {
    // Serialising a `Schema` (a JSON value) cannot fail.
    let mut text = serde_json::to_string_pretty(schema).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Compare a committed schema file with the generated one; with
    /// `HOMEBASE_UPDATE_SCHEMA=1`, write the generated one instead.
    fn check_committed(file: &str, generated: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("schema")
            .join(file);
        if std::env::var_os("HOMEBASE_UPDATE_SCHEMA").is_some() {
            std::fs::create_dir_all(path.parent().expect("schema folder")).expect("create schema/");
            std::fs::write(&path, generated).expect("write schema");
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "schema/{file} differs from the Rust types; regenerate it with \
             `HOMEBASE_UPDATE_SCHEMA=1 cargo test schema` and commit the result"
        );
    }

    #[test]
    fn committed_config_schema_is_current() {
        check_committed("config.schema.json", &config_schema());
    }

    #[test]
    fn committed_profile_schema_is_current() {
        check_committed("profile.schema.json", &profile_schema());
    }

    #[test]
    fn committed_plan_schema_is_current() {
        check_committed("plan.schema.json", &plan_schema());
    }

    #[test]
    fn the_plan_schema_has_the_groups_beside_the_persons() {
        let plan: serde_json::Value = serde_json::from_str(&plan_schema()).expect("JSON");
        for key in ["schema", "persons", "summary", "groups"] {
            assert!(
                plan["properties"].get(key).is_some(),
                "plan schema lacks `{key}`"
            );
        }
        let required = plan["required"].as_array().expect("required");
        assert!(
            !required.iter().any(|r| r == "groups"),
            "`groups` is an added field: earlier plans have none"
        );
    }

    #[test]
    fn schemas_describe_the_files() {
        let profile: serde_json::Value = serde_json::from_str(&profile_schema()).expect("JSON");
        let properties = &profile["properties"];
        for key in [
            "extends",
            "match",
            "priority",
            "abstract",
            "account",
            "vpn",
            "devices",
            "licenses",
            "artifacts",
        ] {
            assert!(
                properties.get(key).is_some(),
                "profile schema lacks `{key}`"
            );
        }
        assert!(
            properties.get("name").is_none(),
            "`name` comes from the file name"
        );
        assert_eq!(
            profile["additionalProperties"],
            serde_json::Value::Bool(false)
        );
        assert!(
            profile_schema().contains("\"IpNet\""),
            "pools and networks are described"
        );

        let config: serde_json::Value = serde_json::from_str(&config_schema()).expect("JSON");
        for key in ["organisation", "targets", "licenses", "default_profile"] {
            assert!(
                config["properties"].get(key).is_some(),
                "config schema lacks `{key}`"
            );
        }
    }
}
