//! Hybrid mode (`--aws`): sockets on wsgate, data on AWS. No emulator
//! starts; functions get the user's own AWS credentials (which wsgate
//! then also accepts on the management API), and each `sst.aws.Dynamo`
//! component's `Resource.<Name>.name` is the table SST deployed for the
//! stage, found by its name on AWS.

use super::dynamodb::Client;
use crate::auth::keyring::Credentials;
use crate::config::Config;
use crate::sst::definition::TableDefinition;
use std::collections::BTreeMap;

/// The user's AWS, from the environment.
pub struct Aws {
    pub credentials: Credentials,
    pub region: String,
    /// `AWS_ENDPOINT_URL_DYNAMODB` (or `AWS_ENDPOINT_URL`) when set.
    endpoint: Option<String>,
}

impl Aws {
    pub fn from_env() -> Result<Aws, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (Some(access_key_id), Some(secret_access_key)) =
            (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
        else {
            return Err("--aws needs AWS credentials in the environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (with a profile: `eval $(aws configure export-credentials --format env)`)".into());
        };
        Ok(Aws {
            credentials: Credentials {
                access_key_id,
                secret_access_key,
                session_token: var("AWS_SESSION_TOKEN"),
            },
            region: var("AWS_REGION")
                .or_else(|| var("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| crate::config::DEFAULT_REGION.into()),
            endpoint: var("AWS_ENDPOINT_URL_DYNAMODB").or_else(|| var("AWS_ENDPOINT_URL")),
        })
    }

    /// What functions get besides the credentials: the endpoint the user
    /// set, if any.
    pub fn passthrough_env(&self) -> Vec<(String, String)> {
        self.endpoint
            .iter()
            .map(|e| ("AWS_ENDPOINT_URL_DYNAMODB".to_string(), e.clone()))
            .collect()
    }

    /// The name on AWS of each table: SST names a table
    /// `<app>-<stage>-<Name>Table-<suffix>` (or what `transform.table.name`
    /// says, which the definition already holds).
    pub async fn table_names(
        &self,
        app: &str,
        stage: &str,
        tables: &[TableDefinition],
    ) -> Result<BTreeMap<String, String>, String> {
        let endpoint = self
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://dynamodb.{}.amazonaws.com", self.region));
        let client = Client::with(&endpoint, self.credentials.clone(), &self.region)?;
        let existing = client
            .table_names()
            .await
            .map_err(|e| format!("--aws: cannot list the tables at {endpoint}: {e}"))?;
        let mut names = BTreeMap::new();
        for table in tables {
            let prefix = format!("{app}-{stage}-{}Table", table.name);
            let found = existing
                .iter()
                .find(|n| **n == table.table_name)
                .or_else(|| existing.iter().find(|n| n.starts_with(&prefix)))
                .ok_or_else(|| {
                    format!(
                        "--aws: no table for {} at {endpoint}: expected one named {prefix}-… (deployed with `sst deploy --stage {stage}`?)",
                        table.name
                    )
                })?;
            names.insert(table.name.clone(), found.clone());
        }
        Ok(names)
    }
}

/// Points each linked table's `Resource.<Name>.name` at its table on AWS.
pub fn rename_tables(config: &mut Config, names: &BTreeMap<String, String>) {
    let routes = config
        .routes
        .iter_mut()
        .chain(config.authorizers.iter_mut().map(|a| &mut a.handler));
    for route in routes {
        for resource in &mut route.resources {
            if let Some(name) = names.get(&resource.name)
                && resource.properties["type"] == "sst.aws.Dynamo"
            {
                resource.properties["name"] = serde_json::Value::String(name.clone());
            }
        }
    }
}
