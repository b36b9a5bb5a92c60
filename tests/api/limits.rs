//! Upstream protection: the local per-account token bucket.

use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{OTHER, SOURCE, reason, spawn_app_with};

#[tokio::test]
async fn dev_with_the_in_process_emulator_is_not_throttled_by_the_production_default() {
    // `serve --dev` as a newcomer runs it: the in-process emulator, no
    // rate-limit flags.
    let app = spawn_app_with(|args| {
        args.aws_endpoint_url = None;
        args.upstream_rate_per_sec = None;
        args.upstream_burst = None;
    })
    .await;
    // Three times the production burst (10), as fast as the client goes.
    for i in 0..30 {
        app.list(SOURCE, &[], 0, "")
            .await
            .unwrap_or_else(|e| panic!("call {i}: {e:?}"));
    }
    assert!(app.calls().is_empty(), "served by the in-process emulator");
}

#[tokio::test]
async fn the_local_rate_limit_refuses_without_calling_aws_and_is_per_account() {
    let app = spawn_app_with(|args| {
        args.upstream_rate_per_sec = Some(1);
        args.upstream_burst = Some(2);
    })
    .await;
    app.list(SOURCE, &[], 0, "").await.unwrap();
    app.list(SOURCE, &[], 0, "").await.unwrap();
    let err = app.list(SOURCE, &[], 0, "").await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(reason(&err), "LOCAL_RATE_LIMITED");
    let delay = err
        .check_error_details()
        .unwrap()
        .retry_info()
        .and_then(|r| r.retry_delay);
    assert!(
        delay.is_some_and(|d| d <= std::time::Duration::from_secs(1)),
        "{delay:?}"
    );
    assert_eq!(app.calls().len(), 2, "the refused call never reached AWS");
    // Another account has its own bucket.
    app.list(OTHER, &[], 0, "").await.expect("other account");
    let events = app.audit_events().await;
    assert_eq!(events.len(), 4, "the refusal is audited");
    assert_eq!(
        events[2].error_reason.as_deref(),
        Some("LOCAL_RATE_LIMITED")
    );
    assert_eq!(events[2].upstream_attempts, 0);
}

use account_link_service::emulator::{Fault, FaultKind};
use std::collections::BTreeMap;

/// One sample of a Prometheus text exposition: the value of `name` whose
/// labels include `labels` (0 when absent).
pub(crate) fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (metric, value) = line.rsplit_once(' ')?;
            let (metric_name, label_text) = match metric.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (metric, ""),
            };
            if metric_name != name {
                return None;
            }
            let found: BTreeMap<&str, &str> = label_text
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k, v.trim_matches('"')))
                .collect();
            labels
                .iter()
                .all(|(k, v)| found.get(k) == Some(v))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// One scrape of `app`'s `/metrics`.
pub(crate) async fn scrape(app: &crate::helpers::TestApp) -> String {
    let stream = tokio::net::TcpStream::connect(app.metrics_addr)
        .await
        .unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let request = http::Request::get("/metrics")
        .header("host", "metrics")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    use http_body_util::BodyExt;
    String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap()
}

