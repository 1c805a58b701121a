//! Disk exhaustion (security review, finding 5). Sessions per user were
//! unlimited: logins filled a small data dir. A full disk then broke every
//! write for good while `/health`, `healthcheck` and the watchdog kept
//! saying all was well. Each 429 wrote an audit line, so a flood of
//! unauthenticated requests grew the log without bound.
//!
//! - 60 logins of one user leave 50 live sessions (the default cap): the
//!   oldest ten refresh tokens are refused.
//! - Throttled floods write a handful of audit lines and one summary, not
//!   one line each.
//! - With the data dir on a tiny tmpfs that is filled up, a write fails
//!   (500), `/health` answers 503 and `healthcheck` fails; after the space is
//!   freed and the daemon restarted, everything acknowledged is there. The
//!   test plays systemd too: the watchdog pings stop.
//!   Mounting takes root (ours or password-less sudo's): without it this
//!   test fails rather than skips.

use serde_json::json;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::{
    ADMIN_PASSWORD, Daemon, Sandbox, TestApp, USER_PASSWORD, healthcheck, roles, send, text,
    wait_until,
};

#[actix_web::test]
async fn sixty_logins_of_one_user_leave_fifty_sessions_and_end_the_oldest_ten() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, first) = app.user_with_tokens(&admin, "alice", &["read"]).await;
    let mut pairs = vec![first];
    for _ in 1..60 {
        pairs.push(app.login_ok("alice", USER_PASSWORD).await);
    }
    assert_eq!(app.live_sessions_of(&id), 50);
    for (i, pair) in pairs.iter().enumerate() {
        let reply = app.refresh(&pair.refresh_token).await;
        if i < 10 {
            reply.context(&format!("login {i}")).error(401);
        } else {
            reply.context(&format!("login {i}")).token_pair();
        }
    }
    // Rotating kept them 50; another user's sessions are their own.
    assert_eq!(app.live_sessions_of(&id), 50);
    let (bob, _) = app.user_with_tokens(&admin, "bob", &["read"]).await;
    assert_eq!(app.live_sessions_of(&bob), 1);
    assert_eq!(app.live_sessions_of(&id), 50);
}

/// Lines of the audit target for `event` from `peer`.
fn audit_lines<'a>(log: &'a str, event: &str, peer: &str) -> Vec<&'a str> {
    let tag = format!("] event={event} ");
    let peer = format!("peer={peer}");
    log.lines()
        .filter(|l| l.contains(" engine_auth::audit") && l.contains(&tag))
        .filter(|l| l.split(' ').any(|w| w == peer))
        .collect()
}

#[actix_web::test]
async fn two_thousand_throttled_logins_write_a_handful_of_audit_lines() {
    let sb = Sandbox::new();
    let mut d = sb.daemon().args(&["--throttle-after", "2"]).start();
    // Until 2,000 were throttled; between delays a guess is tried (401).
    let (mut throttled_replies, mut failed_replies) = (0, 0);
    while throttled_replies < 2000 {
        match d.login("admin", "wrong-password").await.status().as_u16() {
            429 => throttled_replies += 1,
            401 => failed_replies += 1,
            other => panic!("a wrong password answered {other}"),
        }
        assert!(
            failed_replies < 50,
            "the throttle let {failed_replies} guesses through"
        );
    }
    // Real events from elsewhere are never suppressed.
    let other = d.calling_from("127.0.0.2");
    for _ in 0..3 {
        other.login_ok("admin", ADMIN_PASSWORD).await;
    }
    d.terminate();
    let log = d.logs();
    let throttled = audit_lines(&log, "throttled", "127.0.0.1");
    assert!(
        (1..=6).contains(&throttled.len()),
        "{} throttled lines for one address:\n{}",
        throttled.len(),
        throttled[..throttled.len().min(20)].join("\n")
    );
    // What was left out is counted, not lost: by the time the daemon has
    // stopped, the lines and their suppressed counts add up.
    assert_eq!(counted_by(&throttled), 2000, "{}", throttled.join("\n"));
    assert_eq!(audit_lines(&log, "login_ok", "127.0.0.2").len(), 3, "{log}");
    let failed = audit_lines(&log, "login_failed", "127.0.0.1");
    assert!((1..=6).contains(&failed.len()), "{}", failed.join("\n"));
    assert_eq!(counted_by(&failed), failed_replies, "{}", failed.join("\n"));
}

/// The events `lines` stand for: an event's line is one, plus the
/// `suppressed=N` it reports; a summary (`event=E peer=P suppressed=N`)
/// is N.
fn counted_by(lines: &[&str]) -> usize {
    lines
        .iter()
        .map(|l| {
            let message = l.split_once("] ").map_or(*l, |(_, m)| m);
            let words: Vec<&str> = message.split(' ').collect();
            let n = words
                .iter()
                .find_map(|w| w.strip_prefix("suppressed="))
                .map_or(0, |n| n.parse::<usize>().expect("a count"));
            if words.len() == 3 && n > 0 { n } else { 1 + n }
        })
        .sum()
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `program args…` as root: directly, or through password-less sudo.
fn as_root(program: &str, args: &[&str]) -> std::process::Output {
    let mut c = if is_root() {
        Command::new(program)
    } else {
        let mut c = Command::new("sudo");
        c.args(["-n", program]);
        c
    };
    c.args(args).output().expect("run a command as root")
}

/// A tmpfs of `size` mounted on a directory; unmounted when dropped (also
/// when the test panics).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        let sudo = is_root()
            || Command::new("sudo")
                .args(["-n", "true"])
                .status()
                .is_ok_and(|s| s.success());
        assert!(
            sudo,
            "this test mounts a tiny file system: run it as root or with password-less sudo (CI does)"
        );
        std::fs::create_dir_all(dir).expect("mount point");
        let dir_s = dir.to_str().expect("utf-8 path");
        let uid = text(&Command::new("id").arg("-u").output().expect("id").stdout);
        let opts = format!("size={size},mode=0700,uid={}", uid.trim());
        let out = as_root("mount", &["-t", "tmpfs", "-o", &opts, "tmpfs", dir_s]);
        assert!(out.status.success(), "mount tmpfs: {}", text(&out.stderr));
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a daemon still holding a file must not leave it mounted.
        let _ = as_root("umount", &["-l", self.0.to_str().unwrap_or_default()]);
    }
}

