//! A FAKE Snipe-IT server for homebase's tests. It is not Snipe-IT and
//! shares no code with it: an in-memory stand-in written from Snipe-IT's
//! REST API v1 documentation and from reading how Snipe-IT v7.1.17, v8.1.4
//! and the releases after pull request #16986 (May 2025, "v8.2+" here)
//! answer: routes/api.php, app/Exceptions/Handler.php,
//! app/Providers/RouteServiceProvider.php, app/Http/Requests/SaveUserRequest.php,
//! app/Http/Controllers/Api/AssetsController.php.
//!
//! - Bearer token authentication (401 `{"error": "Unauthorized or
//!   unauthenticated."}` otherwise).
//! - `GET /api/v1/users` (`limit`, `offset`, `sort=id`, `order`, `search`,
//!   `username`, `employee_num`), `POST /api/v1/users` (first_name, username,
//!   password + password_confirmation required; usernames unique; the
//!   password checked against the settings' `pwd_secure_min` and
//!   `pwd_secure_complexity`: letters, numbers, case_diff, symbols),
//!   `PATCH /api/v1/users/{id}`.
//! - `GET /api/v1/hardware` (`limit`, `offset`, `sort=id`, `order`,
//!   `category_id`, `model_id`, `status_id`; assets whose status is of the
//!   archived type only with `status=Archived`), `GET /api/v1/hardware/{id}`,
//!   `POST /api/v1/hardware/{id}/checkout` (`checkout_to_type: user` +
//!   `assigned_user`; `status_id` optional, and if given an existing
//!   deployable label), `POST /api/v1/hardware/{id}/checkin`.
//! - `GET /api/v1/models`, `GET /api/v1/categories`, `GET /api/v1/statuslabels`
//!   (`type`: deployable, pending, undeployable, archived).
//! - Lists answer `{"total": N, "rows": [...]}`, at most `MAX_RESULTS` rows a
//!   page (500 unless set), 50 when no `limit` is given.
//! - Refusals come as HTTP 200 with `{"status": "error", "messages": ...,
//!   "payload": ...}` (a checkout of an asset that is out already, a
//!   checkin of one that is in, a taken username, a validation error …);
//!   text fields are HTML-escaped as Snipe-IT's `e()` does.
//! - A permission the API user lacks: HTTP 403 with
//!   `{"status": "error", "messages": 403, "payload": null}` (the exception
//!   handler's answer to an authorization failure: the status, no name).
//! - The throttle, per API user: Laravel's fixed window that opens with the
//!   user's first request, `limit` requests in it (`API_THROTTLE_PER_MINUTE`;
//!   v8.1 and older put Laravel's 60 in front of it). Every answer that got
//!   through carries `X-RateLimit-Limit` and `X-RateLimit-Remaining`.
//!   Refused requests do not count. Past the limit, by version:
//!   - [`Version::V7`] (v7 up to v8.1.4): the exception handler's fresh 429,
//!     `{"status": "error", "messages": "Too many requests", "payload": null}`
//!     and no `Retry-After`, no `X-RateLimit-*` headers at all.
//!   - [`Version::V8_2`] (after #16986): 429 with `Retry-After` (seconds
//!     until the window ends), `X-RateLimit-Reset` (its Unix time),
//!     `X-RateLimit-Limit`, `X-RateLimit-Remaining: 0` and
//!     `{"status": "error", "messages": "Too many requests. Try again in N
//!     seconds.", "status_code": 429, "retryAfter": N}`.
//! - "Another client" of the same API user (its web UI, another
//!   integration) can spend part of every window's budget, evenly over it.
//!
//! The window is a minute. A test may shorten it to save time; the headers
//! still carry the real numbers of the window (homebase is not told about
//! the shorter window and paces by the minute, so it only uses part of each
//! window then). Every request is logged with the time it arrived.
//!
//! It runs in the test's process ([`FakeSnipeit::start`]), or as a process
//! of its own that a test can SIGKILL and start again
//! ([`FakeSnipeit::process`], `process.rs`), keeping its data in a journal
//! (`journal.rs`) as the real one keeps it in MySQL.

mod journal;
mod process;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use self::journal::{Journal, Record};
use self::process::Process;

pub struct Options {
    pub token: String,
    /// Requests allowed per window (`API_THROTTLE_PER_MINUTE`).
    pub limit: u32,
    /// The window: a minute in Snipe-IT; shorter only to save test time.
    pub window: Duration,
    /// How a throttled request is answered.
    pub version: Version,
}

/// Which Snipe-IT's 429 the fake answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Version {
    /// v7 up to v8.1.4: no headers on the 429.
    #[default]
    V7,
    /// After pull request #16986 (May 2025): `Retry-After`, `X-RateLimit-Reset`.
    V8_2,
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Hit {
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub status: u16,
    /// `Retry-After` seconds of a 429.
    pub retry_after: Option<u64>,
}

