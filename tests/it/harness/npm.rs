//! npm packages the tests run (the compat suite's Fastify oracle in
//! `tests/oracle/`, Node-RED in `tests/node-red/`), installed on first use
//! from their lock files.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};

/// Installs `dir`'s node_modules from its `package-lock.json` with `npm ci`
/// unless a complete install is there (`node_modules/<package>/package.json`
/// and npm's hidden lock file, which npm writes last, so an interrupted
/// install is not taken for a finished one). Runs under a file lock named
/// `lock_name` in the target's temp dir, so that concurrent tests (and
/// concurrent test binaries) neither race nor install twice. `needed_by`
/// names the tests in the messages when node, npm or the install fails.
/// Callers keep their own `OnceLock` so that a test binary checks once.
pub fn npm_ci(dir: &Path, package: &str, lock_name: &str, needed_by: &str) {
    tool("node", needed_by);
    let lock_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(lock_name);
    let lock = File::create(&lock_path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", lock_path.display()));
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .unwrap_or_else(|e| panic!("cannot lock {}: {e}", lock_path.display()));
    if installed(dir, package) {
        return;
    }
    tool("npm", needed_by);
    let out = Command::new("npm")
        .arg("ci")
        .arg("--prefix")
        .arg(dir)
        .args(["--no-audit", "--no-fund"])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run npm: {e}"));
    assert!(
        out.status.success() && installed(dir, package),
        "`npm ci --prefix {}` failed ({}); {needed_by} need its dependencies (the npm \
         registry, or a populated npm cache):\n{}\n{}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The lock is released when `lock` closes.
}

fn installed(dir: &Path, package: &str) -> bool {
    dir.join("node_modules")
        .join(package)
        .join("package.json")
        .is_file()
        && dir.join("node_modules/.package-lock.json").is_file()
}

/// Panics with instructions unless `name --version` runs.
fn tool(name: &str, needed_by: &str) {
    let ok = Command::new(name)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{needed_by} need `{name}` on PATH (Node.js 18 or later with npm): install Node.js"
    );
}
