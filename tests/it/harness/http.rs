//! The one response type, [`Reply`], whichever way a response was obtained
//! (reqwest, a raw TCP socket, TLS), and the one error-shape asserter,
//! [`Reply::error`]. Building a `Reply` fails the test on a 500 and on a
//! missing security header.

use reqwest::{RequestBuilder, StatusCode};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A status given as `401` or `StatusCode::UNAUTHORIZED`.
pub trait Status {
    fn code(self) -> StatusCode;
}

impl Status for u16 {
    fn code(self) -> StatusCode {
        StatusCode::from_u16(self).expect("a valid status code")
    }
}

impl Status for StatusCode {
    fn code(self) -> StatusCode {
        self
    }
}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Reply {
    /// What was sent, for failure messages.
    pub what: String,
    status: u16,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// An access / refresh token pair as `/login` and `/refresh` return it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPair {
    pub token: String,
    pub refresh_token: String,
}

impl Reply {
    fn new(what: String, status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> Reply {
        let r = Reply::unchecked(what, status, headers, body);
        r.assert_security_headers();
        r
    }

    /// Only the 500 check: for answers actix's HTTP/1 codec gives before a
    /// request reaches the application (an unparseable request head).
    fn unchecked(
        what: String,
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Reply {
        let r = Reply {
            what,
            status,
            headers,
            body,
        };
        assert_ne!(
            r.status,
            500,
            "{}: the server answered 500: {}",
            r.what,
            r.text()
        );
        r
    }

    /// Names the reply in failure messages (which token, which step).
    pub fn context(mut self, what: &str) -> Reply {
        self.what = format!("{what}: {}", self.what);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status.code()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `X-Content-Type-Options: nosniff` and `Cache-Control: no-store`;
    /// the published key set (a 200 from a `jwks.json`) is the one response
    /// meant to be cached, `public, max-age=N`.
    pub fn assert_security_headers(&self) {
        assert_eq!(
            self.header("x-content-type-options"),
            Some("nosniff"),
            "{}: X-Content-Type-Options on a {} response",
            self.what,
            self.status
        );
        if self.status == 200 && self.what.contains("/jwks.json") {
            let cache = self.header("cache-control").unwrap_or_default();
            assert!(
                cache.starts_with("public, max-age="),
                "{}: Cache-Control {cache:?} on the key set",
                self.what
            );
            return;
        }
        assert_eq!(
            self.header("cache-control"),
            Some("no-store"),
            "{}: Cache-Control on a {} response",
            self.what,
            self.status
        );
    }

    /// The body as JSON; asserts a JSON content type.
    pub fn json(&self) -> Value {
        let ctype = self.header("content-type").unwrap_or_default();
        assert!(
            ctype.starts_with("application/json"),
            "{}: Content-Type {ctype:?} on a {} response: {}",
            self.what,
            self.status,
            self.text()
        );
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{}: body is not JSON ({e}): {}", self.what, self.text()))
    }

    /// Asserts 200 with a JSON body and returns the body.
    pub fn ok_json(&self) -> Value {
        assert_eq!(self.status, 200, "{}: {}", self.what, self.text());
        self.json()
    }

    /// Asserts an error in the API's shape: `status`, a JSON content type,
    /// exactly `{statusCode, error, message}` with the same number, the
    /// status's reason phrase and a non-empty message. Returns the body.
    pub fn error(&self, status: impl Status) -> Value {
        let status = status.code();
        assert_eq!(
            self.status,
            status.as_u16(),
            "{}: expected {status}, got {}: {}",
            self.what,
            self.status,
            self.text()
        );
        let body = self.json();
        assert_eq!(
            body["statusCode"].as_u64(),
            Some(u64::from(status.as_u16())),
            "{}: statusCode must equal the HTTP status: {body}",
            self.what
        );
        assert_eq!(
            body["error"].as_str(),
            status.canonical_reason(),
            "{}: error must be the reason phrase: {body}",
            self.what
        );
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}: error without a message: {body}",
            self.what
        );
        assert_eq!(
            keys(&body),
            ["error", "message", "statusCode"],
            "{}: {body}",
            self.what
        );
        body
    }

    /// The message of an error response with `status`.
    pub fn error_message(&self, status: impl Status) -> String {
        self.error(status)["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Asserts a 200 token response: exactly `{token, refreshToken,
    /// expires}` (with `Cache-Control: no-store`, as every reply), `expires`
    /// a positive integer of milliseconds, and returns the pair.
    pub fn token_pair(&self) -> TokenPair {
        let body = self.ok_json();
        assert_eq!(
            keys(&body),
            ["expires", "refreshToken", "token"],
            "{}: token response shape: {body}",
            self.what
        );
        assert!(
            body["expires"].as_u64().is_some_and(|ms| ms > 0),
            "{}: expires must be a positive integer of milliseconds: {body}",
            self.what
        );
        TokenPair {
            token: body["token"].as_str().expect("token").to_string(),
            refresh_token: body["refreshToken"]
                .as_str()
                .expect("refreshToken")
                .to_string(),
        }
    }

    /// The `_id` of a 200 `{_id}` body, checked to be exactly that and a UUID.
    pub fn id(&self) -> String {
        id_of(&self.ok_json())
    }
}

/// Sorted keys of a JSON object.
pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("expected a JSON object, got {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

/// The message of an error body.
pub fn message(body: &Value) -> String {
    body["message"].as_str().unwrap_or_default().to_string()
}

/// The `_id` of a `{_id}` body, checked to be exactly that shape and a UUID.
pub fn id_of(body: &Value) -> String {
    assert_eq!(keys(body), ["_id"], "expected exactly {{_id}}: {body}");
    let id = body["_id"].as_str().expect("_id is a string").to_string();
    uuid::Uuid::parse_str(&id).unwrap_or_else(|_| panic!("_id {id:?} is not a UUID"));
    id
}

/// Sends a request and captures the response as a [`Reply`].
pub async fn send(rb: RequestBuilder) -> Reply {
    let (what, status, headers, body) = exchange(rb).await;
    Reply::new(what, status, headers, body)
}

/// [`send`] without the security-header check: for a response that is not
/// engine-auth's (a reverse proxy's, or a service's behind it), or one of
/// the admin console's files (cacheable, unlike the API's answers).
pub async fn send_unchecked(rb: RequestBuilder) -> Reply {
    let (what, status, headers, body) = exchange(rb).await;
    Reply::unchecked(what, status, headers, body)
}

/// One exchange: what was sent, the status, the headers, the body.
async fn exchange(rb: RequestBuilder) -> (String, u16, Vec<(String, String)>, Vec<u8>) {
    let (client, req) = rb.build_split();
    let req = req.expect("request builds");
    let what = format!("{} {}", req.method(), req.url());
    let resp = client
        .execute(req)
        .await
        .unwrap_or_else(|e| panic!("{what}: request failed: {e:?}"));
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = resp.bytes().await.expect("response body").to_vec();
    (what, status, headers, body)
}

/// Reads a whole HTTP/1.1 response from `stream` (the request asked for
/// `Connection: close`, or the server closes after an error).
pub fn read_response(what: String, stream: &mut impl Read) -> Reply {
    let buf = read_all(&what, stream);
    parse_response(what, &buf, true)
}

fn read_all(what: &str, stream: &mut impl Read) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            // A reset after the response was sent (the server closed with
            // unread request bytes) still leaves a complete response.
            Err(_) if !buf.is_empty() => break,
            Err(e) => panic!("{what}: no response: {e}"),
        }
    }
    buf
}

fn parse_response(what: String, buf: &[u8], checked: bool) -> Reply {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "{what}: no complete response head: {:?}",
                String::from_utf8_lossy(buf)
            )
        });
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{what}: bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = buf[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    if checked {
        Reply::new(what, status, headers, body)
    } else {
        Reply::unchecked(what, status, headers, body)
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..pos]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        data = &data[pos + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}

/// Sends raw bytes to 127.0.0.1:`port` on a fresh connection.
pub fn raw_request(port: u16, request: &[u8]) -> Reply {
    raw_exchange(port, request, true)
}

/// Like [`raw_request`], for requests so broken that actix's HTTP/1 codec
/// answers them itself (no application, so no security headers): only the
/// "never 500" rule applies.
pub fn raw_request_unchecked(port: u16, request: &[u8]) -> Reply {
    raw_exchange(port, request, false)
}

fn raw_exchange(port: u16, request: &[u8], checked: bool) -> Reply {
    let first_line = request.split(|b| *b == b'\r').next().unwrap_or_default();
    let what = format!("raw {:?}", String::from_utf8_lossy(first_line));
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    // The server may answer (413, 431) and close before it read everything.
    let _ = s.write_all(request);
    let buf = read_all(&what, &mut s);
    parse_response(what, &buf, checked)
}

/// Whether `GET /health` on 127.0.0.1:`port` answers 200 right now (for
/// polling a process that may not listen yet; never panics).
pub fn healthy(port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}
