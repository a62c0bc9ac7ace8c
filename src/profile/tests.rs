//! Tests of loading, merging and choosing profiles.

use std::fs;
use std::path::Path;

use ipnet::IpNet;

use super::*;
use crate::config::{Config, DEFAULT_CONFIG};
use crate::render::Templates;
use crate::targets::TargetConfig;

fn person(department: Option<&str>) -> Person {
    let mut person = Person::example("1001", "Jürgen", "Weiß");
    person.department = department.map(Into::into);
    person
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        fs::write(dir.join(name), text).expect("write test profile");
    }
}

fn load_dir(files: &[(&str, &str)]) -> Result<ProfileSet, Problems> {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), files);
    ProfileSet::load(Some(dir.path()))
}

fn shipped() -> ProfileSet {
    match ProfileSet::load(None) {
        Ok(set) => set,
        Err(problems) => panic!("shipped profiles do not load:\n{problems}"),
    }
}

fn default_config() -> Config {
    serde_norway::from_str(DEFAULT_CONFIG).expect("homebase.yaml parses")
}

#[test]
fn shipped_profiles_load_with_merged_values() {
    let set = shipped();
    assert_eq!(
        set.profiles.keys().collect::<Vec<_>>(),
        ["admin", "base", "field", "office"]
    );
    assert_eq!(set.assignable(), ["admin", "field", "office"]);

    let base = &set.profiles["base"];
    assert!(base.is_abstract);
    assert_eq!(
        base.account.username,
        "{{ given_name[:1] }}{{ family_name }}"
    );

    let office = &set.profiles["office"];
    assert!(!office.is_abstract, "`abstract` is not inherited");
    assert_eq!(office.account.groups, ["staff", "homeoffice"]);
    assert_eq!(office.account.expiry_days, Some(365));
    assert_eq!(office.vpn.kind, VpnKind::Wireguard);
    assert_eq!(office.vpn.tunnel, Tunnel::Split);
    assert_eq!(office.vpn.mtu, Some(1380));
    assert_eq!(office.vpn.keepalive, Some(25));
    assert_eq!(office.vpn.dns_search, ["musterstadt.example"]);
    let kinds: Vec<&str> = office.devices.iter().map(|d| d.kind.as_str()).collect();
    assert_eq!(kinds, ["notebook", "monitor", "headset"]);
    assert_eq!(office.artifacts.len(), 4);
    assert!(office
        .description
        .as_deref()
        .is_some_and(|d| d.starts_with("Büro")));

    let field = &set.profiles["field"];
    assert_eq!(field.vpn.tunnel, Tunnel::Full);
    assert!(field.vpn.windows_full_tunnel_split);
    assert_eq!(field.devices.len(), 1);
    assert_eq!(
        field.vpn.dns, office.vpn.dns,
        "maps merge: DNS comes from base"
    );

    let admin = &set.profiles["admin"];
    assert_eq!(
        admin.account.groups,
        ["staff", "homeoffice", "it-admins", "vpn-admins"]
    );
    assert_eq!(admin.account.expiry_days, Some(90));
    assert_eq!(admin.account.password.length, 20);
    assert!(
        admin.account.password.symbols,
        "nested maps merge: symbols from base"
    );
    assert!(admin.vpn.preshared_key);
    assert!(admin.priority > field.priority);
}

#[test]
fn shipped_files_point_editors_at_the_schema() {
    for (name, text) in SHIPPED {
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schema/profile.schema.json\n"),
            "{name}.yaml"
        );
    }
}

#[test]
fn shipped_pools_lie_in_the_server_network_and_do_not_overlap() {
    let config = default_config();
    let Some(TargetConfig::WireguardFile(wg0)) = config.targets.get("wg0") else {
        panic!("homebase.yaml has a wireguard-file target wg0");
    };
    let server = wg0.address.trunc();
    let set = shipped();
    let pools: Vec<(&str, IpNet)> = set
        .profiles
        .values()
        .filter(|p| !p.is_abstract)
        .filter_map(|p| p.vpn.pool.map(|pool| (p.name.as_str(), pool)))
        .collect();
    assert_eq!(pools.len(), 3);
    for (i, (name, pool)) in pools.iter().enumerate() {
        assert!(server.contains(pool), "{name}: {pool} outside {server}");
        for (other, other_pool) in &pools[i + 1..] {
            assert!(
                !pool.contains(other_pool) && !other_pool.contains(pool),
                "{name} {pool} overlaps {other} {other_pool}"
            );
        }
    }
}

