//! Entry points of the fuzz targets (`fuzz/`): each runs one reader of
//! outside data the way homebase runs it, from bytes or text instead of a
//! file or an HTTP answer, so the fuzzers exercise the real parsers and not
//! copies. Not an API: nothing else calls these.

pub mod targets;

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

use crate::error::Problems;
use crate::targets::scim::model::{
    BulkResponse, ErrorBody, Group, ListResponse, ServiceProviderConfig, User,
};
use crate::targets::snipeit::model::{Envelope, Hardware, Page, StatusRow};

pub use crate::input::load_staff_bytes;
pub use crate::targets::common::wg_quick::ConfFile;
pub use crate::targets::local_directory::{parse_ldif, render_ldif};
pub use crate::targets::openvpn::easyrsa::{parse_index, serial_hex};
pub use crate::targets::wireguard::dump::Dump;

/// `homebase.yaml` as `Settings::resolve` reads it: the problems of a text
/// that does not parse (with lines and did-you-means), or those each target
/// finds in its settings.
pub fn config(text: &str) -> Problems {
    const FILE: &str = "homebase.yaml";
    match serde_norway::from_str::<crate::config::Config>(text) {
        Err(err) => crate::config::config_problems(FILE, text, &err),
        Ok(config) => {
            let mut problems = Problems::default();
            for (name, target) in &config.targets {
                for problem in target.problems(name, FILE, &|p| p.to_path_buf()) {
                    problems.push(problem);
                }
                let _ = crate::config::line_of(text, &["targets", name, "url"]);
            }
            problems
        }
    }
}

/// Profile files as `(name, text)`, loaded like a profile folder.
pub fn profiles(files: &[(String, String)]) -> Result<crate::profile::ProfileSet, Problems> {
    crate::profile::ProfileSet::from_texts(files)
}

/// A SCIM answer body as each call of the target decodes it: a user
/// listing (each user then read into an account and compared with what
/// homebase would send), a group, an error, the service provider
/// configuration, discovery, and a Bulk answer.
pub fn scim_body(bytes: &[u8]) {
    use crate::targets::scim as t;
    if let Ok(list) = serde_json::from_slice::<ListResponse<serde_json::Value>>(bytes) {
        for resource in list.resources {
            let Ok(user) = serde_json::from_value::<User>(resource.clone()) else {
                continue;
            };
            let account = t::account_of(&user, Vec::new(), None);
            let desired = t::desired_user(user.external_id.as_deref().unwrap_or("x"), &account);
            let _ = t::diff(&user, &desired);
            let _ = t::put_body(resource, &desired, None);
        }
    }
    if let Ok(mut group) = serde_json::from_slice::<serde_json::Value>(bytes) {
        let _ = serde_json::from_value::<Group>(group.clone());
        t::apply_member_changes(&mut group, &[]);
        let _ = t::capabilities::Stored::from_discovery(Some(&group), Some(&group));
    }
    let _ = serde_json::from_slice::<ErrorBody>(bytes);
    let _ = serde_json::from_slice::<ServiceProviderConfig>(bytes);
    if let Ok(bulk) = serde_json::from_slice::<BulkResponse>(bytes) {
        for result in bulk.operations {
            let _ = t::model::status_of(&result.status);
        }
    }
}

/// A Snipe-IT answer body: list pages of hardware and status labels, the
/// envelope of a write with its messages, and the message of an error.
pub fn snipeit_body(bytes: &[u8]) -> String {
    use crate::targets::snipeit::{client, model};
    if let Ok(page) = serde_json::from_slice::<Page<Hardware>>(bytes) {
        for row in page.rows {
            let _ = model::unescape(&row.asset_tag);
        }
    }
    let _ = serde_json::from_slice::<Page<StatusRow>>(bytes);
    if let Ok(envelope) = serde_json::from_slice::<Envelope<serde_json::Value>>(bytes) {
        let _ = model::messages_text(&envelope.messages);
    }
    client::message_of(bytes)
}

/// What a 429 with this `Retry-After` (and `X-RateLimit-Reset`) makes each
/// remote target wait: (SCIM's pause before the next try, Snipe-IT's hold).
pub fn rate_limit_waits(retry_after: &[u8], reset: &[u8]) -> (Option<Duration>, Option<Duration>) {
    use crate::targets::snipeit::{client, pace};
    let scim = std::str::from_utf8(retry_after).ok().map(|value| {
        let after = crate::targets::scim::client::parse_retry_after(value);
        crate::apply::retry::RetryPolicy::from_env().delay(1, after)
    });
    let mut headers = HeaderMap::new();
    for (name, value) in [
        (RETRY_AFTER.as_str(), retry_after),
        ("x-ratelimit-reset", reset),
    ] {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.insert(name, value);
        }
    }
    let wait = match (client::retry_after(&headers), client::reset_in(&headers)) {
        (Some(after), _) => pace::Wait::RetryAfter(after),
        (None, Some(reset)) => pace::Wait::Reset(reset),
        (None, None) => pace::Wait::Unsaid,
    };
    let (hold, _) = pace::Pace::new(120).throttled(wait);
    (scim, Some(hold))
}

/// The Snipe-IT pace fed a sequence of rate-limit headers and 429s:
/// `(limit, remaining)` per answer, `Some(seconds)` for a 429 with a
/// `Retry-After`. Returns the longest hold of a 429.
pub fn snipeit_pace(
    per_minute: u32,
    answers: &[(Option<u32>, Option<u32>, Option<u64>)],
) -> Duration {
    use crate::targets::snipeit::pace::{Pace, Turn, Wait};
    let pace = Pace::new(per_minute);
    let mut longest = Duration::ZERO;
    for (seq, (limit, remaining, retry_after)) in answers.iter().enumerate() {
        let turn = Turn {
            seq: seq as u64,
            at: tokio::time::Instant::now(),
        };
        pace.observe(turn, *limit, *remaining);
        if let Some(secs) = retry_after {
            let (hold, _) = pace.throttled(Wait::RetryAfter(Duration::from_secs(*secs)));
            longest = longest.max(hold);
        }
    }
    let _ = pace.note();
    longest
}