#[tokio::test]
async fn metrics_count_exactly_what_was_sent() {
    let app = crate::helpers::spawn_app().await;
    let before = scrape(&app).await;
    for _ in 0..3 {
        app.list(SOURCE, &[], 0, "").await.unwrap();
    }
    for _ in 0..2 {
        app.get(SOURCE, "bad").await.unwrap_err();
    }
    app.create(SOURCE, "222222222222", "metrics-1")
        .await
        .unwrap();
    app.create(SOURCE, "222222222222", "metrics-1")
        .await
        .unwrap();
    let after = scrape(&app).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };

    assert_eq!(
        delta(
            "accountlink_rpc_requests_total",
            &[("method", "ListAccountLinks"), ("code", "OK")]
        ),
        3.0
    );
    assert_eq!(
        delta(
            "accountlink_rpc_requests_total",
            &[("method", "GetAccountLink"), ("code", "INVALID_ARGUMENT")]
        ),
        2.0
    );
    assert_eq!(
        delta(
            "accountlink_rpc_requests_total",
            &[("method", "CreateAccountLinkInvitation"), ("code", "OK")]
        ),
        2.0
    );
    assert_eq!(
        delta(
            "accountlink_rpc_duration_seconds_count",
            &[("method", "ListAccountLinks")]
        ),
        3.0
    );
    assert_eq!(
        delta(
            "accountlink_upstream_requests_total",
            &[
                ("operation", "ListAccountLinks"),
                ("aws_error_code", "none")
            ]
        ),
        3.0
    );
    assert_eq!(
        delta(
            "accountlink_upstream_requests_total",
            &[("operation", "CreateAccountLinkInvitation")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "accountlink_idempotency_outcomes_total",
            &[("outcome", "new")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "accountlink_idempotency_outcomes_total",
            &[("outcome", "replayed")]
        ),
        1.0
    );
    assert_eq!(
        delta("accountlink_audit_write_duration_seconds_count", &[]),
        7.0,
        "one audit write per rpc"
    );
    assert!(
        after.contains("# TYPE accountlink_rpc_duration_seconds histogram"),
        "{after}"
    );
    assert!(after.contains("accountlink_rpc_in_flight"), "{after}");
    // The store's transactions waited for connections, and every wait ended.
    assert!(
        after.contains(r#"accountlink_db_pool_connections{state="waiting"}"#),
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            "accountlink_db_pool_connections",
            &[("state", "waiting")]
        ),
        0.0
    );
}

#[tokio::test]
async fn past_the_in_flight_limit_rpcs_are_shed_at_once() {
    let app = spawn_app_with(|args| args.max_in_flight = 2).await;
    app.emu()
        .inject_fault(Fault::new(FaultKind::Latency { millis: 600 }, 2));
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut client = app.client.clone();
        held.push(tokio::spawn(async move {
            client
                .list_account_links(account_link_service::proto::pb::ListAccountLinksRequest {
                    account_id: SOURCE.into(),
                    ..Default::default()
                })
                .await
        }));
    }
    while app.calls().len() < 2 {
        tokio::task::yield_now().await;
    }
    let err = app.list(SOURCE, &[], 0, "").await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(reason(&err), "OVERLOADED");
    assert!(err.check_error_details().unwrap().retry_info().is_some());
    // Health is never shed.
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health answers under load");
    for h in held {
        h.await.unwrap().expect("the admitted rpcs finish");
    }
    app.list(SOURCE, &[], 0, "")
        .await
        .expect("capacity is back");
}

#[tokio::test]
async fn the_deadline_bounds_the_aws_call_and_leaves_the_token_retryable() {
    let mut app = spawn_app_with(|args| args.rpc_timeout_ms = 200).await;
    app.emu()
        .inject_fault(Fault::new(FaultKind::Latency { millis: 1_500 }, 1));
    let err = app
        .create(SOURCE, "222222222222", "deadline-1")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert_eq!(reason(&err), "DEADLINE_EXCEEDED");
    let state =
        crate::helpers::fetch_text(&app.store, "select state from client_token_record", None).await;
    assert_eq!(state, "retryable");
    let events = app.audit_events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].grpc_code, "DEADLINE_EXCEEDED");
    // The abandoned AWS call still lands; the retry with the same token is
    // the same AWS request, so there is still exactly one link.
    while app.emu().links().is_empty() {
        tokio::task::yield_now().await;
    }
    let retried = app
        .create(SOURCE, "222222222222", "deadline-1")
        .await
        .expect("the retry succeeds");
    assert_eq!(app.emu().links().len(), 1);
    assert_eq!(
        retried.account_link.unwrap().account_link_id,
        app.emu().links()[0].account_link_id
    );
    app.stop().await.unwrap();
}
