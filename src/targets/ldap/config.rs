//! `kind: ldap` in `homebase.yaml`: where the directory is, how to reach it
//! safely, and where accounts and groups live. Checked without the network
//! by [`LdapConfig::resolve`]; every problem is a configuration error (exit 2).

use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Limits;
use crate::targets::common::{SecretSource, Timeouts};

/// An OpenLDAP server or an Active Directory domain, over LDAP(S).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// `ldaps://host[:port]` (TLS from the start) or `ldap://host[:port]`
    /// (with `starttls: true` to encrypt). Write the name the server's
    /// certificate carries (an IP address only if the certificate lists it).
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before binding.
    #[serde(default)]
    pub starttls: bool,
    /// PEM file with the CA certificate(s) the server's certificate must chain
    /// to, instead of the system's trust store (relative to this file).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The DN homebase binds as (a service account that may write below `base_dn`).
    pub bind_dn: String,
    /// Environment variable holding the bind password.
    #[serde(default)]
    pub bind_password_env: Option<String>,
    /// File holding the bind password on its first line (relative to this file;
    /// keep it readable by the admins only).
    #[serde(default)]
    pub bind_password_file: Option<PathBuf>,
    /// Everything homebase reads and writes lies below this DN.
    pub base_dn: String,
    /// Which directory this is: attribute names, password and disable rules follow.
    #[serde(default)]
    pub flavour: Flavour,
    /// Container of accounts whose profile names no `ou`, relative to `base_dn`.
    /// Default: `ou=People` (OpenLDAP), `CN=Users` (Active Directory).
    #[serde(default)]
    pub users_ou: Option<String>,
    /// Container of the profiles' groups, relative to `base_dn`.
    /// Default: `ou=Groups` (OpenLDAP), `CN=Users` (Active Directory).
    #[serde(default)]
    pub groups_ou: Option<String>,
    /// Create missing `ou=` containers and groups when first needed.
    #[serde(default = "yes")]
    pub create_missing: bool,
    /// OpenLDAP and 389-ds: also make accounts `posixAccount`s with a uidNumber from
    /// this range (allocated once per account, unique, never changed).
    #[serde(default)]
    pub posix: Option<PosixConfig>,
    /// Active Directory only: the suffix of `userPrincipalName`
    /// (default: the organisation's `domain`).
    #[serde(default)]
    pub upn_suffix: Option<String>,
    /// Connections kept open; operations are spread over them.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// Entries per page of the paged searches (Active Directory sends at most 1,000).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    #[serde(flatten)]
    pub timeouts: Timeouts,
    #[serde(flatten)]
    pub limits: Limits,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Flavour {
    /// `inetOrgPerson` (+ `shadowAccount`, `posixAccount`), `groupOfNames`,
    /// `userPassword`, expiry in `shadowExpire`, disabled by the ppolicy
    /// overlay's `pwdAccountLockedTime`.
    #[default]
    Openldap,
    /// `user` with `sAMAccountName`, `unicodePwd`, `userAccountControl`,
    /// `accountExpires`; groups by `member`.
    ActiveDirectory,
    /// 389 Directory Server (also under FreeIPA / Red Hat IdM):
    /// `inetOrgPerson` + `nsAccount` (+ `shadowAccount`, `posixAccount`),
    /// `groupOfNames`, disabled by `nsAccountLock`, must-change through the
    /// server's password policy (`passwordMustChange: on`).
    #[serde(rename = "389ds")]
    Ds389,
}

