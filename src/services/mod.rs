//! Local AWS services an app's components need, run as child processes
//! (process trees, like function instances): `dynamodb` for
//! `sst.aws.Dynamo` tables; `runtime_sdk`, the AWS SDK Lambda's runtimes
//! provide, as a cached install.

pub mod dynamodb;
pub mod guard;
pub mod hybrid;
pub mod lambda;
pub mod runtime_sdk;
