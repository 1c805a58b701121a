//! ARCHITECTURE.md's invariants that a reading of the source can check:
//! which module may name what. Each test lists the offending lines.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Lines of `src/` files (outside `allowed`, paths relative to `src/`)
/// that contain any of `needles`, skipping this file.
fn offenders(needles: &[&str], allowed: &[&str]) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(&src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        if rel == "invariants.rs" || allowed.iter().any(|a| rel.starts_with(a)) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read source");
        for (n, line) in text.lines().enumerate() {
            if needles.iter().any(|needle| line.contains(needle)) {
                found.push(format!("src/{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn only_the_store_touches_the_engine() {
    let bad = offenders(&["sled::", "redb::"], &["store/"]);
    assert!(
        bad.is_empty(),
        "sled or redb outside store/:\n{}",
        bad.join("\n")
    );
}

#[test]
fn only_audit_emit_writes_the_audit_target() {
    let bad = offenders(&["engine_auth::audit"], &["audit.rs"]);
    assert!(
        bad.is_empty(),
        "audit lines outside audit.rs:\n{}",
        bad.join("\n")
    );
}

#[test]
fn handlers_and_the_admin_socket_leave_writes_to_the_use_cases() {
    let writes = [
        "store.create_user(",
        "store.set_roles(",
        "store.set_password_hash(",
        "store.upgrade_password_hash(",
        "store.delete_user(",
        "store.revoke_all_tokens(",
        "store.recover_admin(",
        "store.start_session(",
        "store.start_session_of(",
        "store.record_event(",
        "store.exchange_refresh(",
        "store.revoke_session_of(",
        "store.rotate_key(",
        "store.rotate_key_revoking_previous(",
        "store.create_api_key(",
        "store.revoke_api_key(",
        "store.touch_api_key(",
        "ApiKeyRecord {",
        "new_user_record(",
    ];
    let bad: Vec<String> = offenders(&writes, &[])
        .into_iter()
        .filter(|l| l.starts_with("src/http/") || l.starts_with("src/admin/"))
        .collect();
    assert!(
        bad.is_empty(),
        "store writes outside accounts/:\n{}",
        bad.join("\n")
    );
}

#[test]
fn one_clock() {
    let bad = offenders(&["SystemTime::now"], &["clock.rs"]);
    assert!(
        bad.is_empty(),
        "time read outside clock.rs:\n{}",
        bad.join("\n")
    );
}
