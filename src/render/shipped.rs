//! The templates shipped inside the binary (`templates/*.j2` of the repository),
//! used unless a template folder overrides them, and written out by `init`.

/// `(name, text)` of every shipped template.
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "handover.html.j2",
        include_str!("../../templates/handover.html.j2"),
    ),
    (
        "letter.pdf.j2",
        include_str!("../../templates/letter.pdf.j2"),
    ),
    (
        "openvpn.ovpn.j2",
        include_str!("../../templates/openvpn.ovpn.j2"),
    ),
    (
        "welcome.html.j2",
        include_str!("../../templates/welcome.html.j2"),
    ),
    (
        "welcome.md.j2",
        include_str!("../../templates/welcome.md.j2"),
    ),
    (
        "wireguard.conf.j2",
        include_str!("../../templates/wireguard.conf.j2"),
    ),
];
