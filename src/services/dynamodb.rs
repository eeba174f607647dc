//! `sst.aws.Dynamo` tables, served locally by dynalite (npm), a DynamoDB
//! emulator on LevelDB: started and stopped by wsgate as a process tree,
//! its data kept under `.wsgate/dynamodb/` across restarts, the app's
//! tables created (or recreated when their keys change) from the
//! component's arguments, and expired items swept by their `ttl`
//! attribute, which dynalite does not do. Handlers reach it through
//! `AWS_ENDPOINT_URL_DYNAMODB`, so the AWS SDKs need no change.
//!
//! Why dynalite rather than moto (docs/sst.md has the comparison): both
//! serve what the real apps call (Put, Get, Delete, Update with ADD and
//! conditions, Query on a GSI, Scan, batches); dynalite keeps its data on
//! disk (through `kill -9`), starts in 0.3 s rather than 1 s, needs only
//! Node.js (already needed), and rejects table names AWS rejects. moto has
//! transactions, which dynalite lacks.

use crate::process::tree::{self, ProcessTree};
use crate::sst::definition::{IndexDefinition, TableDefinition};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

pub const DYNALITE_VERSION: &str = "4.0.0";
/// How often expired items are looked for.
pub const TTL_SWEEP_EVERY: Duration = Duration::from_secs(5);
/// The region tables are created in (and handlers use).
const REGION: &str = "us-east-1";

/// A running emulator.
pub struct DynamoDb {
    /// Where handlers and users reach it: the guard (signed, non-browser
    /// requests only; `services::guard`).
    pub endpoint: String,
    /// dynalite itself, which checks nothing: wsgate's own client.
    pub emulator_endpoint: String,
    guard: super::guard::Guard,
    client: Client,
    stop: CancellationToken,
    child: tokio::process::Child,
    _tree: ProcessTree,
}

impl DynamoDb {
    /// Starts dynalite on a free loopback port with its data in
    /// `data_dir` (cleared first when `reset`), and waits until it answers.
    pub async fn start(data_dir: &Path, reset: bool) -> Result<DynamoDb, String> {
        let package = crate::toolchain::npm_package(
            "dynalite",
            DYNALITE_VERSION,
            "sst.aws.Dynamo tables run on the dynalite emulator",
        )?;
        if reset {
            let _ = std::fs::remove_dir_all(data_dir);
        }
        std::fs::create_dir_all(data_dir)
            .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
        let port = free_port()?;
        let mut command = std::process::Command::new("node");
        command
            .arg(package.join("cli.js"))
            .args(["--host", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .arg("--path")
            .arg(data_dir)
            .args([
                "--createTableMs",
                "0",
                "--deleteTableMs",
                "0",
                "--updateTableMs",
                "0",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let prepared = tree::prepare(&mut command);
        let mut command = tokio::process::Command::from(command);
        command.kill_on_drop(true);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                prepared.abandon();
                return Err(format!("cannot start the DynamoDB emulator with node: {e}"));
            }
        };
        let pid = child.id().unwrap_or_default();
        let tree = prepared.started(pid);
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(async move {
                use tokio::io::AsyncBufReadExt;
                let mut lines = tokio::io::BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::warn!(target: "wsgate::dynamodb", "{line}");
                }
            });
        }
        let endpoint = format!("http://127.0.0.1:{port}");
        let client = Client::new(&endpoint)?;
        let started = std::time::Instant::now();
        loop {
            if client.call("ListTables", json!({})).await.is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "the DynamoDB emulator exited at start ({status}); is {} in use by another wsgate?",
                    data_dir.display()
                ));
            }
            if started.elapsed() > Duration::from_secs(15) {
                return Err("the DynamoDB emulator did not answer within 15 s".into());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        tracing::debug!(%endpoint, ms = started.elapsed().as_millis() as u64, "DynamoDB emulator ready");
        let guard = super::guard::Guard::start("dynamodb", ([127, 0, 0, 1], port).into()).await?;
        Ok(DynamoDb {
            endpoint: guard.endpoint.clone(),
            emulator_endpoint: endpoint,
            guard,
            client,
            stop: CancellationToken::new(),
            child,
            _tree: tree,
        })
    }

    /// Admits calls signed with the keys an API holds (its functions'
    /// sessions, the run's generated key).
    pub fn trust(&self, keyring: std::sync::Arc<crate::auth::keyring::Keyring>, region: &str) {
        self.guard.trust(keyring, region);
    }

    /// Creates the tables that are missing, recreates those whose keys or
    /// indexes changed (their items are lost, with a warning), and starts
    /// sweeping expired items.
    pub async fn ensure_tables(&self, tables: &[TableDefinition]) -> Result<(), String> {
        for table in tables {
            let wanted = create_table_request(table)?;
            match self
                .client
                .call("DescribeTable", json!({ "TableName": table.table_name }))
                .await
            {
                Ok(described) => {
                    if same_shape(&described["Table"], &wanted) {
                        continue;
                    }
                    tracing::warn!(
                        table = %table.table_name,
                        "the keys or indexes of {} changed; the local table is recreated and its items are gone",
                        table.name
                    );
                    self.client
                        .call("DeleteTable", json!({ "TableName": table.table_name }))
                        .await?;
                }
                Err(e) if e.contains("ResourceNotFoundException") => {}
                Err(e) => return Err(e),
            }
            self.client
                .call("CreateTable", wanted)
                .await
                .map_err(|e| format!("cannot create the table for {}: {e}", table.name))?;
        }
        let with_ttl: Vec<(String, String)> = tables
            .iter()
            .filter_map(|t| t.ttl.clone().map(|ttl| (t.table_name.clone(), ttl)))
            .collect();
        if !with_ttl.is_empty() {
            tokio::spawn(sweep(self.client.clone(), with_ttl, self.stop.clone()));
        }
        Ok(())
    }

    /// Stops the emulator (its data stays on disk).
    pub async fn stop(mut self) {
        self.stop.cancel();
        self.guard.stop();
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port for the DynamoDB emulator: {e}"))
}

