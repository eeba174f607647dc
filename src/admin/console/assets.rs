//! The console's files, embedded at build time from `console/`: the
//! binary serves them offline, and nothing is fetched from elsewhere.

pub struct Asset {
    pub body: &'static [u8],
    pub content_type: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// A path and the file in `console/` served at it.
macro_rules! asset {
    ($path:literal, $file:literal, $content_type:expr) => {
        (
            $path,
            Asset {
                body: include_bytes!(concat!("../../../console/", $file)),
                content_type: $content_type,
            },
        )
    };
}

/// Path → file. Plain JavaScript modules and CSS: there is no build step.
const ASSETS: &[(&str, Asset)] = &[
    asset!("/", "index.html", HTML),
    asset!("/console.css", "console.css", CSS),
    asset!("/console.js", "console.js", JS),
    asset!("/charts.js", "charts.js", JS),
];

pub fn find(path: &str) -> Option<&'static Asset> {
    let path = if path == "/index.html" { "/" } else { path };
    ASSETS.iter().find(|(p, _)| *p == path).map(|(_, a)| a)
}
