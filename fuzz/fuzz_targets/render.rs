//! Every shipped template rendered for a person whose fields are hostile:
//! no field adds a line to a text bundle (a config line of its own), and no
//! field reaches an HTML bundle unescaped.
#![no_main]
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use homebase::render::{BundleContext, Templates};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Hostile {
    organisation: String,
    given_name: String,
    family_name: String,
    display_name: String,
    department: String,
    location: String,
    manager: String,
    username: String,
    email: String,
    extra: String,
    model: String,
}

/// Appended to every field: in HTML it must arrive escaped.
const MARK: &str = "<hb-mark>";

fn templates() -> &'static (Templates, Vec<(String, usize)>) {
    static LOADED: OnceLock<(Templates, Vec<(String, usize)>)> = OnceLock::new();
    LOADED.get_or_init(|| {
        let templates = Templates::load(None).expect("the shipped templates load");
        let sample = BundleContext::sample();
        let lines = templates
            .names()
            .iter()
            .map(|name| {
                let text = templates.render(name, &sample).expect("the sample renders");
                (name.to_string(), text.lines().count())
            })
            .collect();
        (templates, lines)
    })
}

fuzz_target!(|hostile: Hostile| {
    let (templates, lines) = templates();
    let mut context = BundleContext::sample();
    let marked = |s: String| format!("{s}{MARK}");
    context.organisation.name = marked(hostile.organisation);
    context.person.given_name = marked(hostile.given_name);
    context.person.family_name = marked(hostile.family_name);
    context.person.display_name = marked(hostile.display_name);
    context.person.department = Some(marked(hostile.department));
    context.person.location = Some(marked(hostile.location));
    context.person.manager = Some(marked(hostile.manager));
    context.person.extra = [("Kostenstelle".to_string(), marked(hostile.extra))].into();
    context.account.username = marked(hostile.username);
    context.account.email = marked(hostile.email);
    for device in &mut context.devices {
        device.model = marked(hostile.model.clone());
    }
    for (name, sample_lines) in lines {
        let text = templates
            .render(name, &context)
            .unwrap_or_else(|e| panic!("{name} failed on person data: {e}"));
        if name.contains(".html") {
            assert!(
                !text.contains(MARK),
                "{name}: a field reached the HTML unescaped"
            );
        } else {
            assert_eq!(
                text.lines().count(),
                *sample_lines,
                "{name}: a field added lines\n{text}"
            );
        }
    }
});
