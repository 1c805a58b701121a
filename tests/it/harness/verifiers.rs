//! Independent JWT verifiers that nobody here wrote, from the package
//! registries: PyJWT (`PyJWKClient`, pinned in `tests/jwks/requirements.txt`,
//! installed into a venv of the tests' own) and the `jose` npm package
//! (pinned in `tests/jwks/package-lock.json`, installed by [`npm_ci`]). Each
//! runs as a long-lived process, a service with its own cached key set,
//! driven one line at a time by `tests/jwks/*_verifier.*`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use super::npm_ci;

/// Which verifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifierKind {
    PyJwt,
    Jose,
}

fn jwks_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jwks")
}

/// The venv's python with the pinned PyJWT, created (under a file lock, so
/// concurrent tests install once) unless the same requirements are
/// installed already. Panics with the cause when python or pip fails: the
/// tests never skip.
fn pyjwt_python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
            let venv = tmp.join("jwks-venv");
            let lock_path = tmp.join("jwks-venv.lock");
            let lock = std::fs::File::create(&lock_path).expect("venv lock file");
            rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
                .expect("lock the venv");
            let wanted = std::fs::read_to_string(jwks_dir().join("requirements.txt"))
                .expect("tests/jwks/requirements.txt");
            let marker = venv.join("installed-requirements.txt");
            let python = venv.join("bin/python3");
            if std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str())
                && python.exists()
            {
                return python;
            }
            let run = |cmd: &mut Command, what: &str| {
                let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| {
                    panic!(
                        "{what}: cannot run ({e}); the jwks tests need python3 with venv and pip"
                    )
                });
                assert!(
                    out.status.success(),
                    "{what} failed ({}); the jwks tests need PyJWT from PyPI:\n{}\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            };
            let _ = std::fs::remove_dir_all(&venv);
            run(
                Command::new("python3").args(["-m", "venv"]).arg(&venv),
                "python3 -m venv",
            );
            run(
                Command::new(&python)
                    .args([
                        "-m",
                        "pip",
                        "install",
                        "--disable-pip-version-check",
                        "-q",
                        "-r",
                    ])
                    .arg(jwks_dir().join("requirements.txt")),
                "pip install -r tests/jwks/requirements.txt",
            );
            std::fs::write(&marker, &wanted).expect("write the venv marker");
            python
        })
        .clone()
}

fn jose_installed() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| npm_ci(&jwks_dir(), "jose", "jwks-npm.lock", "the jwks tests"));
}

/// A running verifier: a service that fetched `JWKS_URL` and keeps the set
/// for `max_age` seconds.
pub struct Verifier {
    pub kind: VerifierKind,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Verifier {
    /// A verifier of `alg` tokens (`EdDSA`, `ES256`: the only algorithm it
    /// accepts, as a service is configured).
    pub fn start(kind: VerifierKind, jwks_url: &str, max_age: u64, alg: &str) -> Verifier {
        let mut cmd = match kind {
            VerifierKind::PyJwt => {
                let mut c = Command::new(pyjwt_python());
                c.arg(jwks_dir().join("pyjwt_verifier.py"));
                c
            }
            VerifierKind::Jose => {
                jose_installed();
                let mut c = Command::new("node");
                c.arg(jwks_dir().join("jose_verifier.mjs"));
                c
            }
        };
        let mut child = cmd
            .arg(jwks_url)
            .arg(max_age.to_string())
            .arg(alg)
            .current_dir(jwks_dir())
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the {kind:?} verifier: {e}"));
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut v = Verifier {
            kind,
            child,
            stdin,
            lines,
        };
        let ready = v.answer();
        assert!(ready.starts_with("ready"), "{kind:?} verifier: {ready}");
        v
    }

    fn answer(&mut self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the {:?} verifier did not answer", self.kind))
    }

    fn ask(&mut self, line: &str) -> String {
        writeln!(self.stdin, "{line}").expect("write to the verifier");
        self.stdin.flush().expect("flush");
        self.answer()
    }

    /// `Ok(_id claim)` when the verifier accepts `token`, else `Err(why)`.
    pub fn verify(&mut self, token: &str) -> Result<String, String> {
        let a = self.ask(&format!("verify {token}"));
        match a.split_once(' ') {
            Some(("ok", id)) => Ok(id.to_string()),
            Some(("refused", why)) => Err(why.to_string()),
            _ => panic!("{:?} verifier answered {a:?}", self.kind),
        }
    }

    /// Forgets the cached key set, as a restarted service would.
    pub fn fresh(&mut self) {
        assert_eq!(self.ask("fresh"), "fresh");
    }
}

impl Drop for Verifier {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
