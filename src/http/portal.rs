//! The self-service portal (design section 7): the dashboard's files under `portal/`, built
//! into the binary and served at `/` and `/assets/...` under a strict Content-Security-Policy
//! (no inline script or style, nothing from another origin). The page itself reads the
//! HTTP API of this module's siblings with the key its user pastes; this module serves
//! files only.

use std::sync::LazyLock;

use axum::{
    Router,
    extract::Path,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use sha2::{Digest, Sha256};

use super::problem;

/// The policy of every portal file: scripts, styles and requests from this origin only,
/// images also as `data:` URLs (the favicon), never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
    style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
    base-uri 'none'; form-action 'self'";

/// A file of the portal, by its path under `portal/` (the URL path under `/`).
struct Asset {
    path: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal) => {
        Asset {
            path: $path,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/portal/", $path)),
        }
    };
}

/// The page at `/`.
const INDEX: Asset = asset!("index.html");

/// Everything the page loads. `portal/test-vendor` holds what only the browser tests use.
const ASSETS: &[Asset] = &[
    asset!("assets/app.js"),
    asset!("assets/api.js"),
    asset!("assets/charts.js"),
    asset!("assets/dom.js"),
    asset!("assets/format.js"),
    asset!("assets/pages.js"),
    asset!("assets/state.js"),
    asset!("assets/app.css"),
    asset!("assets/vendor/chart.umd.min.js"),
    asset!("assets/vendor/LICENSE-chart.js.md"),
];

/// Each file's entity tag, a digest of its bytes: browsers revalidate (`no-cache`) and get
/// a 304 until the binary serves other bytes.
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    std::iter::once(&INDEX)
        .chain(ASSETS)
        .map(|a| {
            let digest = Sha256::digest(a.body);
            HeaderValue::try_from(format!("\"{}\"", hex::encode(&digest[..16])))
                .unwrap_or(HeaderValue::from_static("\"\""))
        })
        .collect()
});

/// The portal's routes, to be merged into the HTTP router.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{*path}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    serve(0, &INDEX, &headers)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let wanted = format!("assets/{path}");
    match ASSETS.iter().position(|a| a.path == wanted) {
        Some(i) => serve(i + 1, &ASSETS[i], &headers),
        None => problem::no_route(),
    }
}

/// The file `asset` (entity tag `ETAGS[tag]`), or 304 when the browser holds it already.
fn serve(tag: usize, asset: &Asset, headers: &HeaderMap) -> Response {
    let etag = ETAGS[tag].clone();
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|held| held.as_bytes() == etag.as_bytes());
    let common = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common, [(header::ETAG, etag)]).into_response();
    }
    let content_type = content_type(asset.path);
    (
        common,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::ETAG, etag),
        ],
        asset.body,
    )
        .into_response()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        _ => "text/plain; charset=utf-8",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every file under `portal/assets` is served, so a new module cannot be forgotten.
    #[test]
    fn every_file_under_portal_assets_is_served() {
        fn files(dir: &std::path::Path, root: &std::path::Path, out: &mut BTreeSet<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    files(&path, root, out);
                } else {
                    let relative = path.strip_prefix(root).unwrap();
                    out.insert(relative.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("portal");
        let mut on_disk = BTreeSet::new();
        files(&root.join("assets"), &root, &mut on_disk);
        let served: BTreeSet<String> = ASSETS.iter().map(|a| a.path.to_owned()).collect();
        assert_eq!(on_disk, served);
    }

    #[test]
    fn scripts_and_styles_have_their_types() {
        assert_eq!(
            content_type("assets/app.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("assets/app.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(ETAGS.len(), ASSETS.len() + 1);
    }
}