/// CreateTable for a component's arguments, as SST creates the table:
/// attribute types from `fields`, PAY_PER_REQUEST, indexes with SST's
/// projections (`all` unless `keys-only` or a list of attributes).
pub fn create_table_request(table: &TableDefinition) -> Result<Value, String> {
    let attribute_type = |name: &str| -> Result<&'static str, String> {
        match table.fields.get(name).map(String::as_str) {
            Some("string") => Ok("S"),
            Some("number") => Ok("N"),
            Some("binary") => Ok("B"),
            Some(other) => Err(format!(
                "{}: field {name} has type \"{other}\"; use string, number or binary",
                table.name
            )),
            None => Err(format!(
                "{}: {name} is used in an index but is not one of its fields",
                table.name
            )),
        }
    };
    let mut used = Vec::new();
    let mut key_schema = |index: &IndexDefinition, what: &str| -> Result<Value, String> {
        let mut schema = Vec::new();
        if let Some(hash) = &index.hash_key {
            attribute_type(hash)?;
            used.push(hash.clone());
            schema.push(json!({ "AttributeName": hash, "KeyType": "HASH" }));
        } else if what != "local" {
            return Err(format!("{}: the {what} index needs a hashKey", table.name));
        }
        if let Some(range) = &index.range_key {
            attribute_type(range)?;
            used.push(range.clone());
            schema.push(json!({ "AttributeName": range, "KeyType": "RANGE" }));
        }
        Ok(Value::Array(schema))
    };
    let primary = key_schema(&table.primary_index, "primary")?;
    let primary_hash = table.primary_index.hash_key.clone().unwrap_or_default();
    let mut globals = Vec::new();
    for (name, index) in &table.global_indexes {
        globals.push(json!({
            "IndexName": name,
            "KeySchema": key_schema(index, "global")?,
            "Projection": projection(index),
        }));
    }
    let mut locals = Vec::new();
    for (name, index) in &table.local_indexes {
        let mut schema = vec![json!({ "AttributeName": primary_hash, "KeyType": "HASH" })];
        if let Value::Array(range) = key_schema(index, "local")? {
            schema.extend(range);
        }
        locals.push(
            json!({ "IndexName": name, "KeySchema": schema, "Projection": projection(index) }),
        );
    }
    used.sort();
    used.dedup();
    let attributes: Vec<Value> = used
        .iter()
        .map(|name| Ok(json!({ "AttributeName": name, "AttributeType": attribute_type(name)? })))
        .collect::<Result<_, String>>()?;
    let mut request = json!({
        "TableName": table.table_name,
        "AttributeDefinitions": attributes,
        "KeySchema": primary,
        "BillingMode": "PAY_PER_REQUEST",
    });
    if !globals.is_empty() {
        request["GlobalSecondaryIndexes"] = Value::Array(globals);
    }
    if !locals.is_empty() {
        request["LocalSecondaryIndexes"] = Value::Array(locals);
    }
    Ok(request)
}

