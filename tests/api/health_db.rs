//! Health tells the truth: SERVING only while PostgreSQL answers. The tests
//! put a TCP proxy they control between the service and PostgreSQL and cut
//! it, then restore it, watching `grpc.health.v1.Health/Watch` (no polling)
//! and the `accountlink_health_serving` gauge that alerting reads.
//! While health says the database is gone, calls fail fast; after it comes
//! back, the completer audits the changes that reached AWS meanwhile
//! without any caller retry (issue 11).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use account_link_service::proto::pb;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use account_link_service::config::ServeArgs;
use account_link_service::emulator::{Fault, FaultKind};
use tonic_types::StatusExt;

use crate::helpers::{SOURCE, TARGET, TestApp, reason, spawn_app_with, wait_for_audit};
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
            "postgres://postgres@{proxy_addr}/{}",
            crate::test_database::fresh_database_name()
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

/// A service whose database is behind `proxy`, probed every 100 ms.
async fn app_behind(proxy: &Proxy, configure: impl FnOnce(&mut ServeArgs)) -> TestApp {
    let proxy_addr = proxy.addr;
    spawn_app_with(|args| {
        args.database.database_url = Some(format!(
            "postgres://postgres@{proxy_addr}/{}",
            crate::test_database::fresh_database_name()
        ));
        args.health_probe_interval_ms = 100;
        configure(args);
    })
    .await
}

