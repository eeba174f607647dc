//! wsgate: a self-hosted WebSocket API gateway that behaves like Amazon API
//! Gateway WebSocket APIs and takes the app definition of SST's
//! `ApiGatewayWebSocket` component.

pub mod access_log;
pub mod admin;
pub mod api;
pub mod app;
pub mod auth;
pub mod cloudformation;
pub mod cluster;
pub mod config;
pub mod domain;
pub mod events;
pub mod gateway;
pub mod ids;
pub mod integrations;
pub mod listen;
pub mod local_ca;
pub mod management;
pub mod memory;
pub mod process;
pub mod reload;
pub mod resources;
pub mod services;
pub mod sst;
pub mod state_dir;
pub mod toolchain;

pub use api::{BuildError, RouteOptions, Server, WebSocketApi};
pub use auth::keyring::Credentials;
pub use auth::policy::{Allow, Policy};
pub use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
pub use config::BinaryMode;
pub use config::Outputs;
pub use gateway::ConnectAuth;
pub use gateway::limits::Limits;
pub use gateway::registry::{ConnectionInfo, Connections, PushError};
pub use integrations::native::{BoxError, handler_fn};
pub use integrations::{Context, Integration, IntegrationError, Response};