fn projection(index: &IndexDefinition) -> Value {
    match &index.projection {
        Some(Value::String(p)) if p == "keys-only" => json!({ "ProjectionType": "KEYS_ONLY" }),
        Some(Value::Array(attributes)) => {
            json!({ "ProjectionType": "INCLUDE", "NonKeyAttributes": attributes })
        }
        _ => json!({ "ProjectionType": "ALL" }),
    }
}

/// Whether an existing table (DescribeTable's `Table`) has the keys and
/// indexes a CreateTable request asks for.
fn same_shape(existing: &Value, wanted: &Value) -> bool {
    fn keys(v: &Value) -> Vec<String> {
        let mut keys: Vec<String> = v
            .as_array()
            .into_iter()
            .flatten()
            .map(|k| format!("{}:{}", k["AttributeName"], k["KeyType"]))
            .collect();
        keys.sort();
        keys
    }
    fn indexes(v: &Value) -> Vec<String> {
        let mut out: Vec<String> = v
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| {
                format!(
                    "{}={:?}/{}",
                    i["IndexName"],
                    keys(&i["KeySchema"]),
                    i["Projection"]["ProjectionType"]
                )
            })
            .collect();
        out.sort();
        out
    }
    keys(&existing["KeySchema"]) == keys(&wanted["KeySchema"])
        && indexes(&existing["GlobalSecondaryIndexes"])
            == indexes(&wanted["GlobalSecondaryIndexes"])
        && indexes(&existing["LocalSecondaryIndexes"]) == indexes(&wanted["LocalSecondaryIndexes"])
}

/// Deletes items whose TTL attribute (epoch seconds) has passed, as
/// DynamoDB does (within minutes there, seconds here).
async fn sweep(client: Client, tables: Vec<(String, String)>, stop: CancellationToken) {
    let mut timer = tokio::time::interval(TTL_SWEEP_EVERY);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = timer.tick() => {}
        }
        for (table, attribute) in &tables {
            if let Err(error) = sweep_table(&client, table, attribute).await {
                tracing::debug!(%table, %error, "TTL sweep failed");
            }
        }
    }
}

async fn sweep_table(client: &Client, table: &str, attribute: &str) -> Result<(), String> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let key_names: Vec<String> = client
        .call("DescribeTable", json!({ "TableName": table }))
        .await?["Table"]["KeySchema"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["AttributeName"].as_str().map(str::to_string))
        .collect();
    let mut start: Option<Value> = None;
    loop {
        let mut request = json!({
            "TableName": table,
            "FilterExpression": "#ttl < :now",
            "ExpressionAttributeNames": { "#ttl": attribute },
            "ExpressionAttributeValues": { ":now": { "N": now.to_string() } },
        });
        if let Some(key) = start.take() {
            request["ExclusiveStartKey"] = key;
        }
        let page = client.call("Scan", request).await?;
        for item in page["Items"].as_array().into_iter().flatten() {
            let key: serde_json::Map<String, Value> = key_names
                .iter()
                .filter_map(|k| item.get(k).map(|v| (k.clone(), v.clone())))
                .collect();
            // Still expired when deleted: a write since the scan wins.
            let _ = client
                .call(
                    "DeleteItem",
                    json!({
                        "TableName": table,
                        "Key": key,
                        "ConditionExpression": "#ttl < :now",
                        "ExpressionAttributeNames": { "#ttl": attribute },
                        "ExpressionAttributeValues": { ":now": { "N": now.to_string() } },
                    }),
                )
                .await;
        }
        match page.get("LastEvaluatedKey") {
            Some(key) if !key.is_null() => start = Some(key.clone()),
            _ => return Ok(()),
        }
    }
}

/// A DynamoDB JSON-protocol client, SigV4-signed: with a local key for
/// the emulator (which checks only that a signature is there), or with
/// the user's for AWS.
#[derive(Clone)]
pub struct Client {
    endpoint: String,
    http: reqwest::Client,
    credentials: crate::auth::keyring::Credentials,
    region: String,
}

impl Client {
    /// A client of the local emulator.
    pub fn new(endpoint: &str) -> Result<Client, String> {
        Client::with(
            endpoint,
            crate::auth::keyring::Credentials {
                access_key_id: "AKIDWSGATELOCAL00000".into(),
                secret_access_key: "wsgate-local-emulator".into(),
                session_token: None,
            },
            REGION,
        )
    }

