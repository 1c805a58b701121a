//! The admin console in a real browser: headless Debian Chromium, driven
//! through chromedriver, against the real daemon binary on a temporary
//! store. Screenshots of each page (desktop and 360 px wide) go to
//! `target/tmp/console-screenshots/`; with `ENGINE_AUTH_DOCS_SCREENSHOTS=1`
//! the README's three are also written to `docs/` (see README, "The admin
//! console").

use serde_json::{Value, json};
use std::path::{Path, PathBuf};

use super::webdriver::{Browser, Driver};
use crate::harness::{ADMIN_PASSWORD, Sandbox, now, totp_at};

fn shots() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots")
}

/// The README's screenshots, when asked for.
fn docs_shot(b: &Browser, name: &str) {
    b.screenshot(&shots(), name);
    if std::env::var_os("ENGINE_AUTH_DOCS_SCREENSHOTS").is_some() {
        b.screenshot(&Path::new(env!("CARGO_MANIFEST_DIR")).join("docs"), name);
    }
}

/// Prints the daemon's log when the test fails: what the server saw.
struct LogsOnFailure<'a>(&'a Sandbox);

impl Drop for LogsOnFailure<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("the daemon's log:\n{}", self.0.all_logs());
        }
    }
}

fn sign_in(b: &Browser, name: &str, password: &str) {
    b.visible("#view-signin");
    b.fill("#signin-username", name);
    b.fill("#signin-password", password);
    b.click("#signin-submit");
}

fn signed_in_as(b: &Browser, name: &str) {
    b.visible("#view-account");
    b.wait_text("#who", name);
}

fn sign_out(b: &Browser) {
    b.click("#signout");
    b.visible("#view-signin");
    b.wait_text("#signin-notice", "signed out");
}

/// The `data-*` attribute `attr` of every row of table `css`.
fn rows(b: &Browser, css: &str, attr: &str) -> Vec<String> {
    let v = b.script(
        "return Array.from(document.querySelectorAll(arguments[0] + ' tbody tr'))\
         .map(r => r.getAttribute(arguments[1]) || '');",
        json!([css, attr]),
    );
    v.as_array()
        .expect("an array")
        .iter()
        .map(|s| s.as_str().unwrap_or_default().to_owned())
        .filter(|s| !s.is_empty()) // "No … match." rows
        .collect()
}