/// One throttle window: when it opened, what it allowed, what it let in.
#[derive(Debug, Clone)]
pub struct Window {
    pub opened: Instant,
    pub limit: u32,
    /// Requests let in, the other client's included.
    pub accepted: u32,
    /// The other client's requests among them.
    pub foreign: u32,
    /// Requests of homebase refused with 429.
    pub refused: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct User {
    id: u64,
    username: String,
    first_name: String,
    last_name: Option<String>,
    employee_num: Option<String>,
    email: Option<String>,
    activated: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Asset {
    id: u64,
    tag: String,
    serial: String,
    model: u64,
    status: u64,
    assigned_user: Option<u64>,
}

#[derive(Debug, Clone)]
struct Status {
    id: u64,
    name: String,
    /// deployable, pending, undeployable, archived
    kind: &'static str,
}

impl Status {
    fn deployable(&self) -> bool {
        self.kind == "deployable"
    }
}

#[derive(Default)]
struct State {
    token: String,
    window: Duration,
    limit: u32,
    /// After this many accepted requests, the limit becomes the second number.
    lower_after: Option<(u64, u32)>,
    accepted_total: u64,
    windows: Vec<Window>,
    categories: Vec<(u64, String)>,
    models: Vec<(u64, String, u64)>,
    statuses: Vec<Status>,
    users: BTreeMap<u64, User>,
    assets: BTreeMap<u64, Asset>,
    hits: Vec<Hit>,
    /// Every successful checkout: (asset id, user id).
    checkouts: Vec<(u64, u64)>,
    checkins: Vec<u64>,
    /// The n-th checkout finds its asset just taken by someone else.
    sabotage: Option<u64>,
    checkout_requests: u64,
    version: Version,
    max_results: usize,
    pwd_secure_min: usize,
    pwd_secure_complexity: Vec<String>,
    /// Permissions the API user lacks (`users.create`, `assets.checkout` …).
    denied: Vec<String>,
    /// Another client: requests per window, and when its next one comes.
    foreign_per_window: Option<u32>,
    foreign_next: Option<Instant>,
    /// Another client takes what is left of the window once homebase has
    /// had this many requests accepted (once).
    foreign_burst_after: Option<u64>,
    /// Creations refused for the password.
    password_refusals: u64,
    /// Where the data goes as it changes, when the fake runs as a process.
    journal: Option<Journal>,
}

pub struct FakeSnipeit {
    pub url: String,
    state: Arc<Mutex<State>>,
    /// The fake's own process, when it runs as one: `state` is then only
    /// the test's last reading of its journal.
    process: Option<Process>,
}

impl State {
    /// A Snipe-IT with its seeded status labels and nothing else.
    fn new(options: Options) -> State {
        let status = |id, name: &str, kind| Status {
            id,
            name: name.into(),
            kind,
        };
        State {
            token: options.token,
            window: options.window,
            limit: options.limit,
            version: options.version,
            max_results: 500,
            pwd_secure_min: 8,
            // Snipe-IT's seeded labels.
            statuses: vec![
                status(1, "Ready to Deploy", "deployable"),
                status(2, "Out for Repair", "undeployable"),
                status(3, "Pending", "pending"),
                status(4, "Archived", "archived"),
            ],
            ..State::default()
        }
    }
}

/// Serve `state` on `listener` in a thread of its own.
fn serve(state: Arc<Mutex<State>>, listener: std::net::TcpListener) {
    crate::common::http::serve(listener, move |req| {
        let state = state.clone();
        async move { handle(&state, req).await }
    });
}

impl FakeSnipeit {
    /// Start on 127.0.0.1 on a free port, in a thread of its own.
    pub fn start(options: Options) -> FakeSnipeit {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let state = Arc::new(Mutex::new(State::new(options)));
        serve(state.clone(), listener);
        FakeSnipeit {
            url,
            state,
            process: None,
        }
    }

    /// Start as a process of its own (see `process.rs`), with the data
    /// `setup` gives it (`seed_csv`, `seed_user`, `archive`). Its data
    /// outlives [`FakeSnipeit::kill`]; the settings (`deny`,
    /// `max_results` …) are not carried over, only `options`.
    pub fn process(options: Options, setup: impl FnOnce(&FakeSnipeit)) -> FakeSnipeit {
        let dir = tempfile::tempdir().expect("temp dir");
        let journal = dir.path().join(process::JOURNAL);
        let (opened, _) = Journal::open(&journal);
        let env = process::env_of(&options);
        let mut state = State::new(options);
        state.journal = Some(opened);
        let mut fake = FakeSnipeit {
            url: String::new(),
            state: Arc::new(Mutex::new(state)),
            process: None,
        };
        setup(&fake);
        fake.state().journal = None;
        let process = Process::start(dir, env);
        fake.url = process.url();
        fake.process = Some(process);
        fake
    }

    /// SIGKILL the fake's process (one started by [`FakeSnipeit::process`]).
    pub fn kill(&mut self) {
        self.process
            .as_mut()
            .expect("the fake runs as a process")
            .kill();
    }

    /// Start the killed process again, on the same address with its journal.
    pub fn restart(&mut self) {
        self.process
            .as_mut()
            .expect("the fake runs as a process")
            .restart();
    }

    /// The data; of a fake process, as its journal holds it now.
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(process) = &self.process {
            state.reload(&Journal::read(process.journal()));
        }
        state
    }

    /// Stock from a homebase stock list (`asset_tag,serial,kind,model,status`):
    /// kind `notebook` → category `Notebooks`, status `available` → deployable.
    pub fn seed_csv(&self, csv: &str, keep: impl Fn(&str, &str) -> bool) {
        let mut state = self.state();
        for line in csv.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() < 5 || !keep(f[2], f[3]) {
                continue;
            }
            let category = format!("{}{}s", f[2][..1].to_uppercase(), &f[2][1..]);
            let category = state.category(&category);
            let model = state.model(f[3], category);
            let id = state.assets.len() as u64 + 1;
            let status = if f[4] == "available" { 1 } else { 2 };
            state.put_asset(Asset {
                id,
                tag: f[0].to_string(),
                serial: f[1].to_string(),
                model,
                status,
                assigned_user: None,
            });
        }
    }

