//! How long checking a `wsgate.toml` takes as the number of routes grows:
//! parsing, validation and building the API, per route. Linear checking
//! keeps the time per route flat.
//!
//! `cargo run --release --example config_check -- [--routes 10000,20000,40000,100000]`

use std::time::Instant;

fn config_with(routes: usize) -> String {
    let mut source = String::from("name = \"Bench\"\n[routes]\n");
    for i in 0..routes {
        source.push_str(&format!("r{i} = {{ url = \"http://127.0.0.1:9/{i}\" }}\n"));
    }
    source
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let levels: Vec<usize> = args
        .iter()
        .position(|a| a == "--routes")
        .and_then(|i| args.get(i + 1))
        .map_or("10000,20000,40000,100000", String::as_str)
        .split(',')
        .map(|n| n.parse().expect("--routes takes numbers"))
        .collect();
    println!("config check: parse, validate and build, by number of routes");
    println!("{:>10} {:>12} {:>16}", "routes", "ms", "µs per route");
    let mut first = None;
    for routes in levels {
        let source = config_with(routes);
        let started = Instant::now();
        let config = wsgate::config::parse(std::path::Path::new("wsgate.toml"), &source).unwrap();
        let api = wsgate::WebSocketApi::from_config(&config).unwrap();
        let elapsed = started.elapsed();
        assert_eq!(api.describe_routes().len(), routes);
        let per_route = elapsed.as_secs_f64() * 1e6 / routes as f64;
        println!(
            "{routes:>10} {:>12.1} {per_route:>16.2}",
            elapsed.as_secs_f64() * 1e3
        );
        let base = *first.get_or_insert(per_route);
        if per_route != base {
            println!(
                "{:>10} per-route time {:.2}x the first level's",
                "",
                per_route / base
            );
        }
    }
}
