//! The app definition: `wsgate.toml` (`toml`) and the types both front
//! doors produce (`definition`), with the checks they share (`validate`)
//! and SST's units (`units`); `key_lines` finds a key's own line. `sst.config.ts` is loaded by `crate::sst`
//! into the same types.

mod definition;
mod key_lines;
mod toml;
mod units;
pub mod validate;

pub use definition::*;
pub use toml::{check_nats_urls, load, load_without_secrets, parse};
pub use units::{Retention, parse_duration, parse_retention, parse_size};
pub use validate::{DEFAULT_REGION, check_handler_path, check_node_name, parse_identity_source};

#[cfg(test)]
mod tests;
