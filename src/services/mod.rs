//! Local AWS services an app's components need, run as child processes
//! (process trees, like function instances): `dynamodb` for
//! `sst.aws.Dynamo` tables.

pub mod dynamodb;
pub mod hybrid;
pub mod lambda;
