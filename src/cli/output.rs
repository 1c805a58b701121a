//! What the offline commands print: sizes and the `check` report. Plain
//! text, one fact a line, tab-separated where scripts may read it.

use crate::store::maintenance::Scan;

pub(super) fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Like [`mib`], but small sizes in KiB (a fresh store is ~40 KiB).
pub(super) fn size(bytes: u64) -> String {
    if bytes < 1024 * 1024 {
        format!("{:.0} KiB", bytes as f64 / 1024.0)
    } else {
        mib(bytes)
    }
}

/// `check`'s table of what the store holds, against the recorded counts,
/// and its size on disk (`disk` bytes) against the live data.
pub(super) fn scan_table(scan: &Scan, disk: u64) -> String {
    let recorded = |v: Option<u64>| v.map_or("none".to_string(), |n| n.to_string());
    [
        format!(
            "users\t{} (recorded {})",
            scan.users,
            recorded(scan.recorded.users)
        ),
        format!(
            "admins\t{} (recorded {})",
            scan.admins,
            recorded(scan.recorded.admins)
        ),
        format!(
            "usernames\t{} (recorded {})",
            scan.names,
            recorded(scan.recorded.names)
        ),
        format!("signing keys\t{}", scan.keys),
        format!("refresh tokens of 0.1.0\t{}", scan.refresh_tokens),
        format!("sessions\t{}", scan.sessions),
        format!(
            "disk\t{} for {} of live data ({:.1}x)",
            mib(disk),
            mib(scan.live_bytes),
            disk as f64 / scan.live_bytes.max(1) as f64
        ),
    ]
    .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size(40 * 1024), "40 KiB");
        assert_eq!(size(3 * 1024 * 1024 / 2), "1.5 MiB");
        assert_eq!(mib(0), "0.0 MiB");
    }
}
