//! What the kinds that speak HTTP to a server share: which URLs are allowed
//! (https, plain http only on this machine) and the verified reqwest client.

use std::path::Path;

use crate::error::Problem;
use crate::targets::common::Timeouts;

/// Problems of a server URL for `check`: not a URL, or plain http to
/// another machine (the credentials would travel in the clear).
pub fn url_problems(name: &str, key: &str, url: &str, example: &str, source: &str) -> Vec<Problem> {
    let column = format!("targets.{name}.{key}");
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "https" => Vec::new(),
        Ok(u) if u.scheme() == "http" && is_loopback(&u) => Vec::new(),
        Ok(u) if u.scheme() == "http" => {
            vec![
                Problem::new(source, "plain http would send the credentials in the clear")
                    .column(column)
                    .expected("an https:// URL (http:// only for 127.0.0.1, ::1 or localhost)"),
            ]
        }
        Ok(_) | Err(_) => vec![Problem::new(source, format!("\"{url}\" is not a URL"))
            .column(column)
            .expected(format!("e.g. {example}"))],
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"))
}

/// A client that verifies TLS (system roots, or `ca_file`) and keeps to the
/// target's timeouts. Errors are for the admin.
pub fn client(ca_file: Option<&Path>, timeouts: &Timeouts) -> Result<reqwest::Client, String> {
    let tls =
        crate::targets::common::tls::client_config(ca_file).map_err(|e| format!("ca_file: {e}"))?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(timeouts.timeout())
        .connect_timeout(timeouts.connect_timeout())
        .user_agent(concat!("homebase/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_only_on_this_machine() {
        let p = |url: &str| url_problems("gw", "url", url, "https://fw.example", "homebase.yaml");
        assert!(p("https://fw.example").is_empty());
        assert!(p("http://127.0.0.1:8080").is_empty());
        assert_eq!(p("http://fw.example").len(), 1);
        assert_eq!(p("fw.example").len(), 1);
    }
}