    /// Snipe-IT's `MAX_RESULTS`: the most rows of one page.
    pub fn max_results(&self, n: usize) {
        self.state().max_results = n;
    }

    /// The password rules of Snipe-IT's security settings.
    pub fn password_rules(&self, min: usize, complexity: &[&str]) {
        let mut state = self.state();
        state.pwd_secure_min = min;
        state.pwd_secure_complexity = complexity.iter().map(|c| c.to_string()).collect();
    }

    /// The API user lacks a permission: `users.create`, `assets.checkout`,
    /// `statuslabels.view` …
    pub fn deny(&self, permission: &str) {
        self.state().denied.push(permission.to_string());
    }

    /// Another client of the same API user spends this many requests of
    /// every window, evenly over it.
    pub fn other_client(&self, per_window: u32) {
        self.state().foreign_per_window = Some(per_window);
    }

    /// Another client spends what is left of the window once homebase has
    /// had `accepted` requests let in.
    pub fn other_client_burst_after(&self, accepted: u64) {
        self.state().foreign_burst_after = Some(accepted);
    }

    /// Put an asset in the archived status.
    pub fn archive(&self, tag: &str) {
        let mut state = self.state();
        if let Some(asset) = state.assets.values().find(|a| a.tag == tag).cloned() {
            state.put_asset(Asset { status: 4, ..asset });
        }
    }

    /// Creations refused because of the password.
    pub fn password_refusals(&self) -> u64 {
        self.state().password_refusals
    }

    /// A user that exists before homebase runs.
    pub fn seed_user(&self, username: &str, employee_num: Option<&str>) -> u64 {
        let mut state = self.state();
        let id = state.users.len() as u64 + 1;
        state.put_user(User {
            id,
            username: username.into(),
            first_name: username.into(),
            last_name: None,
            employee_num: employee_num.map(str::to_string),
            email: None,
            activated: true,
        });
        id
    }

    /// Requests of homebase let in so far.
    pub fn accepted(&self) -> u64 {
        self.state().accepted_total
    }

    /// Lower (or raise) the limit once this many requests were accepted.
    pub fn change_limit_after(&self, accepted: u64, limit: u32) {
        self.state().lower_after = Some((accepted, limit));
    }

    /// The `n`-th checkout request (from 1) finds its asset checked out to
    /// another user a moment before: a change made in Snipe-IT meanwhile.
    pub fn sabotage_checkout(&self, n: u64) {
        self.state().sabotage = Some(n);
    }

    /// A user's employee number, by username.
    pub fn employee_num(&self, username: &str) -> Option<String> {
        self.state()
            .users
            .values()
            .find(|u| u.username == username)
            .and_then(|u| u.employee_num.clone())
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.state().hits.clone()
    }

    pub fn windows(&self) -> Vec<Window> {
        self.state().windows.clone()
    }

    /// Requests that would change something (everything but GET).
    pub fn writes(&self) -> usize {
        self.state()
            .hits
            .iter()
            .filter(|h| h.method != "GET" && h.status == 200)
            .count()
    }

