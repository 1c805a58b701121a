//! The admin console at `/admin/`: one HTML page, one stylesheet and one
//! script, embedded in the binary (`include_str!`), talking only to this
//! daemon's API. The asset names carry the first 16 hex digits of their
//! SHA-256 (computed once, at first use), so they are cached for a year
//! and a new build's page names new files; the page itself is `no-cache`.
//! Every response carries the console's Content-Security-Policy: nothing
//! but this origin, no inline script or style, no framing.
//!
//! These routes are static files, not API calls: they are registered here
//! (`configure`), not in `openapi::routes`, and are not in the OpenAPI
//! document.

use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

use super::error::error_response;

/// The policy of every console response (the issue's, exactly).
pub const CSP: &str =
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Where the console lives.
pub const PREFIX: &str = "/admin";

const INDEX: &str = include_str!("console/index.html");
const STYLE: &str = include_str!("console/console.css");
/// The vendored QR code generator, then the console's own script: one file.
const SCRIPT: &str = concat!(
    include_str!("console/vendor/qrcode-generator-2.0.4.min.js"),
    "\n",
    include_str!("console/console.js")
);

/// One embedded asset under its hashed name.
pub struct Asset {
    pub name: String,
    pub body: &'static str,
    pub content_type: &'static str,
}

/// The embedded files: the page (its links naming the hashed files) and
/// the hashed stylesheet and script.
pub struct Assets {
    pub index: String,
    pub files: [Asset; 2],
}

fn hashed(stem: &str, ext: &str, body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    format!("{stem}.{}.{ext}", &crate::hex::encode(&digest)[..16])
}

/// The assets, hashed once.
pub fn assets() -> &'static Assets {
    static ASSETS: OnceLock<Assets> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let css = hashed("console", "css", STYLE);
        let js = hashed("console", "js", SCRIPT);
        Assets {
            index: INDEX
                .replace("{{CSS}}", &format!("{PREFIX}/assets/{css}"))
                .replace("{{JS}}", &format!("{PREFIX}/assets/{js}")),
            files: [
                Asset {
                    name: css,
                    body: STYLE,
                    content_type: "text/css; charset=utf-8",
                },
                Asset {
                    name: js,
                    body: SCRIPT,
                    content_type: "text/javascript; charset=utf-8",
                },
            ],
        }
    })
}

/// The response headers every console file shares.
fn with_policy(mut res: HttpResponse) -> HttpResponse {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

/// Every console request: one handler for the three paths (each handler
/// actix instantiates costs binary size; the budget is tight).
async fn serve(req: HttpRequest) -> HttpResponse {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return super::error::method_not_allowed("GET, HEAD");
    }
    let path = req.path();
    if path == PREFIX {
        return HttpResponse::PermanentRedirect()
            .insert_header((header::LOCATION, format!("{PREFIX}/")))
            .finish();
    }
    if path.len() == PREFIX.len() + 1 {
        return with_policy(
            HttpResponse::Ok()
                .content_type("text/html; charset=utf-8")
                .insert_header((header::CACHE_CONTROL, "no-cache"))
                .body(assets().index.clone()),
        );
    }
    let name = req.match_info().get("name").unwrap_or_default();
    match assets().files.iter().find(|a| a.name == name) {
        Some(a) => with_policy(
            HttpResponse::Ok()
                .content_type(a.content_type)
                .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
                .body(a.body),
        ),
        None => with_policy(error_response(
            actix_web::http::StatusCode::NOT_FOUND,
            "No such console file (the page may be from an older version: reload it)",
        )),
    }
}

/// Registers `/admin` (a redirect to `/admin/`), `/admin/` (the page) and
/// `/admin/assets/{name}` (GET and HEAD; 405 otherwise).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource([
            PREFIX.to_owned(),
            format!("{PREFIX}/"),
            format!("{PREFIX}/assets/{{name}}"),
        ])
        .to(serve),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_the_hashed_files_and_nothing_inline() {
        let a = assets();
        for f in &a.files {
            assert!(
                a.index.contains(&format!("{PREFIX}/assets/{}", f.name)),
                "{}",
                f.name
            );
        }
        assert!(!a.index.contains("{{"), "a placeholder is left");
        // CSP forbids inline script and style: the page must not need them.
        assert!(!a.index.contains("<script>"), "inline script");
        assert!(!a.index.contains("<style"), "inline style");
        assert!(!a.index.contains(" style="), "inline style attribute");
        assert!(!a.index.contains("onclick="), "inline handler");
        // Nothing from elsewhere.
        for f in std::iter::once(a.index.as_str()).chain(a.files.iter().map(|f| f.body)) {
            assert!(!f.contains("https://fonts"), "external font");
            assert!(!f.contains("localStorage"), "token storage");
            assert!(!f.contains("sessionStorage"), "token storage");
        }
        // Our script puts server text on the page as text only, and calls
        // nothing but this origin's API.
        let ours = include_str!("console/console.js");
        assert!(!ours.contains("innerHTML"), "HTML from strings");
        assert!(
            !ours.contains("http://") && !ours.contains("https://"),
            "another origin"
        );
    }

    #[test]
    fn the_assets_fit_the_budget() {
        let a = assets();
        let total = a.index.len() + a.files.iter().map(|f| f.body.len()).sum::<usize>();
        assert!(
            total <= 150 * 1024,
            "{total} bytes of assets, budget 150 KiB"
        );
    }
}