    /// A client of `endpoint` signing with `credentials` in `region`.
    pub fn with(
        endpoint: &str,
        credentials: crate::auth::keyring::Credentials,
        region: &str,
    ) -> Result<Client, String> {
        Ok(Client {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| e.to_string())?,
            credentials,
            region: region.to_string(),
        })
    }

    /// Every table name (ListTables, all pages).
    pub async fn table_names(&self) -> Result<Vec<String>, String> {
        let mut names = Vec::new();
        let mut start: Option<Value> = None;
        loop {
            let mut request = json!({});
            if let Some(last) = start.take() {
                request["ExclusiveStartTableName"] = last;
            }
            let page = self.call("ListTables", request).await?;
            names.extend(
                page["TableNames"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|n| n.as_str().map(str::to_string)),
            );
            match page.get("LastEvaluatedTableName") {
                Some(last) if !last.is_null() => start = Some(last.clone()),
                _ => return Ok(names),
            }
        }
    }

    /// Calls `operation`; an error response is `Err("<type>: <message>")`.
    pub async fn call(&self, operation: &str, body: Value) -> Result<Value, String> {
        let body = body.to_string();
        let target = format!("DynamoDB_20120810.{operation}");
        let url = format!("{}/", self.endpoint);
        let headers = sign(
            &self.credentials,
            &self.region,
            &url,
            &target,
            body.as_bytes(),
        )?;
        let mut request = self
            .http
            .post(&url)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", &target);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| format!("{operation}: {e}"))?;
        let status = response.status();
        let value: Value = response
            .json()
            .await
            .map_err(|e| format!("{operation}: unreadable reply: {e}"))?;
        if status.is_success() {
            Ok(value)
        } else {
            let kind = value["__type"].as_str().unwrap_or("Error");
            let kind = kind.rsplit('#').next().unwrap_or(kind);
            let message = value["message"]
                .as_str()
                .or_else(|| value["Message"].as_str())
                .unwrap_or("");
            Err(format!("{kind}: {message}"))
        }
    }
}

fn sign(
    credentials: &crate::auth::keyring::Credentials,
    region: &str,
    url: &str,
    target: &str,
    body: &[u8],
) -> Result<Vec<(String, String)>, String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    let identity = aws_credential_types::Credentials::new(
        &credentials.access_key_id,
        &credentials.secret_access_key,
        credentials.session_token.clone(),
        None,
        "wsgate",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("dynamodb")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let headers = [
        ("x-amz-target", target),
        ("content-type", "application/x-amz-json-1.0"),
    ];
    let signable =
        SignableRequest::new("POST", url, headers.into_iter(), SignableBody::Bytes(body))
            .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect())
}

/// Where an app keeps its local tables.
pub fn data_dir(app_dir: &Path) -> PathBuf {
    app_dir.join(".wsgate").join("dynamodb")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn index(hash: Option<&str>, range: Option<&str>) -> IndexDefinition {
        IndexDefinition {
            hash_key: hash.map(str::to_string),
            range_key: range.map(str::to_string),
            projection: None,
        }
    }

    #[test]
    fn tables_are_created_as_sst_creates_them() {
        let table = TableDefinition {
            name: "Rooms".into(),
            table_name: "app-dev-RoomsTable".into(),
            fields: BTreeMap::from([
                ("pk".into(), "string".into()),
                ("sk".into(), "string".into()),
                ("room".into(), "string".into()),
                ("at".into(), "number".into()),
            ]),
            primary_index: index(Some("pk"), Some("sk")),
            global_indexes: BTreeMap::from([("ByRoom".into(), index(Some("room"), Some("at")))]),
            local_indexes: BTreeMap::new(),
            ttl: Some("expiresAt".into()),
        };
        let request = create_table_request(&table).unwrap();
        assert_eq!(request["BillingMode"], "PAY_PER_REQUEST");
        assert_eq!(request["KeySchema"][0]["KeyType"], "HASH");
        assert_eq!(
            request["GlobalSecondaryIndexes"][0]["Projection"]["ProjectionType"],
            "ALL"
        );
        assert_eq!(request["AttributeDefinitions"].as_array().unwrap().len(), 4);
        let mut bad = table.clone();
        bad.global_indexes
            .insert("Nope".into(), index(Some("missing"), None));
        assert!(
            create_table_request(&bad)
                .unwrap_err()
                .contains("not one of its fields")
        );
    }
}
