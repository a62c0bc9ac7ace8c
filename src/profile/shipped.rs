//! The profiles shipped inside the binary (`profiles/*.yaml` of the repository),
//! used when the configuration names no profile folder, and written out by `init`.

/// `(name, text)` of every shipped profile; the name is the file stem.
pub const SHIPPED: &[(&str, &str)] = &[
    ("admin", include_str!("../../profiles/admin.yaml")),
    ("base", include_str!("../../profiles/base.yaml")),
    ("field", include_str!("../../profiles/field.yaml")),
    ("office", include_str!("../../profiles/office.yaml")),
];