#[test]
fn console_admin_and_user_scenario_in_chromium() {
    let driver = Driver::start();
    let sb = Sandbox::new();
    let _logs = LogsOnFailure(&sb);
    let daemon = sb.start();
    let console = format!("{}/admin/", daemon.address);
    let dir = shots();

    // The admin signs in; a wrong password first shows the error by the form.
    let a = driver.browser(1280, 900);
    a.goto(&console);
    a.visible("#view-signin");
    a.screenshot(&dir, "signin");
    sign_in(&a, "admin", "not-the-password");
    a.wait_text("#signin-error", "Invalid username or password");
    assert!(a.shows("#view-signin"), "still on the sign-in page");
    a.screenshot(&dir, "signin-error");
    sign_in(&a, "admin", ADMIN_PASSWORD);
    signed_in_as(&a, "admin");
    a.screenshot(&dir, "account-admin");

    // Creates a user with two roles.
    a.click("#nav-users");
    a.visible("#view-users");
    a.fill("#create-username", "maria");
    a.fill("#create-password", "maria-first-password");
    a.click("#create-flows");
    a.click("#create-read");
    a.click("#create-submit");
    a.wait_text("#create-status", "Created maria");
    a.wait_text("tr[data-user=\"maria\"]", "flows, read");
    a.resize(1280, 1100);
    docs_shot(&a, "console-users");
    a.resize(1280, 900);
    // A bad input is refused next to the form, in words.
    a.fill("#create-username", "maria");
    a.fill("#create-password", "another-password");
    a.click("#create-submit");
    a.wait_text("#create-error", "Username is already taken");
    a.visible("#create-username").clear();

    // Signs out; the user signs in and changes its password, which ends
    // every session of it: back to sign-in, then in with the new one.
    sign_out(&a);
    sign_in(&a, "maria", "maria-first-password");
    signed_in_as(&a, "maria");
    let roles = a.visible("#account-roles").text();
    assert!(
        roles.contains("flows") && roles.contains("read") && !roles.contains("admin"),
        "{roles}"
    );
    assert!(!a.shows("#nav-users"), "no admin sections for a non-admin");
    a.fill("#pw-current", "wrong-current-password");
    a.fill("#pw-new", "maria-second-password");
    a.click("#pw-submit");
    a.wait_text("#pw-error", "currentPassword is incorrect");
    a.fill("#pw-current", "maria-first-password");
    a.fill("#pw-new", "maria-second-password");
    a.click("#pw-submit");
    a.visible("#view-signin");
    a.wait_text("#signin-notice", "Password changed");
    sign_in(&a, "maria", "maria-second-password");
    signed_in_as(&a, "maria");

    // Enables two-factor authentication with the secret shown on the page.
    a.fill("#mfa-password", "maria-second-password");
    a.click("#mfa-start-submit");
    a.visible("#mfa-setup");
    let secret = a.visible("#mfa-secret").text();
    assert!(secret.len() >= 32, "a base32 secret: {secret:?}");
    let qr = a.script(
        "var c = document.getElementById('mfa-qr');\
         var d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, dark = 0;\
         for (var i = 0; i < d.length; i += 4) if (d[i] < 128) dark++;\
         return [c.width, dark];",
        json!([]),
    );
    assert!(
        qr[0].as_u64() > Some(100) && qr[1].as_u64() > Some(1000),
        "a QR code drawn on the canvas: {qr}"
    );
    docs_shot(&a, "console-mfa");
    a.fill("#mfa-code", &totp_at(&secret, now()));
    a.click("#mfa-enable-submit");
    a.visible("#mfa-codes");
    let codes = a
        .visible("#mfa-codes-text")
        .property("value")
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(codes.lines().count(), 10, "ten recovery codes: {codes}");
    a.click("#mfa-copy");
    a.wait_text("#mfa-copy-status", "op"); // "Copied." or how to copy them
    a.wait_text("#mfa-state", "is on");
    a.screenshot(&dir, "account-mfa-on");

    // Signs out and back in with a code (the next step's: each code
    // works once, and the one that enabled it is spent).
    sign_out(&a);
    sign_in(&a, "maria", "maria-second-password");
    a.visible("#signin-otp-row");
    a.wait_text("#signin-error", "one-time code");
    a.fill("#signin-otp", &totp_at(&secret, now() + 30));
    a.click("#signin-submit");
    signed_in_as(&a, "maria");
    let mine = rows(&a, "#my-sessions", "data-session");
    assert_eq!(mine.len(), 1, "only this session lives: {mine:?}");
    a.wait_text("#my-sessions tbody", "(this one)");

    // The admin, in another browser, sees the events of all that.
    let b = driver.browser(1280, 900);
    b.goto(&console);
    sign_in(&b, "admin", ADMIN_PASSWORD);
    signed_in_as(&b, "admin");
    b.click("#nav-security");
    b.visible("#view-security");
    b.wait_text("#keys tbody", "active");
    b.fill("#audit-user", "maria");
    b.click("#audit-submit");
    b.wait_text("#audit tbody", "mfa_enabled");
    let events = rows(&b, "#audit", "data-event");
    for wanted in [
        "user_created",
        "login_ok",
        "password_change_failed",
        "user_password_changed",
        "mfa_enabled",
    ] {
        assert!(events.iter().any(|e| e == wanted), "{wanted} in {events:?}");
    }
    assert_eq!(
        events.first().map(String::as_str),
        Some("login_ok"),
        "newest first: {events:?}"
    );
    b.fill("#audit-user", "admin");
    b.script(
        "var s = document.getElementById('audit-event'); s.value = 'login_failed';",
        json!([]),
    );
    b.click("#audit-submit");
    b.wait(10, "admin's failed login listed", || {
        rows(&b, "#audit", "data-event") == ["login_failed"]
    });
    b.fill("#audit-user", "");
    b.script(
        "document.getElementById('audit-event').value = '';",
        json!([]),
    );
    b.click("#audit-submit");
    b.wait(10, "every event listed", || {
        rows(&b, "#audit", "data-event").len() > 8
    });
    b.screenshot(&dir, "security");

    // Rotates the signing key.
    b.click("#keys-rotate");
    b.wait_text("#keys-status", "New signing key");
    b.wait_text("#keys tbody", "retired");

    // Ends the user's sessions: its page goes back to sign-in.
    b.click("#nav-users");
    b.visible("tr[data-user=\"maria\"] a").click();
    b.visible("#view-user");
    b.wait_text("#user-title", "maria");
    b.wait(10, "maria's session listed", || {
        rows(&b, "#user-sessions", "data-session").len() == 1
    });
    b.screenshot(&dir, "user");
    b.click("#user-end-all");
    b.wait_text("#user-sessions tbody", "No active sessions");
    a.click("#nav-account");
    a.visible("#view-signin");
    a.wait_text("#signin-notice", "session has ended");

    // Changes its roles.
    b.click("#user-role-flows");
    b.click("#user-role-write");
    b.click("#user-roles-submit");
    b.wait_text("#user-roles-status", "write, read");
    let listed = daemon_roles(&daemon, "maria");
    assert_eq!(
        listed,
        json!({"admin": false, "flows": false, "configure": false, "subscribe": false, "write": true, "read": true})
    );

    // Deletes it, after a confirmation naming it.
    b.click("#user-delete");
    b.wait_text("#user-delete-question", "\u{201c}maria\u{201d}");
    b.wait_text("#user-delete-yes", "Delete maria");
    b.click("#user-delete-yes");
    b.visible("#view-users");
    b.wait(10, "maria gone from the list", || {
        let users = rows(&b, "#users", "data-user");
        users == ["admin"]
    });

    // The last admin: its admin flag and delete button are disabled, with
    // the reason shown.
    b.visible("tr[data-user=\"admin\"] a").click();
    b.wait_text("#user-title", "admin");
    b.wait_text("#user-roles-reason", "last admin");
    assert_eq!(b.visible("#user-role-admin").property("disabled"), true);
    assert_eq!(b.visible("#user-delete").property("disabled"), true);
    b.wait_text("#user-delete-reason", "last admin cannot be deleted");
    b.screenshot(&dir, "user-last-admin");

    // Nothing secret reached the daemon's log.
    sb.assert_logs_free_of(&[
        ADMIN_PASSWORD,
        "maria-first-password",
        "maria-second-password",
        &secret,
    ]);
    drop(b);
    drop(a);

    // Every page at 360 px wide: nothing wider than the screen.
    let phone = driver.browser(360, 800);
    phone.goto(&console);
    phone.visible("#view-signin");
    fits(&phone, "sign-in");
    phone.screenshot(&dir, "signin-360");
    sign_in(&phone, "admin", ADMIN_PASSWORD);
    signed_in_as(&phone, "admin");
    fits(&phone, "account");
    docs_shot(&phone, "console-account-360");
    for (nav, view, name) in [
        ("#nav-users", "#view-users", "users-360"),
        ("#nav-security", "#view-security", "security-360"),
    ] {
        phone.click(nav);
        phone.visible(view);
        phone.wait(10, "the tables filled", || {
            phone.script(
                "return document.querySelectorAll('tbody tr').length",
                json!([]),
            ) != 0
        });
        fits(&phone, name);
        phone.screenshot(&dir, name);
    }
    phone.script(
        "location.hash = '#/users/' + arguments[0]",
        json!([admin_id(&daemon)]),
    );
    phone.wait_text("#user-title", "admin");
    fits(&phone, "user");
    phone.screenshot(&dir, "user-360");

    // Dark mode follows the system's preference.
    let background = || {
        phone.script(
            "return getComputedStyle(document.body).backgroundColor",
            json!([]),
        )
    };
    assert_eq!(background(), "rgb(244, 245, 247)", "light by default");
    phone.color_scheme("dark");
    assert_eq!(background(), "rgb(15, 20, 25)", "dark when the system is");
    phone.screenshot(&dir, "user-360-dark");
}

