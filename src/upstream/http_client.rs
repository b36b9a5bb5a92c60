//! [`PooledHttpClient`]: the one HTTP client every SDK client and credentials provider of
//! [`super::SdkUpstream`] shares, so that every acting account reuses one pool of
//! connections.
//!
//! Without it each `aws_sdk_workspaces::Client` gets its own default HTTP client (the
//! `default_http_client_plugin` of `aws-smithy-runtime` builds one per client), hence its own
//! hyper connection pool: one set of connections per acting account.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Connector, ConnectorBuilder};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

/// The connector settings a pool is built for: (connect timeout, read timeout).
type PoolKey = (Option<Duration>, Option<Duration>);

/// An [`HttpClient`] that builds one connector, hence one hyper connection pool, per
/// distinct connector settings and hands it to every SDK client that asks.
///
/// The connector is the one the SDK builds by default (`aws-smithy-runtime`
/// `default_https_client`, behavior version >= 2025-08-07): hyper 1.x with rustls over aws-lc,
/// `TCP_NODELAY`, and the proxy named by `HTTP_PROXY` / `HTTPS_PROXY` / `NO_PROXY`. Every
/// SDK client of [`super::SdkUpstream`] has the same timeouts, so they all share one pool;
/// a credentials provider with other timeouts (STS) gets a second one. The lookup per
/// request is a read lock and an `Arc` clone.
#[derive(Debug, Default)]
pub(super) struct PooledHttpClient {
    pools: RwLock<HashMap<PoolKey, SharedHttpConnector>>,
}

impl PooledHttpClient {
    /// A new client with no pool yet, ready for `ConfigLoader::http_client`.
    pub(super) fn shared() -> SharedHttpClient {
        SharedHttpClient::new(Self::default())
    }

    fn connector(settings: &HttpConnectorSettings, components: &RuntimeComponents) -> Connector {
        let mut builder = ConnectorBuilder::default()
            .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
            .proxy_config(ProxyConfig::from_env());
        builder.set_connector_settings(Some(settings.clone()));
        builder.set_sleep_impl(components.sleep_impl());
        builder.build()
    }
}

impl HttpClient for PooledHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        if let Some(pool) = self
            .pools
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return pool.clone();
        }
        let mut pools = self.pools.write().unwrap_or_else(PoisonError::into_inner);
        pools
            .entry(key)
            .or_insert_with(|| SharedHttpConnector::new(Self::connector(settings, components)))
            .clone()
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        Some(ConnectorMetadata::new("hyper", Some("1.x".into())))
    }
}
