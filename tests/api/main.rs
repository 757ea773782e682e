//! Integration tests: real PostgreSQL (started by scripts/test), real gRPC over sockets.

mod admission;
mod auth;
mod bulk_stream;
mod calendars;
mod cluster;
mod crash;
mod customer_months;
mod faults;
mod flood;
mod helpers;
mod http;
mod http2;
mod http_agreement;
mod import;
mod interaction_metrics;
mod interaction_reference;
mod interaction_rollups;
mod listing;
mod metrics;
mod metrics_reference;
mod reads;
mod records;
mod rollups;
mod server;
mod tls;
mod validation;