/// The page is no wider than the window (no sideways scrolling of the
/// page itself; wide tables scroll inside their own box).
fn fits(b: &Browser, page: &str) {
    let v = b.script(
        "return [document.documentElement.scrollWidth, window.innerWidth];",
        json!([]),
    );
    let wide = b.script(
        "return Array.from(document.querySelectorAll('body *'))\
         .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5 && e.offsetParent !== null && !e.closest('.scroll table'))\
         .slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));",
        json!([]),
    );
    assert!(
        v[0].as_u64() <= v[1].as_u64(),
        "{page}: the page is {} px wide in a {} px window; too wide: {wide}",
        v[0],
        v[1]
    );
}

/// `name`'s roles, read over the API as the admin.
fn daemon_roles(daemon: &crate::harness::Daemon, name: &str) -> Value {
    let http = reqwest::blocking::Client::new();
    let token = admin_token(daemon);
    let id = http
        .get(daemon.api(&format!("/user/{name}")))
        .bearer_auth(&token)
        .send()
        .and_then(|r| r.json::<Value>())
        .expect("GET /user")["_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    http.get(daemon.api(&format!("/user/roles/{id}")))
        .bearer_auth(&token)
        .send()
        .and_then(|r| r.json::<Value>())
        .expect("GET /user/roles")
}

fn admin_token(daemon: &crate::harness::Daemon) -> String {
    reqwest::blocking::Client::new()
        .post(daemon.api("/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .and_then(|r| r.json::<Value>())
        .expect("admin login")["token"]
        .as_str()
        .expect("a token")
        .to_owned()
}

fn admin_id(daemon: &crate::harness::Daemon) -> String {
    reqwest::blocking::Client::new()
        .get(daemon.api("/user/admin"))
        .bearer_auth(admin_token(daemon))
        .send()
        .and_then(|r| r.json::<Value>())
        .expect("GET /user/admin")["_id"]
        .as_str()
        .expect("an id")
        .to_owned()
}

#[test]
fn console_signs_in_by_keyboard_and_returns_to_sign_in_when_the_session_expires() {
    let driver = Driver::start();
    let sb = Sandbox::new();
    // Access tokens of 2 s, sessions of 5 s, no leeway: the page refreshes
    // its token every second until the session's end refuses it.
    let daemon = sb
        .daemon()
        .args(&[
            "--access-ttl-secs",
            "2",
            "--refresh-ttl-secs",
            "5",
            "--session-max-secs",
            "5",
            "--leeway-secs",
            "0",
        ])
        .start();
    let b = driver.browser(1280, 900);
    b.goto(&format!("{}/admin/", daemon.address));
    // By keyboard alone: the username field has the focus; Tab, then Enter
    // in the password field submits.
    b.visible("#view-signin");
    b.wait(10, "the username field focused", || {
        b.script("return document.activeElement.id", json!([])) == "signin-username"
    });
    b.keys("#signin-username", "admin\u{E004}");
    b.wait(10, "Tab to reach the password", || {
        b.script("return document.activeElement.id", json!([])) == "signin-password"
    });
    b.keys("#signin-password", &format!("{ADMIN_PASSWORD}\u{E007}"));
    signed_in_as(&b, "admin");
    // Still signed in after the first access token expired (refreshed).
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(b.shows("#view-account"), "refreshed in time: {}", b.state());
    b.wait(20, "the expired session to return to sign-in", || {
        b.shows("#view-signin")
    });
    b.wait_text("#signin-notice", "session has ended");
    // A reload finds no session either (the cookie's is over).
    b.goto(&format!("{}/admin/", daemon.address));
    b.visible("#view-signin");
    b.screenshot(&shots(), "signin-expired");
}