impl Flavour {
    pub fn name(self) -> &'static str {
        match self {
            Flavour::Openldap => "openldap",
            Flavour::ActiveDirectory => "active-directory",
            Flavour::Ds389 => "389ds",
        }
    }

    /// Every flavour's name as written in `homebase.yaml`.
    pub const NAMES: [&'static str; 3] = ["openldap", "active-directory", "389ds"];
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PosixConfig {
    /// First uidNumber homebase hands out.
    pub uid_first: u32,
    /// Last uidNumber homebase hands out.
    pub uid_last: u32,
    /// The primary group (gidNumber) of every account.
    pub gid_number: u32,
    /// Home directory; `{username}` is replaced.
    #[serde(default = "default_home")]
    pub home_directory: String,
    #[serde(default = "default_shell")]
    pub login_shell: String,
}

/// The target's settings after checking, with the secret loaded.
pub struct Resolved {
    pub url: String,
    pub tls: TlsMode,
    pub ca_file: Option<PathBuf>,
    pub bind_dn: String,
    pub bind_password: Secret,
    pub base_dn: String,
    pub flavour: Flavour,
    pub users_ou: String,
    pub groups_ou: String,
    pub create_missing: bool,
    pub posix: Option<PosixConfig>,
    pub upn_suffix: String,
    pub pool_size: usize,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub page_size: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// `ldap://` without StartTLS.
    Plain,
    StartTls,
    /// `ldaps://`.
    Ldaps,
}

pub use crate::targets::common::Secret;

impl LdapConfig {
    /// Check the configuration and load the bind password. `path` resolves
    /// relative paths; `domain` is the organisation's mail domain. Errors are
    /// sentences for the admin, naming the key to fix.
    pub fn resolve(
        &self,
        name: &str,
        path: impl Fn(&std::path::Path) -> PathBuf,
        domain: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Resolved, String> {
        self.checked(name, path, domain, Some(&env))
    }

    /// Everything `resolve` checks except the bind password itself, which
    /// may only exist where homebase runs for real (`homebase check`).
    pub fn validate(&self, name: &str, domain: &str) -> Result<(), String> {
        self.checked(
            name,
            |p| p.to_path_buf(),
            domain,
            None::<&fn(&str) -> Option<String>>,
        )
        .map(|_| ())
    }

    /// The problems `homebase check` reports (found without the network):
    /// every one of them, each at its key.
    pub fn problems(&self, name: &str, source: &str) -> Vec<crate::error::Problem> {
        let mut found = self.setting_problems();
        if let Some(problem) = self.password_source().problems(name, "").first() {
            found.push(("bind_password_env", problem.message.clone()));
        }
        found
            .into_iter()
            .map(|(key, message)| {
                crate::error::Problem::new(source, message).column(format!("targets.{name}.{key}"))
            })
            .collect()
    }

    pub fn password_source(&self) -> SecretSource<'_> {
        SecretSource {
            key: "bind_password",
            what: "bind password",
            env: self.bind_password_env.as_deref(),
            file: self.bind_password_file.as_deref(),
        }
    }

    /// How the URL says to connect, or what is wrong with it.
    fn tls_mode(&self) -> Result<TlsMode, (&'static str, String)> {
        let lower = self.url.to_ascii_lowercase();
        let tls = if lower.starts_with("ldaps://") {
            if self.starttls {
                return Err((
                    "starttls",
                    format!(
                        "StartTLS is for ldap:// URLs; {} is TLS from the start",
                        self.url
                    ),
                ));
            }
            TlsMode::Ldaps
        } else if lower.starts_with("ldap://") {
            match self.starttls {
                true => TlsMode::StartTls,
                false => TlsMode::Plain,
            }
        } else {
            return Err((
                "url",
                format!("\"{}\" is not an ldap:// or ldaps:// URL", self.url),
            ));
        };
        let host = self.url.split("://").nth(1).unwrap_or_default();
        if host.trim_matches('/').is_empty() {
            return Err(("url", format!("\"{}\" names no host", self.url)));
        }
        if self.flavour == Flavour::ActiveDirectory && tls == TlsMode::Plain {
            return Err((
                "url",
                format!(
                    "Active Directory sets passwords only over an encrypted connection, and {} is plain LDAP; use ldaps:// or set `starttls: true`",
                    self.url
                ),
            ));
        }
        Ok(tls)
    }

    fn users_ou(&self) -> String {
        let ad = self.flavour == Flavour::ActiveDirectory;
        self.users_ou
            .clone()
            .unwrap_or_else(|| if ad { "CN=Users" } else { "ou=People" }.to_string())
    }

    fn groups_ou(&self) -> String {
        let ad = self.flavour == Flavour::ActiveDirectory;
        self.groups_ou
            .clone()
            .unwrap_or_else(|| if ad { "CN=Users" } else { "ou=Groups" }.to_string())
    }

    /// Every problem of the settings themselves (not the password's source),
    /// as (key, what is wrong).
    fn setting_problems(&self) -> Vec<(&'static str, String)> {
        let mut found = Vec::new();
        if let Err(problem) = self.tls_mode() {
            found.push(problem);
        }
        for (key, dn) in [("bind_dn", &self.bind_dn), ("base_dn", &self.base_dn)] {
            match super::escape::parse_dn(dn) {
                Some(rdns) if !rdns.is_empty() => {}
                _ => found.push((key, format!("\"{dn}\" is not a DN"))),
            }
        }
        for (key, dn) in [
            ("users_ou", self.users_ou()),
            ("groups_ou", self.groups_ou()),
        ] {
            if super::escape::parse_dn(&dn).is_none() {
                found.push((key, format!("\"{dn}\" is not a DN relative to base_dn")));
            }
        }
        if let Some(posix) = &self.posix {
            if self.flavour == Flavour::ActiveDirectory {
                found.push((
                    "posix",
                    "posixAccount numbers are for OpenLDAP and 389-ds".into(),
                ));
            } else if posix.uid_first == 0 || posix.uid_first > posix.uid_last {
                found.push((
                    "posix",
                    format!(
                        "uid_first {} .. uid_last {} is not a range of user ids",
                        posix.uid_first, posix.uid_last
                    ),
                ));
            }
        }
        if self.pool_size == 0 || self.pool_size > 64 {
            found.push(("pool_size", "between 1 and 64".into()));
        }
        if self.page_size == 0 || self.page_size > 1000 {
            found.push((
                "page_size",
                "between 1 and 1000 (Active Directory's maximum)".into(),
            ));
        }
        if self.timeouts.connect_timeout_seconds == 0 {
            found.push((
                "connect_timeout_seconds",
                "timeouts are seconds, at least 1".into(),
            ));
        }
        if self.timeouts.timeout_seconds == 0 {
            found.push(("timeout_seconds", "timeouts are seconds, at least 1".into()));
        }
        found
    }

    /// `env: None`: do not load the password.
    fn checked(
        &self,
        name: &str,
        path: impl Fn(&std::path::Path) -> PathBuf,
        domain: &str,
        env: Option<&impl Fn(&str) -> Option<String>>,
    ) -> Result<Resolved, String> {
        let at = |key: &str| format!("target \"{name}\": {key}");
        if let Some((key, what)) = self.setting_problems().into_iter().next() {
            return Err(format!("{}: {what}", at(key)));
        }
        let tls = self
            .tls_mode()
            .map_err(|(key, what)| format!("{}: {what}", at(key)))?;
        let source = self.password_source();
        let bind_password = match env {
            Some(env) => source.read(name, &path, env)?,
            None => match source.problems(name, "").first() {
                Some(problem) => {
                    return Err(format!("{}: {}", at("bind_password_env"), problem.message))
                }
                None => Secret::new(""),
            },
        };
        Ok(Resolved {
            url: self.url.clone(),
            tls,
            ca_file: self.ca_file.as_deref().map(path),
            bind_dn: self.bind_dn.clone(),
            bind_password,
            base_dn: self.base_dn.clone(),
            flavour: self.flavour,
            users_ou: self.users_ou(),
            groups_ou: self.groups_ou(),
            create_missing: self.create_missing,
            posix: self.posix.clone(),
            upn_suffix: self
                .upn_suffix
                .clone()
                .unwrap_or_else(|| domain.to_string()),
            pool_size: self.pool_size,
            connect_timeout: self.timeouts.connect_timeout(),
            timeout: self.timeouts.timeout(),
            page_size: self.page_size as i32,
        })
    }
}

fn yes() -> bool {
    true
}
fn default_pool_size() -> usize {
    4
}
fn default_page_size() -> u32 {
    500
}
fn default_home() -> String {
    "/home/{username}".into()
}
fn default_shell() -> String {
    "/bin/bash".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> LdapConfig {
        serde_norway::from_str(yaml).unwrap()
    }

    fn resolve(c: &LdapConfig) -> Result<Resolved, String> {
        c.resolve(
            "dir",
            |p| p.to_path_buf(),
            "example.org",
            |var| (var == "PW").then(|| "s3cret".to_string()),
        )
    }

    const BASE: &str = "url: ldaps://127.0.0.1:6360\nbind_dn: cn=admin,dc=example,dc=org\nbind_password_env: PW\nbase_dn: dc=example,dc=org\n";

    #[test]
    fn check_reports_every_problem_at_its_key() {
        let yaml = "url: http://ldap.example.org\nbind_dn: nonsense\nbase_dn: dc=example,dc=org\npool_size: 0\ntimeout_seconds: 0\n";
        let problems = config(yaml).problems("dir", "homebase.yaml");
        let keys: Vec<&str> = problems
            .iter()
            .filter_map(|p| p.column.as_deref())
            .collect();
        assert_eq!(
            keys,
            [
                "targets.dir.url",
                "targets.dir.bind_dn",
                "targets.dir.pool_size",
                "targets.dir.timeout_seconds",
                "targets.dir.bind_password_env",
            ],
            "{problems:?}"
        );
    }

    #[test]
    fn defaults_per_flavour() {
        let r = resolve(&config(BASE)).unwrap();
        assert_eq!(r.tls, TlsMode::Ldaps);
        assert_eq!(
            (r.users_ou.as_str(), r.groups_ou.as_str()),
            ("ou=People", "ou=Groups")
        );
        assert_eq!(r.bind_password.expose(), "s3cret");
        assert_eq!(format!("{:?}", r.bind_password), "<redacted>");
        let ad = resolve(&config(&format!("{BASE}flavour: active-directory\n"))).unwrap();
        assert_eq!(
            (ad.users_ou.as_str(), ad.upn_suffix.as_str()),
            ("CN=Users", "example.org")
        );
    }

    #[test]
    fn active_directory_refuses_plain_ldap() {
        let c = config(
            "url: ldap://dc1\nbind_dn: cn=a,dc=x\nbind_password_env: PW\nbase_dn: dc=x\nflavour: active-directory\n",
        );
        let err = resolve(&c).err().unwrap();
        assert!(err.contains("plain LDAP"), "{err}");
        assert!(err.contains("starttls"), "{err}");
        let mut c = c;
        c.starttls = true;
        assert_eq!(resolve(&c).unwrap().tls, TlsMode::StartTls);
    }

    #[test]
    fn the_password_comes_from_one_place() {
        let mut c = config(BASE);
        c.bind_password_env = Some("MISSING".into());
        assert!(resolve(&c).err().unwrap().contains("MISSING is not set"));
        c.bind_password_env = None;
        assert!(resolve(&c).err().unwrap().contains("set one of them"));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        c.bind_password_file = Some(file);
        assert_eq!(resolve(&c).unwrap().bind_password.expose(), "from-file");
        c.bind_password_env = Some("PW".into());
        assert!(resolve(&c).err().unwrap().contains("not both"));
    }

    #[test]
    fn bad_urls_and_ranges() {
        let mut c = config(BASE);
        c.url = "http://x".into();
        assert!(resolve(&c).err().unwrap().contains("not an ldap://"));
        c.url = "ldaps://x".into();
        c.starttls = true;
        assert!(resolve(&c)
            .err()
            .unwrap()
            .contains("StartTLS is for ldap://"));
        c.starttls = false;
        c.posix = Some(PosixConfig {
            uid_first: 20,
            uid_last: 10,
            gid_number: 1,
            home_directory: default_home(),
            login_shell: default_shell(),
        });
        assert!(resolve(&c).err().unwrap().contains("not a range"));
        assert!(
            serde_norway::from_str::<LdapConfig>(&format!("{BASE}bind_password: x\n")).is_err()
        );
    }
}
