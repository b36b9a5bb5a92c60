//! Health tells the truth: SERVING only while PostgreSQL answers. The test
//! puts a TCP proxy it controls between the service and PostgreSQL and cuts
//! it, then restores it, watching `grpc.health.v1.Health/Watch` (no polling)
//! and the `accountlink_health_serving` gauge that alerting reads.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::{SOURCE, reason, spawn_app_with};
use crate::limits::{sample, scrape};

/// A loopback TCP proxy to PostgreSQL that the test can cut and restore.
struct Proxy {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, _) = watch::channel(false);
        let cut_rx = cut.subscribe();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let mut cut = cut_rx.clone();
                if *cut.borrow() {
                    continue; // dropped: the connection is refused
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.wait_for(|c| *c) => {} // both ends dropped
                    }
                });
            }
        });
        Self { addr, cut }
    }

    fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

#[tokio::test]
async fn health_follows_the_database_and_calls_fail_unavailable_while_it_is_gone() {
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let proxy_addr = proxy.addr;
    let app = spawn_app_with(|args| {
        args.database.database_url = Some(format!(
            "postgres://postgres@{proxy_addr}/test_{}",
            uuid::Uuid::new_v4().simple()
        ));
        args.health_probe_interval_ms = 100;
    })
    .await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    let mut updates = health
        .watch(HealthCheckRequest {
            service: "accountlink.v1.AccountLinkService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut next = async || updates.next().await.expect("an update").expect("ok").status;
    // The gauge is set before the health service reports a change.
    let serving = async || sample(&scrape(&app).await, "accountlink_health_serving", &[]);
    assert_eq!(next().await, 1, "SERVING at first");
    assert_eq!(serving().await, 1.0);

    proxy.set_cut(true);
    assert_eq!(next().await, 2, "NOT_SERVING once the database is gone");
    assert_eq!(serving().await, 0.0, "the gauge follows health");
    let err = app.list(SOURCE, &[], 0, "").await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert_eq!(reason(&err), "DATABASE_UNAVAILABLE");

    proxy.set_cut(false);
    assert_eq!(next().await, 1, "SERVING again when it returns");
    assert_eq!(serving().await, 1.0);
    app.list(SOURCE, &[], 0, "")
        .await
        .expect("calls work again");
}
