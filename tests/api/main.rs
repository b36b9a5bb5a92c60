//! End-to-end tests: the real server over a socket, the real SDK over HTTP
//! to the emulator, a real PostgreSQL (one database per test).

mod audit;
mod boto3;
mod client_token;
mod errors;
mod helpers;
mod lifecycle;
mod service;
mod store;
mod validation;