    pub fn checkouts(&self) -> Vec<(u64, u64)> {
        self.state().checkouts.clone()
    }

    pub fn checkins(&self) -> usize {
        self.state().checkins.len()
    }

    /// Who holds what: employee number → (category, model) of each asset.
    pub fn holdings(&self) -> BTreeMap<String, Vec<(String, String)>> {
        let state = self.state();
        let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for asset in state.assets.values() {
            let Some(user) = asset.assigned_user.and_then(|u| state.users.get(&u)) else {
                continue;
            };
            let (_, model, category) = state
                .models
                .iter()
                .find(|(id, ..)| *id == asset.model)
                .cloned()
                .unwrap_or_default();
            let category = state
                .categories
                .iter()
                .find(|(id, _)| *id == category)
                .map(|(_, n)| n.clone())
                .unwrap_or_default();
            out.entry(user.employee_num.clone().unwrap_or_default())
                .or_default()
                .push((category, model));
        }
        out
    }

    /// (asset tag, serial) of each asset a user holds, by employee number.
    pub fn assets_of(&self, employee_num: &str) -> Vec<(String, String)> {
        let state = self.state();
        state
            .assets
            .values()
            .filter(|a| {
                a.assigned_user
                    .and_then(|u| state.users.get(&u))
                    .is_some_and(|u| u.employee_num.as_deref() == Some(employee_num))
            })
            .map(|a| (a.tag.clone(), a.serial.clone()))
            .collect()
    }

    /// The username holding an asset, by tag.
    pub fn holder_of(&self, tag: &str) -> Option<String> {
        let state = self.state();
        let asset = state.assets.values().find(|a| a.tag == tag)?;
        state
            .users
            .get(&asset.assigned_user?)
            .map(|u| u.username.clone())
    }

    /// The asset tags each user holds, by username.
    pub fn tags_by_holder(&self) -> BTreeMap<String, Vec<String>> {
        let state = self.state();
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for asset in state.assets.values() {
            if let Some(user) = asset.assigned_user.and_then(|u| state.users.get(&u)) {
                out.entry(user.username.clone())
                    .or_default()
                    .push(asset.tag.clone());
            }
        }
        out
    }

    /// How many users carry each employee number.
    pub fn users_by_employee_num(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for user in self.state().users.values() {
            if let Some(n) = &user.employee_num {
                *out.entry(n.clone()).or_insert(0) += 1;
            }
        }
        out
    }

    pub fn users(&self) -> usize {
        self.state().users.len()
    }
}

impl State {
    fn category(&mut self, name: &str) -> u64 {
        if let Some((id, _)) = self.categories.iter().find(|(_, n)| n == name) {
            return *id;
        }
        let id = self.categories.len() as u64 + 1;
        self.categories.push((id, name.to_string()));
        self.record(Record::Category(id, name.to_string()));
        id
    }

    fn model(&mut self, name: &str, category: u64) -> u64 {
        if let Some((id, ..)) = self.models.iter().find(|(_, n, _)| n == name) {
            return *id;
        }
        let id = self.models.len() as u64 + 1;
        self.models.push((id, name.to_string(), category));
        self.record(Record::Model(id, name.to_string(), category));
        id
    }

    /// Into the journal, if the fake keeps one, before the answer goes out.
    fn record(&mut self, record: Record) {
        if let Some(journal) = &mut self.journal {
            journal.append(&record);
        }
    }

    fn put_user(&mut self, user: User) {
        self.record(Record::User(user.clone()));
        self.users.insert(user.id, user);
    }

    fn put_asset(&mut self, asset: Asset) {
        self.record(Record::Asset(asset.clone()));
        self.assets.insert(asset.id, asset);
    }

    /// A record of the journal, read back.
    fn replay(&mut self, record: Record) {
        match record {
            Record::Category(id, name) => {
                self.categories.retain(|(c, _)| *c != id);
                self.categories.push((id, name));
            }
            Record::Model(id, name, category) => {
                self.models.retain(|(m, ..)| *m != id);
                self.models.push((id, name, category));
            }
            Record::User(user) => {
                self.users.insert(user.id, user);
            }
            Record::Asset(asset) => {
                self.assets.insert(asset.id, asset);
            }
            Record::Checkout(asset, user) => self.checkouts.push((asset, user)),
            Record::Checkin(asset) => self.checkins.push(asset),
        }
    }

    /// The data as the journal holds it (the settings stay).
    fn reload(&mut self, records: &[Record]) {
        self.categories.clear();
        self.models.clear();
        self.users.clear();
        self.assets.clear();
        self.checkouts.clear();
        self.checkins.clear();
        for record in records {
            self.replay(record.clone());
        }
    }