/// Every notification waiting on the notify socket.
fn received(socket: &UnixDatagram) -> Vec<String> {
    let mut buf = [0u8; 4096];
    let mut all = Vec::new();
    while let Ok(n) = socket.recv(&mut buf) {
        all.push(text(&buf[..n]));
    }
    all
}

/// Fills the file system holding `dir` with one file, until a write fails.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler file");
    let chunk = vec![0u8; 4096];
    while f.write_all(&chunk).and_then(|()| f.sync_all()).is_ok() {}
    path
}

/// `POST /user`; the status, 500 included (the harness's replies refuse
/// a 500, which is what a failed write must answer here).
async fn create(d: &Daemon, admin: &str, name: &str) -> u16 {
    let body = json!({"username": name, "password": USER_PASSWORD, "roles": roles(&["read"])});
    d.client
        .post(d.api("/user"))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .expect("POST /user")
        .status()
        .as_u16()
}

#[actix_web::test]
async fn a_full_disk_makes_the_daemon_unhealthy_and_a_restart_with_space_brings_it_back() {
    let sb = Sandbox::new();
    let mount = Tmpfs::mount(&sb.data(), "4m");
    // Play systemd: a notify socket and a watchdog of 200 ms (pinged every
    // 100 ms).
    let notify_path = sb.data().with_file_name("notify.sock");
    let systemd = UnixDatagram::bind(&notify_path).expect("notify socket");
    systemd
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let mut d = sb
        .daemon()
        .env("NOTIFY_SOCKET", notify_path.to_str().expect("utf-8"))
        .env("WATCHDOG_USEC", "200000")
        .start();
    wait_until(10, "a watchdog ping", || {
        received(&systemd).iter().any(|m| m == "WATCHDOG=1")
    });
    let admin = d.admin_token().await;
    assert_eq!(create(&d, &admin, "before").await, 200);
    let mut acknowledged = vec!["before".to_string()];

    let filler = fill(&mount.0);
    let mut failed = None;
    for i in 0..500 {
        let name = format!("during{i}");
        match create(&d, &admin, &name).await {
            200 => acknowledged.push(name),
            500 => {
                failed = Some(i);
                break;
            }
            other => panic!("creating {name} on a full disk answered {other}"),
        }
    }
    assert!(failed.is_some(), "no write failed on a full disk");
    // Unhealthy, in the error shape, saying why, whichever path is asked.
    for path in ["/health", "/api/v1/health"] {
        let reply = send(d.client.get(d.url(path))).await;
        let message = reply.context(path).error_message(503);
        assert!(message.to_lowercase().contains("storage"), "{message}");
    }
    let url = format!("http://127.0.0.1:{}/health", d.port);
    let probe = healthcheck(&["--url", &url]);
    assert!(
        !probe.status.success(),
        "healthcheck passed on a daemon that cannot write: {}",
        text(&probe.stdout)
    );
    // The watchdog pings stop (systemd then restarts the service), after
    // a status saying why.
    wait_until(10, "the storage failure status", || {
        received(&systemd)
            .iter()
            .any(|m| m.contains("STATUS=storage failed"))
    });
    std::thread::sleep(Duration::from_millis(500));
    let after = received(&systemd);
    assert!(
        !after.iter().any(|m| m == "WATCHDOG=1"),
        "still pinging the watchdog: {after:?}"
    );
    // More failed writes: still one error line saying what to do.
    for i in 0..5 {
        create(&d, &admin, &format!("after{i}")).await;
    }
    let once = |log: &str| {
        log.lines()
            .filter(|l| l.contains(" ERROR ") && l.contains("restart"))
            .count()
    };
    wait_until(10, "the storage failure to be logged", || {
        once(&d.logs()) >= 1
    });
    assert_eq!(once(&d.logs()), 1, "{}", d.logs());
    // Even with space back, this process stays unhealthy: redb refuses
    // every write after an I/O error.
    std::fs::remove_file(&filler).expect("remove the filler");
    assert_eq!(
        send(d.client.get(d.url("/health"))).await.status().as_u16(),
        503,
        "healthy again without a restart"
    );

    // What systemd does once the watchdog pings stop: kill and restart.
    // With the disk still full, the start is refused, saying so (not that
    // the store is damaged).
    d.sigkill();
    let filler = fill(&mount.0);
    let mut refused = sb.daemon().spawn();
    assert!(!refused.wait_exit_unless_ready().success());
    let said = refused.logs();
    assert!(
        said.contains("no space left") && !said.contains("backup"),
        "{said}"
    );
    std::fs::remove_file(&filler).expect("remove the filler");
    let d = sb.start();
    let admin = d.admin_token().await;
    let users = d.users(&admin).await;
    for name in &acknowledged {
        assert!(users.contains(name), "{name} was acknowledged, then lost");
    }
    assert_eq!(create(&d, &admin, "restarted").await, 200);
    send(d.client.get(d.url("/health"))).await.ok_json();
}
