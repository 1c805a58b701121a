//! A minimal W3C WebDriver client over the harness's HTTP client (reqwest,
//! blocking): Debian's `chromedriver` driving headless Debian `chromium`.
//! Only what the console's tests use: navigate, find, click, type, read,
//! run a script, resize, screenshot. Without Chromium the tests fail with
//! the command that installs it; they never skip.

use base64::Engine as _;
use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// W3C's key of an element reference in a JSON answer.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// What to run when Chromium or its driver is missing.
pub const INSTALL: &str = "apt-get update && apt-get install -y chromium chromium-driver";

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in names {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Chromium and chromedriver, or a failure saying how to install them.
fn programs() -> (PathBuf, PathBuf) {
    let browser = find_program(&["chromium", "chromium-browser"]);
    let driver = find_program(&["chromedriver"]);
    match (browser, driver) {
        (Some(b), Some(d)) => (b, d),
        (b, d) => panic!(
            "the admin console's browser tests need Debian's chromium and chromium-driver \
             (found chromium: {}, chromedriver: {}). Install them (as root): {INSTALL}",
            b.is_some(),
            d.is_some()
        ),
    }
}

/// A running chromedriver; killed when dropped.
pub struct Driver {
    child: Child,
    url: String,
    http: reqwest::blocking::Client,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Driver {
    pub fn start() -> Driver {
        let (_, driver) = programs();
        let port = free_port();
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = driver
                .http
                .get(format!("{}/status", driver.url))
                .send()
                .ok()
                .and_then(|r| r.json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                return driver;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A new headless Chromium window `width` × `height` CSS pixels.
    pub fn browser(&self, width: u32, height: u32) -> Browser<'_> {
        let (chromium, _) = programs();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--no-first-run",
                    "--disable-extensions", "--disable-background-networking",
                    "--hide-scrollbars", "--force-device-scale-factor=1",
                    format!("--window-size={width},{height}"),
                ],
            },
        }}});
        let v = call(
            &self.http,
            "POST",
            &format!("{}/session", self.url),
            Some(caps),
        )
        .unwrap_or_else(|e| panic!("cannot start Chromium through chromedriver: {e}"));
        let id = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {v}"))
            .to_owned();
        let b = Browser {
            driver: self,
            session: format!("{}/session/{id}", self.url),
        };
        b.resize(width, height);
        b
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver command; the `value` of its answer, or the driver's error.
fn call(
    http: &reqwest::blocking::Client,
    method: &str,
    url: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let rb = match method {
        "GET" => http.get(url),
        "DELETE" => http.delete(url),
        _ => http.post(url).json(&body.unwrap_or_else(|| json!({}))),
    };
    let res = rb.send().map_err(|e| format!("{method} {url}: {e}"))?;
    let status = res.status();
    let v: Value = res
        .json()
        .map_err(|e| format!("{method} {url}: not JSON: {e}"))?;
    if !status.is_success() {
        return Err(format!("{method} {url}: {status}: {}", v["value"]));
    }
    Ok(v["value"].clone())
}

/// One browser window (a WebDriver session); closed when dropped.
pub struct Browser<'d> {
    driver: &'d Driver,
    session: String,
}

/// An element of the page.
pub struct Element<'b, 'd> {
    browser: &'b Browser<'d>,
    id: String,
}

impl<'d> Browser<'d> {
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        call(
            &self.driver.http,
            method,
            &format!("{}{path}", self.session),
            body,
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", self.state()))
    }