    /// Laravel's fixed window: opens with the first request, counts accepted
    /// requests (the other client's too), refuses past the limit until it
    /// ends. `Ok((limit, remaining))` or `Err(seconds left in the window)`.
    fn throttle(&mut self, now: Instant) -> Result<(u32, u32), u64> {
        if let Some((after, limit)) = self.lower_after {
            if self.accepted_total >= after {
                self.limit = limit;
                self.lower_after = None;
            }
        }
        // The other client's requests that came since the last of ours.
        if let Some(per_window) = self.foreign_per_window.filter(|n| *n > 0) {
            let step = self.window / per_window;
            let mut next = self.foreign_next.unwrap_or(now);
            while next <= now {
                let _ = self.count(next, true);
                next += step;
            }
            self.foreign_next = Some(next);
        }
        if let Some(after) = self.foreign_burst_after {
            if self.accepted_total >= after {
                self.foreign_burst_after = None;
                self.roll(now);
                let current = self.windows.last_mut().expect("a window");
                let left = current.limit.saturating_sub(current.accepted);
                current.accepted += left;
                current.foreign += left;
            }
        }
        self.count(now, false)
    }

    /// Open a new window if the last one is over.
    fn roll(&mut self, at: Instant) {
        let expired = self
            .windows
            .last()
            .is_none_or(|w| at >= w.opened + self.window);
        if expired {
            self.windows.push(Window {
                opened: at,
                limit: self.limit,
                accepted: 0,
                foreign: 0,
                refused: 0,
            });
        }
    }

    fn count(&mut self, at: Instant, foreign: bool) -> Result<(u32, u32), u64> {
        self.roll(at);
        let limit = self.limit;
        let window = self.window;
        let current = self.windows.last_mut().expect("a window");
        current.limit = current.limit.min(limit);
        if current.accepted >= limit {
            if !foreign {
                current.refused += 1;
            }
            let left = (current.opened + window).saturating_duration_since(at);
            return Err(left.as_secs_f64().ceil().max(1.0) as u64);
        }
        current.accepted += 1;
        if foreign {
            current.foreign += 1;
        } else {
            self.accepted_total += 1;
        }
        Ok((limit, limit - current.accepted))
    }

    fn denied(&self, permission: &str) -> bool {
        self.denied.iter().any(|d| d == permission)
    }

    /// Laravel's password rules as Snipe-IT's SaveUserRequest builds them.
    fn password_problems(&self, password: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if password.chars().count() < self.pwd_secure_min {
            problems.push(format!(
                "The password must be at least {} characters.",
                self.pwd_secure_min
            ));
        }
        for rule in &self.pwd_secure_complexity {
            let ok = match rule.as_str() {
                "letters" => password.chars().any(char::is_alphabetic),
                "numbers" => password.chars().any(|c| c.is_ascii_digit()),
                "case_diff" => {
                    password.chars().any(char::is_lowercase)
                        && password.chars().any(char::is_uppercase)
                }
                "symbols" => password
                    .chars()
                    .any(|c| !c.is_alphanumeric() && !c.is_control()),
                _ => true,
            };
            if !ok {
                problems.push(match rule.as_str() {
                    "letters" => "The password must contain at least one letter.".into(),
                    "numbers" => "The password must contain at least one number.".into(),
                    "case_diff" => {
                        "The password must contain at least one uppercase and one lowercase letter."
                            .into()
                    }
                    _ => "The password must contain at least one symbol.".into(),
                });
            }
        }
        problems
    }
}

/// PHP's `e()`: htmlspecialchars with quotes.
fn e(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#039;")
}

fn envelope(status: &str, messages: Value, payload: Value) -> Value {
    json!({ "status": status, "messages": messages, "payload": payload })
}

fn error(messages: Value) -> Value {
    envelope("error", messages, Value::Null)
}

