use super::*;

fn letter(id: &str, department: Option<&str>) -> Letter {
    let mut context = BundleContext::sample();
    context.person.id = id.into();
    context.person.department = department.map(String::from);
    Letter {
        context,
        wireguard: Some("[Interface]\nPrivateKey = x\n".into()),
        print_password: None,
    }
}

fn options() -> Options {
    Options {
        by: LetterOrder::Department,
        form: DinForm::B,
        print_password: true,
    }
}

fn templates() -> Templates {
    Templates::load(None).unwrap()
}

#[test]
fn each_person_starts_on_an_odd_page() {
    let printed = print(
        &templates(),
        vec![letter("P1", Some("B")), letter("P2", Some("A"))],
        &options(),
    )
    .unwrap();
    assert!(printed.pdf.starts_with(b"%PDF-"));
    assert_eq!(printed.pages % 2, 0);
    assert!(printed.unsorted.is_empty());
}

#[test]
fn persons_without_the_sort_field_go_last_and_are_named() {
    let printed = print(
        &templates(),
        vec![letter("P1", None), letter("P2", Some("A"))],
        &options(),
    )
    .unwrap();
    assert_eq!(printed.unsorted, ["P1"]);
}

#[test]
fn an_address_too_long_for_the_window_is_an_error_not_cut() {
    let mut long = letter("P1", Some(&"Sehr lange Abteilungsbezeichnung ".repeat(8)));
    long.context.person.location = Some("Außenstelle Hafen".into());
    let err = print(&templates(), vec![long], &options()).err().unwrap();
    let text = err.to_string();
    assert!(text.contains("the window holds 6"), "{text}");
    assert!(text.contains("Erika"), "{text}");
}

#[test]
fn a_profile_decides_whether_the_password_is_printed() {
    let templates = templates();
    let password = letter("P1", Some("A"))
        .context
        .account
        .initial_password
        .unwrap();
    let render = |print: Option<bool>, default: bool| {
        let mut one = letter("P1", Some("A"));
        one.print_password = print;
        let options = Options {
            print_password: default,
            ..options()
        };
        templates
            .render(TEMPLATE, &context_of(&one, &options))
            .unwrap()
    };
    for (print, default) in [(Some(true), false), (None, true)] {
        let text = render(print, default);
        assert!(text.contains(&password), "{print:?}/{default}: not printed");
        assert!(!text.contains("getrennt"), "{print:?}/{default}");
    }
    for (print, default) in [(Some(false), true), (None, false)] {
        let text = render(print, default);
        assert!(!text.contains(&password), "{print:?}/{default}: printed");
        // The letter and the handover sheet say so.
        assert!(text.contains("erhalten Sie getrennt"), "{text}");
        assert!(
            text.contains("@kv Startpasswort | wird getrennt übergeben"),
            "{text}"
        );
    }
    // No password issued (a kept account): nothing to hand over.
    let mut kept = letter("P1", Some("A"));
    kept.context.account.initial_password = None;
    kept.print_password = Some(false);
    let text = templates
        .render(TEMPLATE, &context_of(&kept, &options()))
        .unwrap();
    assert!(!text.contains("wird getrennt übergeben"), "{text}");
}
