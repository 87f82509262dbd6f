//! `auth-server`: a thin HTTP and command-line shell over `auth-core`.
//!
//! The server parses requests into core types, asks the core, and renders the answer; no policy
//! lives here.
//!
//! # Layout
//! - [`config`]: environment, `.env` and flags, validated into a [`Config`].
//! - [`app`]: the shared [`App`] state, and opening the store and the token hashing key.
//! - [`serve`]: the accept loop, the background tasks, and a shutdown that drains connections
//!   and the access log.
//! - [`http`]: routing and one module per endpoint family (`flussonic` for `/auth`, `health`),
//!   with one adapter per media server (`flussonic`, `nginx_rtmp`, `nginx_auth`, `mediamtx`,
//!   `srs`) over the decision path they share (`hook`).
//! - [`control`]: pushing a cut to the media server holding the session (one file per server).
//! - [`metrics`]: the Prometheus metrics, counted with atomics, scraped at `/metrics`.
//! - [`cli`]: the shell commands (`token ...`, `seed`).
//! - [`shutdown`]: waiting for SIGINT / SIGTERM.
//! - [`ticketing`]: the keys and limits the event-ticket endpoints and commands share.
//! - [`signing`]: signed tokens: the key ring from the store, kept current, and minting.
//! - [`webhooks`]: delivering the store's outbox of webhook messages, signed; `access.denied`.

pub mod app;
pub mod cli;
pub mod config;
pub mod control;
pub mod http;
pub mod metrics;
pub mod serve;
pub mod shutdown;
pub mod signing;
pub mod ticketing;
pub mod webhooks;

pub use app::{open_store, App};
pub use config::{Config, Database, FailMode};
pub use serve::RunningServer;