async fn handle(state: &Mutex<State>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let now = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query: BTreeMap<String, String> = req
        .uri()
        .query()
        .map(|q| {
            reqwest::Url::parse(&format!("http://fake/?{q}"))
                .map(|u| u.query_pairs().into_owned().collect())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let authorized = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);

    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    let mut hit = Hit {
        at: now,
        method: method.to_string(),
        path: path.clone(),
        status: 200,
        retry_after: None,
    };
    let response = if authorized != Some(format!("Bearer {}", state.token)) {
        hit.status = 401;
        respond(
            StatusCode::UNAUTHORIZED,
            json!({"error": "Unauthorized or unauthenticated."}),
            &[],
        )
    } else {
        match state.throttle(now) {
            Err(retry) => {
                hit.status = 429;
                hit.retry_after = Some(retry);
                match state.version {
                    Version::V7 => respond(
                        StatusCode::TOO_MANY_REQUESTS,
                        error(json!("Too many requests")),
                        &[],
                    ),
                    Version::V8_2 => {
                        let reset = SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .map_or(0, |d| d.as_secs())
                            + retry;
                        respond(
                            StatusCode::TOO_MANY_REQUESTS,
                            json!({
                                "status": "error",
                                "messages": format!("Too many requests. Try again in {retry} seconds."),
                                "status_code": 429,
                                "retryAfter": retry,
                            }),
                            &[
                                ("X-RateLimit-Limit", state.limit.to_string()),
                                ("X-RateLimit-Remaining", "0".into()),
                                ("Retry-After", retry.to_string()),
                                ("X-RateLimit-Reset", reset.to_string()),
                            ],
                        )
                    }
                }
            }
            Ok((limit, remaining)) => {
                let (status, value) = match permission(&method, &path) {
                    Some(p) if state.denied(p) => (
                        StatusCode::FORBIDDEN,
                        envelope("error", json!(403), Value::Null),
                    ),
                    _ => route(&mut state, &method, &path, &query, &body),
                };
                hit.status = status.as_u16();
                respond(
                    status,
                    value,
                    &[
                        ("X-RateLimit-Limit", limit.to_string()),
                        ("X-RateLimit-Remaining", remaining.to_string()),
                    ],
                )
            }
        }
    };
    state.hits.push(hit);
    response
}

/// The permission a route needs, as Snipe-IT's policies name them.
fn permission(method: &Method, path: &str) -> Option<&'static str> {
    let rest = path.strip_prefix("/api/v1/")?;
    let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    Some(match (method.as_str(), parts.as_slice()) {
        ("GET", ["categories", ..]) => "categories.view",
        ("GET", ["models", ..]) => "models.view",
        ("GET", ["statuslabels", ..]) => "statuslabels.view",
        ("GET", ["hardware", ..]) => "assets.view",
        ("GET", ["users", ..]) => "users.view",
        ("POST", ["users"]) => "users.create",
        ("PATCH" | "PUT", ["users", _]) => "users.edit",
        ("POST", ["hardware", _, "checkout"]) => "assets.checkout",
        ("POST", ["hardware", _, "checkin"]) => "assets.checkin",
        _ => return None,
    })
}

fn respond(status: StatusCode, body: Value, headers: &[(&str, String)]) -> Response<Full<Bytes>> {
    let mut response = Response::builder()
        .status(status)
        .header("Content-Type", "application/json");
    for (name, value) in headers {
        response = response.header(*name, value);
    }
    response
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
}