/// `grpc.health.v1.Health/Watch` of the API service: the next status.
async fn watch_health(app: &TestApp) -> tonic::Streaming<tonic_health::pb::HealthCheckResponse> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
        .watch(HealthCheckRequest {
            service: "accountlink.v1.AccountLinkService".into(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn next_status(updates: &mut tonic::Streaming<tonic_health::pb::HealthCheckResponse>) -> i32 {
    updates.next().await.expect("an update").expect("ok").status
}

#[tokio::test]
async fn while_health_says_the_database_is_gone_calls_fail_fast_before_any_aws_call() {
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let app = app_behind(&proxy, |_| {}).await;
    let mut updates = watch_health(&app).await;
    assert_eq!(next_status(&mut updates).await, 1, "SERVING at first");

    proxy.set_cut(true);
    assert_eq!(next_status(&mut updates).await, 2, "NOT_SERVING");
    for call in ["create", "list"] {
        let started = Instant::now();
        let err = match call {
            "create" => app.create(SOURCE, TARGET, "fail-fast").await.map(drop),
            _ => app.list(SOURCE, &[], 0, "").await.map(drop),
        }
        .unwrap_err();
        let waited = started.elapsed();
        assert_eq!(err.code(), Code::Unavailable, "{call}: {err:?}");
        assert_eq!(reason(&err), "DATABASE_UNAVAILABLE");
        let details = err.check_error_details().unwrap();
        assert!(details.retry_info().is_some(), "{call}: RetryInfo");
        assert!(err.metadata().get("x-request-id").is_some());
        // Not the pool's 5 s acquire timeout.
        assert!(waited < Duration::from_secs(1), "{call} waited {waited:?}");
    }
    assert!(
        app.calls().is_empty(),
        "no AWS call while the database is gone"
    );

    proxy.set_cut(false);
    assert_eq!(next_status(&mut updates).await, 1, "SERVING again");
    app.create(SOURCE, TARGET, "fail-fast")
        .await
        .expect("calls work again");
    assert_eq!(app.calls().len(), 1);
}

#[tokio::test]
async fn a_change_that_reached_aws_before_an_outage_is_audited_by_the_completer_without_a_retry() {
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let app = app_behind(&proxy, |args| {
        args.upstream_timeout_secs = 1;
        args.client_token_lease_secs = 2;
        args.completer_interval_ms = 100;
        args.completer_rate_per_sec = 100;
    })
    .await;
    app.emu().inject_fault(
        Fault::new(FaultKind::Latency { millis: 500 }, 1).only_for("CreateAccountLinkInvitation"),
    );
    let client = app.client.clone();
    let create = tokio::spawn(async move {
        client
            .clone()
            .create_account_link_invitation(pb::CreateAccountLinkInvitationRequest {
                account_id: SOURCE.into(),
                target_account_id: TARGET.into(),
                client_token: "outage".into(),
            })
            .await
    });
    // The AWS call has started (the emulator logs it on arrival; it lands
    // 500 ms later): now the database goes away.
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.calls().is_empty() {
        assert!(Instant::now() < deadline, "the create never reached AWS");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    proxy.set_cut(true);
    let err = create.await.unwrap().unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert_eq!(reason(&err), "DATABASE_UNAVAILABLE");
    let links = app.emu().links();
    assert_eq!(links.len(), 1, "the change reached AWS");

    proxy.set_cut(false);
    // No caller retries. The record's lease (2 s) runs out, the completer
    // re-drives it and writes the audit event.
    let recovered = wait_for_audit(&app, Duration::from_secs(30), |e| {
        e.method == "CreateAccountLinkInvitation" && e.grpc_code == "OK"
    })
    .await;
    assert_eq!(recovered.principal, "system:completer");
    assert_eq!(recovered.idempotency_outcome, "recovered");
    assert_eq!(
        recovered.response_elements.as_ref().unwrap()["AccountLink"]["AccountLinkId"],
        links[0].account_link_id.as_str(),
        "the audit event names the link made at AWS"
    );
    assert_eq!(
        app.emu().links().len(),
        1,
        "the re-drive applied nothing twice"
    );
    let tokens: Vec<_> = app.calls().into_iter().map(|c| c.client_token).collect();
    assert_eq!(tokens.len(), 2, "one re-drive");
    assert_eq!(tokens[0], tokens[1], "with the same upstream ClientToken");
    let state =
        crate::helpers::fetch_text(&app.store, "select state from client_token_record", None).await;
    assert_eq!(state, "completed");
}

/// The fault run of issue 11, as a test (40 s, so run on demand:
/// `cargo nextest run --test api_postgres --run-ignored only --no-capture
/// -E 'test(outage_under_load)'`): 4 clients create invitations for 40 s
/// while PostgreSQL goes away twice for 5 s; no client retries anything.
/// Prints the answers by code, then waits for the completer and asserts
/// that every link made at AWS has its audit event.
#[tokio::test]
#[ignore = "a 40 s fault run"]
async fn outage_under_load_leaves_no_aws_change_unaudited() {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let app = app_behind(&proxy, |args| {
        args.upstream_timeout_secs = 2;
        args.client_token_lease_secs = 5;
        args.completer_interval_ms = 500;
        args.completer_rate_per_sec = 50;
    })
    .await;
    // Every AWS call takes 50 ms, so outages catch calls in flight.
    app.emu().inject_fault(
        Fault::new(FaultKind::Latency { millis: 50 }, 1_000_000)
            .only_for("CreateAccountLinkInvitation"),
    );
    let answers: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let started = Instant::now();
    let run = Duration::from_secs(40);
    let clients: Vec<_> = (0..4u64)
        .map(|c| {
            let client = app.client.clone();
            let answers = Arc::clone(&answers);
            tokio::spawn(async move {
                let mut n = 0u64;
                while started.elapsed() < run {
                    n += 1;
                    let answer = client
                        .clone()
                        .create_account_link_invitation(pb::CreateAccountLinkInvitationRequest {
                            account_id: SOURCE.into(),
                            target_account_id: format!("{}", 200_000_000_000 + c * 10_000_000 + n),
                            client_token: uuid::Uuid::new_v4().to_string(),
                        })
                        .await;
                    let key = match answer {
                        Ok(_) => "OK".to_owned(),
                        Err(e) => {
                            let why = e
                                .check_error_details()
                                .ok()
                                .and_then(|d| d.error_info().map(|i| i.reason.clone()))
                                .unwrap_or_default();
                            format!("{:?} {why}", e.code())
                        }
                    };
                    *answers.lock().unwrap().entry(key).or_default() += 1;
                }
            })
        })
        .collect();
    for (at, cut) in [(10, true), (15, false), (25, true), (30, false)] {
        tokio::time::sleep_until((started + Duration::from_secs(at)).into()).await;
        proxy.set_cut(cut);
    }
    for client in clients {
        client.await.unwrap();
    }
    let answers = answers.lock().unwrap().clone();
    let links = app.emu().links();
    println!("answers by code: {answers:?}");
    println!("AWS-side changes (links made): {}", links.len());
    // No caller retries: the completer must audit what reached AWS.
    let deadline = Instant::now() + Duration::from_secs(60);
    let unaudited = loop {
        let events = crate::helpers::audit_events_of(&app.store).await;
        let audited: std::collections::HashSet<String> = events
            .iter()
            .filter(|e| e.method == "CreateAccountLinkInvitation" && e.grpc_code == "OK")
            .filter_map(|e| {
                e.response_elements.as_ref()?["AccountLink"]["AccountLinkId"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect();
        let unaudited = links
            .iter()
            .filter(|l| !audited.contains(&l.account_link_id))
            .count();
        if unaudited == 0 || Instant::now() > deadline {
            let recovered = events
                .iter()
                .filter(|e| e.idempotency_outcome == "recovered")
                .count();
            println!(
                "audit events: {}, recovered by the completer: {recovered}",
                events.len()
            );
            break unaudited;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    println!("AWS-side changes without an audit event after recovery: {unaudited}");
    assert_eq!(unaudited, 0);
}
