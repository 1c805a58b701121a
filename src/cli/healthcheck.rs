//! `engine-auth healthcheck`: a minimal HTTP/1.1 GET of the health
//! endpoint, so probes need no curl on the device.

use anyhow::{Context, bail};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

/// Exit 0 and "ok: <status line>" on stdout when `url` answers 200; else
/// exit 1 and the reason on stderr.
pub(super) fn run(url: &str, timeout: Duration) -> ExitCode {
    match get(url, timeout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("engine-auth: unhealthy: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn get(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let rest = url
        .strip_prefix("http://")
        .context("only http:// URLs are supported")?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let hostport_numeric = match hostport.strip_prefix("localhost") {
        Some(port) => format!("127.0.0.1{port}"),
        None => hostport.to_string(),
    };
    let with_port = if hostport_numeric
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        hostport_numeric
    } else {
        format!("{hostport_numeric}:80")
    };
    // Numeric only: a statically linked glibc (the armv7 build) cannot use
    // NSS, so no host-name lookups anywhere in the daemon.
    let addr: SocketAddr = with_port
        .parse()
        .map_err(|_| anyhow::anyhow!("{hostport} is not a numeric address (or localhost)"))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut buf)?;
    let head = String::from_utf8_lossy(&buf);
    let status = head.lines().next().unwrap_or_default();
    if status.split(' ').nth(1) == Some("200") {
        println!("ok: {status}");
        Ok(())
    } else {
        // The error shape's message says why (e.g. storage failed).
        let message = head
            .split_once("\r\n\r\n")
            .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(body).ok())
            .and_then(|v| v["message"].as_str().map(str::to_owned));
        match message {
            Some(m) => bail!("{addr}{path} answered {status:?}: {m}"),
            None => bail!("{addr}{path} answered {status:?}"),
        }
    }
}