fn route(
    state: &mut State,
    method: &Method,
    path: &str,
    query: &BTreeMap<String, String>,
    body: &Value,
) -> (StatusCode, Value) {
    let Some(rest) = path.strip_prefix("/api/v1/") else {
        return (
            StatusCode::NOT_FOUND,
            error(json!("404 endpoint not found")),
        );
    };
    let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let ok = StatusCode::OK;
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["categories"]) => {
            let rows: Vec<Value> = state
                .categories
                .iter()
                .map(|(id, name)| json!({"id": id, "name": e(name), "category_type": "asset"}))
                .collect();
            (ok, page(rows, query, state.max_results))
        }
        ("GET", ["statuslabels"]) => {
            let rows: Vec<Value> = state
                .statuses
                .iter()
                .map(|st| json!({"id": st.id, "name": e(&st.name), "type": st.kind}))
                .collect();
            (ok, page(rows, query, state.max_results))
        }
        ("GET", ["models"]) => {
            let rows: Vec<Value> = state
                .models
                .iter()
                .map(|(id, name, category)| {
                    let category = state.categories.iter().find(|(c, _)| c == category);
                    json!({"id": id, "name": e(name),
                           "category": category.map(|(c, n)| json!({"id": c, "name": e(n)}))})
                })
                .collect();
            (ok, page(rows, query, state.max_results))
        }
        ("GET", ["users"]) => {
            let rows: Vec<Value> = state
                .users
                .values()
                .filter(|u| {
                    query.get("username").is_none_or(|n| *n == u.username)
                        && query
                            .get("employee_num")
                            .is_none_or(|n| Some(n) == u.employee_num.as_ref())
                        && query.get("search").is_none_or(|s| {
                            u.username.contains(s.as_str())
                                || u.first_name.contains(s.as_str())
                                || u.employee_num
                                    .as_deref()
                                    .is_some_and(|n| n.contains(s.as_str()))
                        })
                })
                .map(|u| user_row(state, u))
                .collect();
            (ok, page(rows, query, state.max_results))
        }
        ("POST", ["users"]) => {
            let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
            let mut problems = serde_json::Map::new();
            let username = text("username").unwrap_or_default();
            if text("first_name").unwrap_or_default().is_empty() {
                problems.insert(
                    "first_name".into(),
                    json!(["The first name field is required."]),
                );
            }
            if username.is_empty() {
                problems.insert(
                    "username".into(),
                    json!(["The username field is required."]),
                );
            } else if state
                .users
                .values()
                .any(|u| u.username.eq_ignore_ascii_case(&username))
            {
                problems.insert(
                    "username".into(),
                    json!(["The username has already been taken."]),
                );
            }
            match (text("password"), text("password_confirmation")) {
                (None, _) => {
                    problems.insert(
                        "password".into(),
                        json!(["The password field is required."]),
                    );
                }
                (Some(p), c) if Some(&p) != c.as_ref() => {
                    problems.insert(
                        "password".into(),
                        json!(["The password confirmation does not match."]),
                    );
                }
                (Some(p), _) => {
                    let refused = state.password_problems(&p);
                    if !refused.is_empty() {
                        state.password_refusals += 1;
                        problems.insert("password".into(), json!(refused));
                    }
                }
            }
            if !problems.is_empty() {
                return (ok, error(Value::Object(problems)));
            }
            let id = state.users.keys().max().map_or(1, |m| m + 1);
            let user = User {
                id,
                username,
                first_name: text("first_name").unwrap_or_default(),
                last_name: text("last_name"),
                employee_num: text("employee_num"),
                email: text("email"),
                activated: body
                    .get("activated")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            };
            let row = user_row(state, &user);
            state.put_user(user);
            (
                ok,
                envelope("success", json!("User created successfully."), row),
            )
        }
        ("PATCH" | "PUT", ["users", id]) => {
            let Some(mut user) = id
                .parse()
                .ok()
                .and_then(|id: u64| state.users.get(&id))
                .cloned()
            else {
                return (ok, error(json!("User not found")));
            };
            if let Some(n) = body.get("employee_num").and_then(Value::as_str) {
                user.employee_num = Some(n.to_string());
            }
            state.put_user(user.clone());
            (
                ok,
                envelope(
                    "success",
                    json!("User updated successfully."),
                    user_row(state, &user),
                ),
            )
        }
        ("GET", ["hardware"]) => {
            let number = |k: &str| query.get(k).and_then(|v| v.parse::<u64>().ok());
            let rows: Vec<Value> = state
                .assets
                .values()
                .filter(|a| {
                    let category = state.models.iter().find(|m| m.0 == a.model).map(|m| m.2);
                    let archived = state
                        .statuses
                        .iter()
                        .any(|s| s.id == a.status && s.kind == "archived");
                    let want_archived = query.get("status").map(String::as_str) == Some("Archived");
                    number("category_id").is_none_or(|c| Some(c) == category)
                        && number("model_id").is_none_or(|m| m == a.model)
                        && number("status_id").is_none_or(|s| s == a.status)
                        && archived == want_archived
                })
                .map(|a| asset_row(state, a))
                .collect();
            (ok, page(rows, query, state.max_results))
        }
        ("GET", ["hardware", id]) => {
            match id.parse().ok().and_then(|id: u64| state.assets.get(&id)) {
                Some(asset) => (ok, asset_row(state, asset)),
                None => (ok, error(json!("Asset does not exist."))),
            }
        }
        ("POST", ["hardware", id, "checkout"]) => {
            let Some(asset) = id
                .parse()
                .ok()
                .and_then(|id: u64| state.assets.get(&id))
                .cloned()
            else {
                return (ok, error(json!("Asset does not exist.")));
            };
            state.checkout_requests += 1;
            if state.sabotage == Some(state.checkout_requests) {
                // Somebody else than the requested user takes the asset first.
                let requested = body.get("assigned_user").and_then(Value::as_u64);
                let other = state.users.keys().copied().find(|u| Some(*u) != requested);
                state.put_asset(Asset {
                    assigned_user: other,
                    ..asset.clone()
                });
            }
            let asset = state.assets.get(&asset.id).cloned().unwrap_or(asset);
            let kind = body.get("checkout_to_type").and_then(Value::as_str);
            if !matches!(kind, Some("user" | "asset" | "location")) {
                return (
                    ok,
                    error(json!({"checkout_to_type": ["The checkout to type field is required."]})),
                );
            }
            let available = asset.assigned_user.is_none()
                && state
                    .statuses
                    .iter()
                    .any(|s| s.id == asset.status && s.deployable());
            if !available {
                return (
                    ok,
                    envelope(
                        "error",
                        json!("That asset is not available for checkout!"),
                        json!({"asset": e(&asset.tag)}),
                    ),
                );
            }
            if let Some(status) = body.get("status_id").and_then(Value::as_u64) {
                if !state
                    .statuses
                    .iter()
                    .any(|s| s.id == status && s.deployable())
                {
                    return (
                        ok,
                        error(json!({"status_id": ["The selected status id is invalid."]})),
                    );
                }
            }
            let user = body.get("assigned_user").and_then(Value::as_u64);
            if kind != Some("user") || user.is_none_or(|u| !state.users.contains_key(&u)) {
                return (
                    ok,
                    envelope(
                        "error",
                        json!(format!(
                            "Checkout target for asset {} is invalid - {} does not exist.",
                            e(&asset.tag),
                            kind.unwrap_or("user")
                        )),
                        json!({"asset": {"id": asset.id, "asset_tag": asset.tag}}),
                    ),
                );
            }
            let user = user.unwrap_or_default();
            state.put_asset(Asset {
                assigned_user: Some(user),
                ..asset.clone()
            });
            state.checkouts.push((asset.id, user));
            state.record(Record::Checkout(asset.id, user));
            (
                ok,
                envelope(
                    "success",
                    json!("Asset checked out successfully."),
                    json!({"asset": e(&asset.tag)}),
                ),
            )
        }
        ("POST", ["hardware", id, "checkin"]) => {
            let Some(asset) = id
                .parse()
                .ok()
                .and_then(|id: u64| state.assets.get(&id))
                .cloned()
            else {
                return (ok, error(json!("Asset does not exist.")));
            };
            let tag = e(&asset.tag);
            if asset.assigned_user.is_none() {
                return (
                    ok,
                    envelope(
                        "error",
                        json!("That asset is already checked in."),
                        json!({"asset": tag}),
                    ),
                );
            }
            let id = asset.id;
            state.put_asset(Asset {
                assigned_user: None,
                ..asset
            });
            state.checkins.push(id);
            state.record(Record::Checkin(id));
            (
                ok,
                envelope(
                    "success",
                    json!("Asset checked in successfully."),
                    json!({"asset": tag}),
                ),
            )
        }
        _ => (
            StatusCode::NOT_FOUND,
            error(json!("404 endpoint not found")),
        ),
    }
}

