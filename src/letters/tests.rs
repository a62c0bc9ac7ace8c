use super::*;

fn letter(id: &str, department: Option<&str>) -> Letter {
    let mut context = BundleContext::sample();
    context.person.id = id.into();
    context.person.department = department.map(String::from);
    Letter {
        context,
        wireguard: Some("[Interface]\nPrivateKey = x\n".into()),
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
