//! The integration tests: one binary that runs the real `homebase` binary
//! against real servers (slapd, Samba AD, 389-ds, scim2-server, SCIMMY, wireguard-go,
//! openvpn, PostgreSQL — started on loopback by `tests/servers/*.sh`) and
//! against the fakes of `fake_snipeit`, `fake_opnsense` and `fake_wg_portal`.
//!
//! One module per area; `common` holds the harness they share. A test that
//! needs a server this machine lacks says so on stderr and passes, unless
//! the matching `HOMEBASE_REQUIRE_*` variable is set (CI sets them all),
//! where it fails.
//!
//! Run one area with `cargo test --test it ldap::`.

mod common;
mod fake_opnsense;
mod fake_snipeit;
mod fake_wg_portal;

mod adopt;
mod apply;
mod chaos;
mod check;
mod ci_example;
mod delivery;
mod ds389;
mod exec;
mod fuzz_corpus;
mod ldap;
mod letters;
mod lost_state;
mod openvpn;
mod opnsense;
mod plan;
mod postgres;
mod review_html;
mod runners;
mod scim;
mod scim_servers;
mod snipeit;
mod tunnel;
mod wg_portal;
mod wireguard;