/// `{"total", "rows"}` for `limit` (50 by default, `MAX_RESULTS` at most) from `offset`,
/// by id ascending (`order=asc`) or descending (the default).
fn page(mut rows: Vec<Value>, query: &BTreeMap<String, String>, max_results: usize) -> Value {
    if query.get("order").map(String::as_str) != Some("asc") {
        rows.reverse();
    }
    let total = rows.len();
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(50)
        .min(max_results);
    let offset = query
        .get("offset")
        .and_then(|o| o.parse::<usize>().ok())
        .unwrap_or(0);
    let rows: Vec<Value> = rows.into_iter().skip(offset).take(limit).collect();
    json!({ "total": total, "rows": rows })
}

fn user_row(state: &State, u: &User) -> Value {
    let assets = state
        .assets
        .values()
        .filter(|a| a.assigned_user == Some(u.id))
        .count();
    json!({
        "id": u.id,
        "name": e(format!("{} {}", u.first_name, u.last_name.clone().unwrap_or_default()).trim()),
        "first_name": e(&u.first_name),
        "last_name": u.last_name.as_deref().map(e),
        "username": e(&u.username),
        "employee_num": u.employee_num.as_deref().map(e),
        "email": u.email.as_deref().map(e),
        "activated": u.activated,
        "assets_count": assets,
    })
}

fn asset_row(state: &State, a: &Asset) -> Value {
    let model = state.models.iter().find(|m| m.0 == a.model);
    let category = model.and_then(|m| state.categories.iter().find(|c| c.0 == m.2));
    let status = state.statuses.iter().find(|s| s.id == a.status);
    let assigned = a.assigned_user.and_then(|u| state.users.get(&u)).map(|u| {
        json!({
            "id": u.id,
            "username": e(&u.username),
            "name": e(&u.first_name),
            "first_name": e(&u.first_name),
            "last_name": u.last_name.as_deref().map(e),
            "employee_number": u.employee_num.as_deref().map(e),
            "type": "user",
        })
    });
    json!({
        "id": a.id,
        "name": "",
        "asset_tag": e(&a.tag),
        "serial": e(&a.serial),
        "model": model.map(|m| json!({"id": m.0, "name": e(&m.1)})),
        "model_number": null,
        "status_label": status.map(|s| json!({
            "id": s.id,
            "name": e(&s.name),
            "status_type": s.kind,
            "status_meta": if !s.deployable() { s.kind } else if a.assigned_user.is_some() { "deployed" } else { "deployable" },
        })),
        "category": category.map(|c| json!({"id": c.0, "name": e(&c.1)})),
        "assigned_to": assigned,
        "user_can_checkout": a.assigned_user.is_none() && status.is_some_and(Status::deployable),
        "custom_fields": [],
    })
}