#[test]
fn shipped_profiles_refer_to_configured_things() {
    let templates = Templates::load(None).expect("shipped templates");
    let problems = shipped().check_references(&default_config(), &templates);
    assert!(problems.is_empty(), "{problems}");
    assert_eq!(shipped().check_default("office"), Ok(()));
}

#[test]
fn references_point_at_the_file_that_writes_them() {
    let mut config = default_config();
    config.licenses.remove("vpn-client");
    config.targets.remove("stock");
    let templates = Templates::load(None).expect("shipped templates");
    let problems = shipped().check_references(&config, &templates);
    let lines: Vec<String> = problems.0.iter().map(ToString::to_string).collect();
    assert!(
        lines.iter().any(|l| l.starts_with("profiles/base.yaml:")
            && l.contains("unknown license pool `vpn-client`")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("profiles/office.yaml:") && l.contains("no inventory target")),
        "{lines:#?}"
    );
}

#[test]
fn choose_by_column_then_rules_then_default() {
    let set = shipped();
    let name = |p: &Person| set.choose(p, "office").map(|p| p.name.clone());

    assert_eq!(name(&person(Some("Bürgeramt"))), Ok("office".into()));
    assert_eq!(name(&person(None)), Ok("office".into()));
    assert_eq!(
        name(&person(Some("Ordnungsamt – Vollzugsdienst"))),
        Ok("field".into())
    );
    assert_eq!(name(&person(Some("bauaufsicht"))), Ok("field".into()));
    assert_eq!(
        name(&person(Some("Informationstechnik"))),
        Ok("admin".into())
    );

    let mut outpost = person(Some("Umweltamt"));
    assert_eq!(
        name(&outpost),
        Ok("office".into()),
        "a rule needs all its fields"
    );
    outpost.location = Some("Außenstelle Nord".into());
    assert_eq!(name(&outpost), Ok("field".into()));

    let mut explicit = person(Some("Informationstechnik"));
    explicit.profile = Some("FIELD".into());
    assert_eq!(
        name(&explicit),
        Ok("field".into()),
        "the column wins over rules"
    );
}

#[test]
fn choose_refuses_unknown_and_abstract_names() {
    let set = shipped();
    let mut p = person(None);
    p.profile = Some("ofice".into());
    let err = set.choose(&p, "office").expect_err("unknown");
    assert!(err.contains("did you mean `office`?"), "{err}");
    assert!(err.contains("admin, field, office"), "{err}");

    p.profile = Some("base".into());
    let err = set.choose(&p, "office").expect_err("abstract");
    assert!(err.contains("abstract"), "{err}");

    let err = set
        .choose(&person(None), "nobody")
        .expect_err("bad default");
    assert!(err.contains("default profile `nobody`"), "{err}");
    assert!(set.check_default("base").is_err());
}

#[test]
fn equal_priority_goes_to_the_name_that_sorts_first() {
    let rule = "match:\n  - department: [\"Stadtkasse\"]\n";
    let set = load_dir(&[
        ("zeta.yaml", &format!("priority: 5\n{rule}")),
        ("alpha.yaml", &format!("priority: 5\n{rule}")),
        ("low.yaml", &format!("priority: 1\n{rule}")),
        (
            "hidden.yaml",
            &format!("abstract: true\npriority: 9\n{rule}"),
        ),
    ])
    .expect("loads");
    let chosen = set
        .choose(&person(Some("STADTKASSE")), "low")
        .expect("fits");
    assert_eq!(chosen.name, "alpha");
}

#[test]
fn own_keys_are_not_inherited() {
    let set = load_dir(&[
        (
            "parent.yaml",
            "description: parent\npriority: 7\nmatch:\n  - department: [\"Jugendamt\"]\naccount:\n  groups: [a]\n",
        ),
        ("child.yaml", "extends: parent\n"),
    ])
    .expect("loads");
    let child = &set.profiles["child"];
    assert!(child.rules.is_empty());
    assert_eq!(child.priority, 0);
    assert_eq!(child.description, None);
    assert_eq!(child.extends.as_deref(), Some("parent"));
    assert_eq!(child.account.groups, ["a"]);
    let chosen = set
        .choose(&person(Some("Jugendamt")), "child")
        .expect("fits");
    assert_eq!(chosen.name, "parent");
}

