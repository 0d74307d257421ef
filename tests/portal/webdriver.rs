//! A real browser for the portal's tests: headless Chromium driven over WebDriver
//! (chromedriver on a free loopback port, the `fantoccini` client), and small helpers to
//! use the portal's pages by their element ids.
//!
//! The browser is found through `DAGR_CHROMIUM` / `DAGR_CHROMEDRIVER` (as `scripts/browser`
//! prints them), else `chromium` / `chromedriver` in `/usr/bin` or on `PATH`. When they are
//! missing a browser test is skipped with a message on stderr, unless
//! `DAGR_TEST_REQUIRE_BROWSER` is set (as `scripts/test` does): then it fails.
//!
//! With `DAGR_SCREENSHOTS=DIR`, [`Web::screenshot`] saves PNGs of the pages into `DIR`.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long to wait for chromedriver to listen, and for an element or a page to appear.
const PATIENCE: Duration = Duration::from_secs(30);

/// Where Chromium and chromedriver are.
#[derive(Debug, Clone)]
pub struct BrowserPaths {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
}

/// The program `env` names, else the first of `/usr/bin/NAME` and `NAME` on `PATH`.
fn find_program(env: &str, name: &str) -> Option<PathBuf> {
    if let Some(given) = std::env::var_os(env).filter(|v| !v.is_empty()) {
        let given = PathBuf::from(given);
        if given.components().count() > 1 {
            return given.is_file().then_some(given);
        }
        return on_path(&given.to_string_lossy());
    }
    let usr = Path::new("/usr/bin").join(name);
    if usr.is_file() {
        return Some(usr);
    }
    on_path(name)
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The browser, or `None` (with a message on stderr) when the test is to be skipped.
/// Panics when the browser is missing and `DAGR_TEST_REQUIRE_BROWSER` is set.
pub fn browser_or_skip(test: &str) -> Option<BrowserPaths> {
    let chromium = find_program("DAGR_CHROMIUM", "chromium");
    let chromedriver = find_program("DAGR_CHROMEDRIVER", "chromedriver");
    match (chromium, chromedriver) {
        (Some(chromium), Some(chromedriver)) => Some(BrowserPaths {
            chromium,
            chromedriver,
        }),
        (chromium, chromedriver) => {
            let missing = [
                chromium.is_none().then_some("chromium (DAGR_CHROMIUM)"),
                chromedriver
                    .is_none()
                    .then_some("chromedriver (DAGR_CHROMEDRIVER)"),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" and ");
            if std::env::var_os("DAGR_TEST_REQUIRE_BROWSER").is_some() {
                panic!(
                    "{test}: {missing} not found, and DAGR_TEST_REQUIRE_BROWSER is set \
                     (scripts/browser installs them)"
                );
            }
            eprintln!(
                "SKIPPED {test}: {missing} not found (scripts/browser installs the browser; \
                 set DAGR_TEST_REQUIRE_BROWSER=1 to make this a failure)"
            );
            None
        }
    }
}

/// A port of 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().unwrap().port()
}

/// A running chromedriver, killed on drop.
struct Chromedriver {
    child: Child,
    port: u16,
    /// The temporary directory of chromedriver and its browser (profiles, shared memory
    /// files), removed after them.
    _tmp: tempfile::TempDir,
}

impl Chromedriver {
    /// Start chromedriver on a free loopback port and wait until it listens.
    fn start(path: &Path) -> Chromedriver {
        let mut failures = Vec::new();
        for _ in 0..5 {
            let port = free_port();
            let tmp = tempfile::tempdir().expect("a temporary directory for the browser");
            let mut child = Command::new(path)
                .arg(format!("--port={port}"))
                .env("TMPDIR", tmp.path())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
            let (tx, rx) = mpsc::channel();
            for pipe in [
                Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
                Box::new(child.stderr.take().unwrap()),
            ] {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                        // Keep reading after the receiver is gone, so chromedriver never
                        // blocks on a full pipe.
                        let _ = tx.send(line);
                    }
                });
            }
            drop(tx);
            let mut log = Vec::new();
            let deadline = Instant::now() + PATIENCE;
            let started = loop {
                match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(line) => {
                        let ok = line.contains("started successfully");
                        log.push(line);
                        if ok {
                            break true;
                        }
                    }
                    // Both pipes closed (it exited) or it took too long.
                    Err(_) => break false,
                }
            };
            if started {
                return Chromedriver {
                    child,
                    port,
                    _tmp: tmp,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            let log = log.join("\n");
            let taken =
                log.contains("Address already in use") || log.contains("port not available");
            failures.push(format!("port {port}:\n{log}"));
            if !taken {
                break;
            }
        }
        panic!(
            "chromedriver ({}) did not start:\n{}",
            path.display(),
            failures.join("\n")
        );
    }

    /// Ask chromedriver to end a session (closing its browser), without async: used on drop.
    fn delete_session(&self, session: &str) {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = s.set_write_timeout(Some(Duration::from_secs(10)));
        let request = format!(
            "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        );
        if s.write_all(request.as_bytes()).is_ok() {
            let mut answer = Vec::new();
            let _ = s.read_to_end(&mut answer);
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium showing the portal at `base`.
pub struct Web {
    pub client: Client,
    pub base: String,
    session: Option<String>,
    // Dropped after the session is ended (see `Drop`).
    driver: Chromedriver,
}

impl Drop for Web {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            self.driver.delete_session(&session);
        }
    }
}

/// What failed, for a readable panic.
fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    panic!("browser: {what}: {e}")
}

