//! What the offline commands print: sizes and the `check` report. Plain
//! text, one fact a line, tab-separated where scripts may read it; text from
//! the store (usernames) made safe for a terminal first.

use std::borrow::Cow;
use std::fmt::Write;

use crate::domain::is_invisible;
use crate::store::maintenance::Scan;

/// Whether a terminal could be made to hide or reorder text by `c`: control
/// characters, invisible and formatting ones (zero-width, bidirectional
/// overrides and isolates, ...: [`is_invisible`]), and the line and
/// paragraph separators.
fn unsafe_for_terminal(c: char) -> bool {
    c.is_control() || is_invisible(c) || matches!(c, '\u{2028}' | '\u{2029}')
}

/// `text` (e.g. `user list`'s output, usernames as stored) with every
/// character [`unsafe_for_terminal`] written as a `\u{…}` escape, except
/// the newlines and tabs that lay the output out: usernames never held
/// those (control characters were always refused), so a name cannot fake a
/// line or a column, and names from before invisible characters were
/// refused print with theirs escaped. Backslashes are left alone, so that
/// `DOMAIN\user` stays readable; a name spelled with a literal `\u{200b}`
/// therefore prints like one holding U+200B (`check` quotes unambiguously).
pub(super) fn terminal_safe(text: &str) -> Cow<'_, str> {
    let layout = |c: char| c == '\n' || c == '\t';
    if !text.chars().any(|c| unsafe_for_terminal(c) && !layout(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_for_terminal(c) && !layout(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A username in double quotes, unambiguous: quotes and backslashes
/// escaped too, as Rust's `Debug` would, and everything
/// [`unsafe_for_terminal`] (which `Debug` misses for the Hangul fillers).
fn quoted(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if unsafe_for_terminal(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

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
/// and its size on disk (`disk` bytes) against the live data; then one line
/// per group of usernames that are one name under today's fold.
pub(super) fn scan_table(scan: &Scan, disk: u64) -> String {
    let recorded = |v: Option<u64>| v.map_or("none".to_string(), |n| n.to_string());
    let collisions = scan.collisions.iter().map(|names| {
        let names: Vec<String> = names.iter().map(|n| quoted(n)).collect();
        format!(
            "same username\t{}: one name under NFKC and case folding, but \
             separate users from before that; each logs in by its own \
             spelling (delete one to resolve)",
            names.join(", ")
        )
    });
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
        format!("API keys\t{}", scan.api_keys),
        format!(
            "disk\t{} for {} of live data ({:.1}x)",
            mib(disk),
            mib(scan.live_bytes),
            disk as f64 / scan.live_bytes.max(1) as f64
        ),
    ]
    .into_iter()
    .chain(collisions)
    .collect::<Vec<_>>()
    .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_hide_or_reorder_terminal_text() {
        let listed = "id\t159\t\u{202e}nimda\nid\t1\tad\u{200b}min\u{3164}\u{2028}";
        assert_eq!(
            terminal_safe(listed),
            "id\t159\t\\u{202e}nimda\nid\t1\tad\\u{200b}min\\u{3164}\\u{2028}"
        );
        assert!(matches!(
            terminal_safe("id\t159\tZoë\\名前\nx"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            terminal_safe("\u{1b}[2Jx\r\u{7f}"),
            "\\u{1b}[2Jx\\u{d}\\u{7f}"
        );
        assert_eq!(
            quoted("a\"b\\c\u{feff}\td\u{ad}"),
            r#""a\"b\\c\u{feff}\u{9}d\u{ad}""#
        );
    }

    #[test]
    fn check_reports_each_group_of_same_names() {
        let scan = Scan {
            collisions: vec![vec![
                "admin".into(),
                "ａｄｍｉｎ".into(),
                "\u{202e}x".into(),
            ]],
            ..Scan::default()
        };
        let table = scan_table(&scan, 0);
        let line = table.lines().last().unwrap();
        assert!(
            line.starts_with("same username\t\"admin\", \"ａｄｍｉｎ\", \"\\u{202e}x\": "),
            "{line}"
        );
        assert_eq!(table.lines().count(), 9);
    }

    #[test]
    fn sizes() {
        assert_eq!(size(40 * 1024), "40 KiB");
        assert_eq!(size(3 * 1024 * 1024 / 2), "1.5 MiB");
        assert_eq!(mib(0), "0.0 MiB");
    }
}
