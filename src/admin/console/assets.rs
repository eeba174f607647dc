//! The console's files, embedded at build time from `console/`: the
//! binary serves them offline, and nothing is fetched from elsewhere.

pub struct Asset {
    pub body: &'static [u8],
    pub content_type: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Path → file. Plain JavaScript modules and CSS: there is no build step.
const ASSETS: &[(&str, Asset)] = &[
    (
        "/",
        Asset {
            body: include_bytes!("../../../console/index.html"),
            content_type: HTML,
        },
    ),
    (
        "/console.css",
        Asset {
            body: include_bytes!("../../../console/console.css"),
            content_type: CSS,
        },
    ),
    (
        "/console.js",
        Asset {
            body: include_bytes!("../../../console/console.js"),
            content_type: JS,
        },
    ),
    (
        "/charts.js",
        Asset {
            body: include_bytes!("../../../console/charts.js"),
            content_type: JS,
        },
    ),
];

pub fn find(path: &str) -> Option<&'static Asset> {
    let path = if path == "/index.html" { "/" } else { path };
    ASSETS.iter().find(|(p, _)| *p == path).map(|(_, a)| a)
}