impl Web {
    /// Start chromedriver and a headless Chromium for the portal at `base`.
    pub async fn start(paths: &BrowserPaths, base: &str) -> Web {
        let driver = Chromedriver::start(&paths.chromedriver);
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": paths.chromium.to_string_lossy(),
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,900",
                    "--lang=lv",
                    "--hide-scrollbars",
                    "--force-device-scale-factor=1",
                ],
                "prefs": { "intl.accept_languages": "lv" },
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .unwrap_or_else(|e| fail("cannot open a Chromium session", e));
        let session = client.session_id().await.ok().flatten();
        Web {
            client,
            base: base.trim_end_matches('/').to_owned(),
            session,
            driver,
        }
    }

    /// End the browser session and chromedriver.
    pub async fn quit(mut self) {
        if self.session.take().is_some() {
            let _ = self.client.clone().close().await;
        }
    }

    /// Open a path of the portal and wait for it to load.
    pub async fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|e| fail(&format!("open {url}"), e));
    }

    /// The current path (without the query).
    pub async fn path(&self) -> String {
        let url = self
            .client
            .current_url()
            .await
            .unwrap_or_else(|e| fail("current url", e));
        url.path().to_owned()
    }

    /// The current path and query.
    pub async fn path_and_query(&self) -> String {
        let url = self
            .client
            .current_url()
            .await
            .unwrap_or_else(|e| fail("current url", e));
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// The element with `id` (which must be on the page).
    pub async fn el(&self, id: &str) -> Element {
        match self.client.find(Locator::Id(id)).await {
            Ok(e) => e,
            Err(e) => {
                let path = self.path_and_query().await;
                let text = self.body_text().await;
                panic!("browser: no element #{id} on {path}: {e}\npage text:\n{text}")
            }
        }
    }

    /// Whether an element with `id` is on the page.
    pub async fn has(&self, id: &str) -> bool {
        !self
            .client
            .find_all(Locator::Id(id))
            .await
            .unwrap_or_else(|e| fail("find", e))
            .is_empty()
    }

    /// Wait (at most 30 s) for the element with `id` to be on the page.
    pub async fn wait_for(&self, id: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Id(id))
            .await
        {
            Ok(e) => e,
            Err(e) => {
                let path = self.path_and_query().await;
                let text = self.body_text().await;
                panic!("browser: #{id} never appeared on {path}: {e}\npage text:\n{text}")
            }
        }
    }

    /// Type `value` into the field with `id` (after clearing it).
    pub async fn fill(&self, id: &str, value: &str) {
        let e = self.el(id).await;
        e.clear()
            .await
            .unwrap_or_else(|err| fail(&format!("clear #{id}"), err));
        e.send_keys(value)
            .await
            .unwrap_or_else(|err| fail(&format!("type into #{id}"), err));
    }

    /// Click the element with `id` (nothing more: see [`Web::submit`] for buttons that load
    /// a page).
    pub async fn click(&self, id: &str) {
        let e = self.el(id).await;
        // Out of the viewport elements are scrolled to by the driver; a sticky header could
        // cover them, so put them in the middle first.
        let _ = self
            .client
            .execute(
                "document.getElementById(arguments[0]).scrollIntoView({block: 'center'});",
                vec![json!(id)],
            )
            .await;
        e.click()
            .await
            .unwrap_or_else(|err| fail(&format!("click #{id}"), err));
    }

    /// Click the element with `id` and wait until the page it leads to has loaded.
    pub async fn submit(&self, id: &str) {
        let mark = self.mark_page().await;
        self.click(id).await;
        self.wait_for_new_page(mark, &format!("clicking #{id}"))
            .await;
    }

    /// Click the first element matching the CSS selector (a link) and wait until the page it
    /// leads to has loaded.
    pub async fn follow(&self, css: &str) {
        let mark = self.mark_page().await;
        let e = match self.client.find(Locator::Css(css)).await {
            Ok(e) => e,
            Err(e) => {
                let path = self.path_and_query().await;
                panic!("browser: nothing matches `{css}` on {path}: {e}")
            }
        };
        e.click()
            .await
            .unwrap_or_else(|err| fail(&format!("click `{css}`"), err));
        self.wait_for_new_page(mark, &format!("clicking `{css}`"))
            .await;
    }

    /// Mark the page shown now (to notice when another one replaced it).
    async fn mark_page(&self) -> u64 {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let mark = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.client
            .execute("window.__dagrPage = arguments[0];", vec![json!(mark)])
            .await
            .unwrap_or_else(|e| fail("mark the page", e));
        mark
    }

    /// Wait until the page marked `mark` is replaced by another one, loaded.
    async fn wait_for_new_page(&self, mark: u64, what: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let done = self
                .client
                .execute(
                    "return window.__dagrPage !== arguments[0] && document.readyState === 'complete';",
                    vec![json!(mark)],
                )
                .await;
            // While the new page loads, scripts may fail: just try again.
            if matches!(done, Ok(Value::Bool(true))) {
                return;
            }
            if Instant::now() > deadline {
                let path = self.path_and_query().await;
                panic!("browser: no new page loaded after {what} (still on {path})");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Go back in the history and wait for the page.
    pub async fn back(&self) {
        let mark = self.mark_page().await;
        self.client.back().await.unwrap_or_else(|e| fail("back", e));
        self.wait_for_new_page(mark, "going back").await;
    }

    /// The visible text of the element with `id`.
    pub async fn text(&self, id: &str) -> String {
        self.el(id)
            .await
            .text()
            .await
            .unwrap_or_else(|e| fail(&format!("text of #{id}"), e))
    }

    /// The visible text of the whole page.
    pub async fn body_text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// The value of attribute `name` of the element with `id`.
    pub async fn attr(&self, id: &str, name: &str) -> Option<String> {
        self.el(id)
            .await
            .attr(name)
            .await
            .unwrap_or_else(|e| fail(&format!("attribute {name} of #{id}"), e))
    }

    /// Whether the checkbox (or radio button) with `id` is checked.
    pub async fn is_checked(&self, id: &str) -> bool {
        self.el(id)
            .await
            .is_selected()
            .await
            .unwrap_or_else(|e| fail(&format!("state of #{id}"), e))
    }

    /// Tick the checkbox with `id` (if it is not ticked yet).
    pub async fn check(&self, id: &str) {
        if !self.is_checked(id).await {
            self.click(id).await;
        }
        assert!(self.is_checked(id).await, "#{id} did not get checked");
    }

    /// Untick the checkbox with `id` (if it is ticked).
    pub async fn uncheck(&self, id: &str) {
        if self.is_checked(id).await {
            self.click(id).await;
        }
        assert!(!self.is_checked(id).await, "#{id} did not get unchecked");
    }

    /// Run a script in the page (`return ...` gives a value).
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| fail(&format!("script `{script}`"), e))
    }

    /// Whether the browser holds a portal session cookie.
    pub async fn has_session(&self) -> bool {
        self.client
            .get_all_cookies()
            .await
            .unwrap_or_else(|e| fail("cookies", e))
            .iter()
            .any(|c| c.name() == "dagr_session")
    }

    /// Sign in as a person of an organisation (or an admin), from the sign-in form; ends on
    /// the role's start page.
    pub async fn sign_in(&self, login: &str, password: &str) {
        self.goto("/login").await;
        self.fill("login", login).await;
        self.fill("password", password).await;
        self.submit("submit").await;
        assert!(
            self.has_session().await && self.path().await != "/login",
            "sign-in as {login} failed: on {} with\n{}",
            self.path_and_query().await,
            self.body_text().await
        );
    }

    /// Sign in as a citizen with a subject token; ends on the citizen's start page.
    pub async fn sign_in_citizen(&self, token: &str) {
        self.goto("/citizen/login").await;
        self.fill("token", token).await;
        self.submit("submit").await;
        assert!(
            self.has_session().await && self.path().await != "/citizen/login",
            "citizen sign-in failed: on {} with\n{}",
            self.path_and_query().await,
            self.body_text().await
        );
    }

    /// Sign out with the button in the header.
    pub async fn sign_out(&self) {
        self.submit("sign-out").await;
        assert!(
            !self.has_session().await,
            "still signed in after signing out"
        );
        assert!(
            !self.has("sign-out").await,
            "still signed in after signing out"
        );
    }

    /// With `DAGR_SCREENSHOTS=DIR` set: save the page as `DIR/NAME.png`.
    pub async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("DAGR_SCREENSHOTS").filter(|d| !d.is_empty()) else {
            return;
        };
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        // The whole page from its top, not just the window: grow the window by what the
        // page is taller than the viewport.
        let size = self
            .js("window.scrollTo(0, 0); \
                 return [window.innerHeight, Math.ceil(Math.max( \
                     document.documentElement.scrollHeight, \
                     document.body ? document.body.scrollHeight : 0))];")
            .await;
        let viewport = size[0].as_u64().unwrap_or(900);
        let page = size[1].as_u64().unwrap_or(900).min(8000);
        let (_, window) = self
            .client
            .get_window_size()
            .await
            .unwrap_or_else(|e| fail("window size", e));
        if page > viewport {
            let _ = self
                .client
                .set_window_size(1280, (window + page - viewport) as u32)
                .await;
        }
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| fail("screenshot", e));
        if page > viewport {
            let _ = self.client.set_window_size(1280, window as u32).await;
        }
        let file = dir.join(format!("{name}.png"));
        std::fs::write(&file, png)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
    }

    /// Whether screenshots are being taken.
    pub fn screenshots() -> bool {
        std::env::var_os("DAGR_SCREENSHOTS").is_some_and(|d| !d.is_empty())
    }
}
