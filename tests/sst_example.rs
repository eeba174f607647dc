//! SST's `aws-apig-websocket` example, unmodified: its own `sst.config.ts`
//! and `lambda.ts`, with the real `sst` and
//! `@aws-sdk/client-apigatewaymanagementapi` packages (installed by
//! scripts/setup into examples/sst-websocket/node_modules), and no
//! wsgate.toml.

mod common;

use common::serve::Serve;
use common::*;
use std::path::Path;
use std::time::Duration;

/// A folder holding only the example's sst.config.ts and lambda.ts (its
/// packages linked in), as a user would have it.
fn app_folder() -> tempfile::TempDir {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sst-websocket");
    assert!(
        example.join("node_modules/sst").is_dir()
            && example
                .join("node_modules/@aws-sdk/client-apigatewaymanagementapi")
                .is_dir(),
        "run scripts/setup: examples/sst-websocket needs `npm ci`"
    );
    let dir = tempfile::tempdir().unwrap();
    for file in ["sst.config.ts", "lambda.ts"] {
        std::fs::copy(example.join(file), dir.path().join(file)).unwrap();
    }
    std::os::unix::fs::symlink(
        example.join("node_modules"),
        dir.path().join("node_modules"),
    )
    .unwrap();
    dir
}

#[tokio::test]
async fn sst_example_runs_from_its_own_sst_config() {
    let dir = app_folder();
    let serve = Serve::start(&dir.path().join("sst.config.ts"), &[]);
    assert!(
        serve
            .printed
            .iter()
            .any(|l| l.contains("SST app aws-apig-websocket")),
        "{:?}",
        serve.printed
    );
    // run()'s own outputs are printed too.
    assert!(
        serve
            .printed
            .iter()
            .any(|l| l.contains("output managementEndpoint")
                && l.contains(&serve.management_endpoint)),
        "{:?}",
        serve.printed
    );
    // API Gateway's url is wss://, as SST's output; plain ws:// is served
    // on the same port.
    assert!(serve.url.starts_with("wss://"), "{}", serve.url);
    assert!(serve.management_endpoint.starts_with("https://"));
    let mut client = connect(&serve.url.replacen("wss://", "ws://", 1)).await;

    // $default (catchAll, linked to the API) posts back through
    // Resource.MyApi.managementEndpoint with PostToConnectionCommand.
    send_text(&mut client, r#"{"action":"whatever"}"#).await;
    assert_eq!(next_text(&mut client).await, "Hey! What is this?");
    send_text(&mut client, "not even json").await;
    assert_eq!(next_text(&mut client).await, "Hey! What is this?");

    // sendmessage is a one-way route: nothing comes back.
    send_text(&mut client, r#"{"action":"sendmessage","data":"hi"}"#).await;
    assert_silent(&mut client, Duration::from_millis(500)).await;
    client.close(None).await.unwrap();
}
