//! SST's `aws-apig-websocket` example, its `lambda.ts` unmodified, with the
//! real `sst` and `@aws-sdk/client-apigatewaymanagementapi` packages
//! (installed by scripts/setup into examples/sst-websocket/node_modules).

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;
use wsgate::WebSocketApi;

#[tokio::test]
async fn sst_example_runs_unmodified() {
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sst-websocket");
    assert!(
        app.join("node_modules/sst").is_dir()
            && app
                .join("node_modules/@aws-sdk/client-apigatewaymanagementapi")
                .is_dir(),
        "run scripts/setup: examples/sst-websocket needs `npm ci`"
    );
    let config = wsgate::config::load(&app.join("wsgate.toml")).unwrap();
    let server = WebSocketApi::from_config(&config)
        .unwrap()
        .bind(any_port())
        .await
        .unwrap();
    let mut client = connect(&server.url()).await;

    // $default (catchAll) posts back through Resource.MyApi.managementEndpoint
    // with the AWS SDK's PostToConnectionCommand.
    send_text(&mut client, r#"{"action":"whatever"}"#).await;
    assert_eq!(next_text(&mut client).await, "Hey! What is this?");
    send_text(&mut client, "not even json").await;
    assert_eq!(next_text(&mut client).await, "Hey! What is this?");

    // sendmessage is a one-way route: nothing comes back.
    send_text(&mut client, r#"{"action":"sendmessage","data":"hi"}"#).await;
    assert_silent(&mut client, Duration::from_millis(500)).await;
    client.close(None).await.unwrap();
    server.shutdown().await;
}
