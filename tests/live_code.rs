//! Live code, as `sst dev` gives it: editing a handler, or a file it
//! imports, changes what the next invocation runs, without a restart and
//! without dropping connections; a build error keeps the last good code.

mod common;

use common::*;
use std::path::Path;
use std::time::{Duration, Instant};
use wsgate::WebSocketApi;

const CONFIG: &str = r#"
name = "Live"
[routes]
node = { handler = "src/hello.handler", return_response = true }
python = { handler = "py/hello.handler", return_response = true }
"#;

fn app() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::create_dir_all(dir.path().join("py")).unwrap();
    std::fs::write(
        dir.path().join("src/hello.ts"),
        "import { word } from \"./word.js\";\nexport const handler = async (): Promise<{ statusCode: number; body: string }> => ({ statusCode: 200, body: word });\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("src/word.ts"),
        "export const word: string = \"v1\";\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("py/hello.py"),
        "from words import WORD\n\ndef handler(event, context):\n    return {\"statusCode\": 200, \"body\": WORD}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("py/words.py"), "WORD = \"py1\"\n").unwrap();
    std::fs::write(dir.path().join("wsgate.toml"), CONFIG).unwrap();
    dir
}

async fn ask(client: &mut Client, action: &str) -> String {
    send_text(client, &format!(r#"{{"action":"{action}"}}"#)).await;
    next_text(client).await
}

/// Asks until the answer is `expected` (the rebuild takes a moment).
async fn until_answer(client: &mut Client, action: &str, expected: &str) -> Duration {
    let started = Instant::now();
    loop {
        let answer = ask(client, action).await;
        if answer == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "still {answer:?}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn edit(path: &Path, text: &str) {
    // As editors save: a new file renamed over the old one.
    let temporary = path.with_extension("swp");
    std::fs::write(&temporary, text).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

#[tokio::test]
async fn edits_reach_the_next_invocation_and_connections_stay() {
    let dir = app();
    let config = wsgate::config::load(&dir.path().join("wsgate.toml")).unwrap();
    let server = WebSocketApi::from_config(&config)
        .unwrap()
        .bind(any_port())
        .await
        .unwrap();
    let mut client = connect(&server.url()).await;
    assert_eq!(ask(&mut client, "node").await, "v1");
    assert_eq!(ask(&mut client, "python").await, "py1");

    // A file the handler imports changes.
    edit(
        &dir.path().join("src/word.ts"),
        "export const word: string = \"v2\";\n",
    );
    until_answer(&mut client, "node", "v2").await;
    // The handler itself, in TypeScript only it can hold.
    edit(
        &dir.path().join("src/hello.ts"),
        "import { word } from \"./word.js\";\nenum Version { Three = \"v3\" }\nexport const handler = async () => ({ statusCode: 200, body: `${Version.Three}:${word}` });\n",
    );
    until_answer(&mut client, "node", "v3:v2").await;

    // A build error keeps the last good code.
    edit(
        &dir.path().join("src/word.ts"),
        "export const word: string = ;\n",
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(ask(&mut client, "node").await, "v3:v2");
    edit(
        &dir.path().join("src/word.ts"),
        "export const word = \"v4\";\n",
    );
    until_answer(&mut client, "node", "v3:v4").await;

    // Python: a module beside the handler.
    edit(&dir.path().join("py/words.py"), "WORD = \"py2\"\n");
    until_answer(&mut client, "python", "py2").await;

    // One connection all along.
    assert_eq!(server.connections().count(), 1);
    server.shutdown().await;
}