#[test]
fn cycles_are_named_whole_and_reported_once() {
    let problems = load_dir(&[
        ("office.yaml", "# a cycle\nextends: base\n"),
        ("base.yaml", "extends: office\n"),
        ("field.yaml", "extends: office\n"),
        ("self.yml", "extends: self\n"),
    ])
    .expect_err("cycles");
    let lines: Vec<String> = problems.0.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(lines[0]
        .contains("base.yaml:1: key \"extends\": `extends` forms a cycle: base -> office -> base"));
    assert!(lines[1].contains("self.yml:1: key \"extends\": `extends` forms a cycle: self -> self"));
}

#[test]
fn every_problem_of_every_file_in_one_pass() {
    let problems = load_dir(&[
        ("office.yaml", "extends: bsae\n"),
        ("base.yaml", "account:\n  groups: [staff]\n  grups: [x]\n"),
        (
            "field.yaml",
            "extends: base\nvpn:\n  kind: wireguard\n  mtu: huge\n",
        ),
        (
            "admin.yaml",
            "extends: nothing-like-it\nmatch:\n  - start: [\"2024*\"]\n",
        ),
        ("admin.yml", "priority: 1\n"),
        ("school.yaml", "extends: base\n"),
        ("notes.txt", "not a profile"),
    ])
    .expect_err("problems");
    let lines: Vec<String> = problems.0.iter().map(ToString::to_string).collect();
    let has = |needle: &str| lines.iter().any(|line| line.contains(needle));
    assert!(
        has("base.yaml:3: key \"account\": unknown field `grups`"),
        "{lines:#?}"
    );
    assert!(has("field.yaml:4: key \"vpn.mtu\": invalid"), "{lines:#?}");
    assert!(
        has("admin.yaml:3: key \"match.start\": rules cannot match on `start`"),
        "{lines:#?}"
    );
    assert!(
        has("admin.yaml:1: key \"extends\": unknown profile `nothing-like-it` (expected one of"),
        "{lines:#?}"
    );
    assert!(
        has("admin.yml: the profile name `admin` is taken by"),
        "{lines:#?}"
    );
    // `base` failed to parse, but it is still the one meant.
    assert!(
        has("office.yaml:1: key \"extends\": unknown profile `bsae`; did you mean `base`?"),
        "{lines:#?}"
    );
    // `school` extends the broken `base`: the cause is reported once, at base.
    assert!(!has("school.yaml"), "{lines:#?}");
    assert_eq!(lines.len(), 6, "{lines:#?}");
}

#[test]
fn names_differing_only_in_case_collide() {
    let problems = load_dir(&[
        ("Office.yaml", "priority: 1\n"),
        ("office.yml", "priority: 2\n"),
    ])
    .expect_err("dup");
    assert!(
        problems
            .to_string()
            .contains("the profile name `office` is taken by"),
        "{problems}"
    );
}

#[test]
fn unknown_parent_suggests_a_close_name() {
    let problems = load_dir(&[
        ("base.yaml", "abstract: true\n"),
        ("office.yaml", "extends: bsae\n"),
    ])
    .expect_err("unknown parent");
    let line = problems.to_string();
    assert!(
        line.contains(
            "office.yaml:1: key \"extends\": unknown profile `bsae`; did you mean `base`?"
        ),
        "{line}"
    );
}

#[test]
fn vpn_profiles_need_a_pool_and_parents_are_found_case_insensitively() {
    let problems = load_dir(&[
        ("Base.yaml", "abstract: true\nvpn:\n  kind: wireguard\n"),
        ("office.yaml", "extends: base\n"),
    ])
    .expect_err("no pool");
    let line = problems.to_string();
    assert!(
        line.contains("office.yaml: key \"vpn\": a VPN profile needs an address pool"),
        "{line}"
    );
}

#[test]
fn folders_without_profiles_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let problems = ProfileSet::load(Some(dir.path())).expect_err("empty");
    assert!(problems.to_string().contains("no profile files"));
    let problems = ProfileSet::load(Some(&dir.path().join("missing"))).expect_err("missing");
    assert!(problems
        .to_string()
        .contains("cannot read the profile folder"));
}