    /// What the page shows, for failure messages: its address, visible
    /// error texts and view.
    pub fn state(&self) -> String {
        let script = "return location.href + ' | view: ' + \
            Array.from(document.querySelectorAll('main > section:not([hidden])')).map(s => s.id).join(',') + \
            ' | errors: ' + Array.from(document.querySelectorAll('.error, .notice')).map(e => e.textContent).filter(t => t).join(' / ');";
        call(
            &self.driver.http,
            "POST",
            &format!("{}/execute/sync", self.session),
            Some(json!({"script": script, "args": []})),
        )
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .unwrap_or_else(|e| format!("(page state unavailable: {e})"))
    }

    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn resize(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        );
    }

    pub fn script(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    fn try_find(&self, css: &str) -> Option<Element<'_, 'd>> {
        let v = call(
            &self.driver.http,
            "POST",
            &format!("{}/element", self.session),
            Some(json!({"using": "css selector", "value": css})),
        )
        .ok()?;
        Some(Element {
            browser: self,
            id: v[ELEMENT].as_str()?.to_owned(),
        })
    }

    /// Waits until `cond` holds (at most `secs`), failing with `what` and
    /// the page's state.
    pub fn wait(&self, secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !cond() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the page: {}",
                self.state()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The element `css` once it is displayed (at most 10 s).
    pub fn visible(&self, css: &str) -> Element<'_, 'd> {
        let mut found = None;
        self.wait(10, &format!("{css} to be displayed"), || {
            found = self.try_find(css).filter(Element::displayed);
            found.is_some()
        });
        found.expect("found")
    }

    /// Whether `css` exists and is displayed now.
    pub fn shows(&self, css: &str) -> bool {
        self.try_find(css).is_some_and(|e| e.displayed())
    }

    /// Waits until the text of `css` contains `text`; returns the text.
    pub fn wait_text(&self, css: &str, text: &str) -> String {
        let mut seen = String::new();
        self.wait(10, &format!("{css} to say {text:?}"), || {
            seen = self.try_find(css).map(|e| e.text()).unwrap_or_default();
            seen.contains(text)
        });
        seen
    }

    pub fn click(&self, css: &str) {
        self.visible(css).click();
    }

    /// Clears the field `css` and types `text` into it.
    pub fn fill(&self, css: &str, text: &str) {
        let e = self.visible(css);
        e.clear();
        e.type_text(text);
    }

    /// Emulates the system's dark (or light) colour scheme
    /// (`prefers-color-scheme`), through chromedriver's DevTools command.
    pub fn color_scheme(&self, scheme: &str) {
        self.cmd(
            "POST",
            "/goog/cdp/execute",
            Some(json!({"cmd": "Emulation.setEmulatedMedia", "params": {
                "features": [{"name": "prefers-color-scheme", "value": scheme}]
            }})),
        );
    }

    /// Presses keys in the focused element (W3C key codes: `\u{E007}` is
    /// Enter, `\u{E004}` Tab).
    pub fn keys(&self, css: &str, keys: &str) {
        self.visible(css).type_text(keys);
    }

    /// Saves a PNG of the window to `dir/name.png`.
    pub fn screenshot(&self, dir: &Path, name: &str) {
        let v = self.cmd("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 PNG"))
            .expect("base64");
        std::fs::create_dir_all(dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }
}

impl Drop for Browser<'_> {
    fn drop(&mut self) {
        let _ = call(&self.driver.http, "DELETE", &self.session, None);
    }
}

impl Element<'_, '_> {
    fn el(&self, method: &str, what: &str, body: Option<Value>) -> Value {
        self.browser
            .cmd(method, &format!("/element/{}{what}", self.id), body)
    }

    pub fn click(&self) {
        self.el("POST", "/click", None);
    }

    pub fn clear(&self) {
        self.el("POST", "/clear", None);
    }

    pub fn type_text(&self, text: &str) {
        self.el("POST", "/value", Some(json!({ "text": text })));
    }

    pub fn text(&self) -> String {
        self.el("GET", "/text", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn displayed(&self) -> bool {
        call(
            &self.browser.driver.http,
            "GET",
            &format!("{}/element/{}/displayed", self.browser.session, self.id),
            None,
        )
        .is_ok_and(|v| v == true)
    }

    pub fn property(&self, name: &str) -> Value {
        self.el("GET", &format!("/property/{name}"), None)
    }
}
