//! The real binary as operators run it: SIGTERM while RPCs are in flight
//! ends with exit code 0 and an audit event for every answered RPC; SIGKILL
//! under load loses no answered RPC and leaves a chain that verifies.

use std::process::Stdio;
use std::time::Duration;

use account_link_service::emulator::{Emulator, Fault, FaultKind};
use account_link_service::proto::pb;
use account_link_service::proto::pb::account_link_service_client::AccountLinkServiceClient;

use account_link_service::store::AnyStore;

use crate::helpers::{fresh_database_url, rows_as_text};

/// A loopback port free at the time of asking (bound, then released).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `serve --dev` on `url` and `port` against `emulator`.
fn spawn_server(url: &str, port: u16, emulator_url: &str) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_account-link-service"))
        .args([
            "serve",
            "--dev",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--metrics-listen",
            "127.0.0.1:0",
            "--database-url",
            url,
            "--aws-endpoint-url",
            emulator_url,
            "--aws-max-attempts",
            "1",
            "--upstream-rate-per-sec",
            "10000",
            "--upstream-burst",
            "10000",
        ])
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// A client of the server process `child` once it listens on `port`.
pub(crate) async fn connect_when_listening(
    child: &mut tokio::process::Child,
    port: u16,
) -> AccountLinkServiceClient<tonic::transport::Channel> {
    let endpoint = format!("http://127.0.0.1:{port}");
    loop {
        match AccountLinkServiceClient::connect(endpoint.clone()).await {
            Ok(c) => return c,
            Err(_) => {
                assert!(
                    child.try_wait().unwrap().is_none(),
                    "the server exited early"
                );
                tokio::task::yield_now().await;
            }
        }
    }
}

#[tokio::test]
async fn sigterm_drains_in_flight_rpcs_audits_them_and_exits_zero() {
    let emulator = Emulator::new().spawn().await.unwrap();
    emulator
        .emulator()
        .inject_fault(Fault::new(FaultKind::Latency { millis: 700 }, 8));
    let url = fresh_database_url();
    let port = free_port();
    let mut child = spawn_server(&url, port, &emulator.endpoint_url());

    // Connect once the server listens.
    let client = connect_when_listening(&mut child, port).await;
    let mut rpcs = Vec::new();
    for i in 0..8 {
        let mut client = client.clone();
        rpcs.push(tokio::spawn(async move {
            let mut request = tonic::Request::new(pb::CreateAccountLinkInvitationRequest {
                account_id: "111111111111".into(),
                target_account_id: format!("6666666666{i:02}"),
                client_token: format!("drain-{i}"),
            });
            request
                .metadata_mut()
                .insert("x-request-id", format!("drain-{i}").parse().unwrap());
            client.create_account_link_invitation(request).await
        }));
    }
    // Every RPC is upstream (held by the latency fault) before SIGTERM.
    while emulator.emulator().calls().len() < 8 {
        tokio::task::yield_now().await;
    }
    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());

    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits")
        .unwrap();
    assert_eq!(status.code(), Some(0), "clean exit");
    let mut answered = Vec::new();
    for (i, rpc) in rpcs.into_iter().enumerate() {
        if rpc.await.unwrap().is_ok() {
            answered.push(format!("drain-{i}"));
        }
    }
    assert_eq!(answered.len(), 8, "in-flight rpcs finish during the drain");
    let store = AnyStore::connect(&url, 2).await.unwrap();
    let mut audited: Vec<String> = crate::helpers::audit_events_of(&store)
        .await
        .into_iter()
        .map(|e| e.request_id)
        .collect();
    audited.sort();
    assert_eq!(audited, answered, "every answered rpc has its audit event");
}

#[tokio::test]
async fn no_secret_reaches_the_logs_or_the_audit_trail() {
    const BEARER: &str = "bearer-secret-7f3a9c";
    const WRONG_BEARER: &str = "wrong-bearer-secret-91bd";
    const AWS_SECRET: &str = "aws-secret-access-key-5e2d";
    const CLIENT_TOKEN: &str = "client-token-secret-c4e1";
    let emulator = Emulator::new().spawn().await.unwrap();
    let config = crate::helpers::write_temp(
        "config.toml",
        format!(
            "[[accounts]]\naccount_id = \"111111111111\"\nrole_arn = \"arn:aws:iam::111111111111:role/linker\"\n\
             [[auth.tokens]]\nprincipal = \"alice\"\nsha256 = \"{}\"\n\
             [[policy]]\nprincipal = \"alice\"\nmethods = [\"*\"]\naccounts = [\"*\"]\n",
            crate::helpers::sha256_hex(BEARER)
        )
        .as_bytes(),
    );
    let url = fresh_database_url();
    let port = free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_account-link-service"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .args([
            "--database-url",
            &url,
            "--aws-endpoint-url",
            &emulator.endpoint_url(),
        ])
        .arg("--config")
        .arg(&config)
        .env("AWS_ACCESS_KEY_ID", "000000000000")
        .env("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
        .env("AWS_REGION", "us-east-1")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Drain stderr while the server runs, or a full pipe would block it.
    let mut stderr = child.stderr.take().unwrap();
    let logs = tokio::spawn(async move {
        let mut buf = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut stderr, &mut buf)
            .await
            .unwrap();
        buf
    });
    let mut client = connect_when_listening(&mut child, port).await;
    let create = || pb::CreateAccountLinkInvitationRequest {
        account_id: "111111111111".into(),
        target_account_id: "222222222222".into(),
        client_token: CLIENT_TOKEN.into(),
    };
    client
        .create_account_link_invitation(crate::helpers::bearer(create(), BEARER))
        .await
        .expect("alice creates through the assumed role");
    client
        .create_account_link_invitation(crate::helpers::bearer(create(), WRONG_BEARER))
        .await
        .unwrap_err();
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let logs = logs.await.unwrap();
    let logs = String::from_utf8_lossy(&logs);
    assert!(logs.contains("rpc answered"), "debug logs were captured");
    let store = AnyStore::connect(&url, 2).await.unwrap();
    let audit = rows_as_text(&store, "audit_event").await;
    assert_eq!(audit.len(), 2);
    let records = rows_as_text(&store, "client_token_record").await;
    for secret in [BEARER, WRONG_BEARER, AWS_SECRET, CLIENT_TOKEN] {
        assert!(!logs.contains(secret), "{secret} in the logs");
        assert!(
            !audit.iter().chain(&records).any(|row| row.contains(secret)),
            "{secret} in the database"
        );
    }
}

/// A crash (SIGKILL, no drain) under load loses nothing that was answered:
/// every RPC answered OK has its audit event, the chain verifies, and after
/// a restart on the same database a retry of each answered client token
/// replays the same link without a new AWS call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_answered_rpc_and_the_chain_verifies() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use account_link_service::audit;
    use account_link_service::store::DEFAULT_CHAIN;

    let emulator = Emulator::new().spawn().await.unwrap();
    let url = fresh_database_url();
    let port = free_port();
    let mut child = spawn_server(&url, port, &emulator.endpoint_url());
    let client = connect_when_listening(&mut child, port).await;
    let answered = Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let request = |w: u64, n: u64| pb::CreateAccountLinkInvitationRequest {
        account_id: "111111111111".into(),
        target_account_id: format!("{:012}", 700_000_000_000 + w * 100_000 + n),
        client_token: format!("crash-{w}-{n}"),
    };
    let mut workers = Vec::new();
    for w in 0..4_u64 {
        let (mut client, answered, stop) = (client.clone(), answered.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            for n in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let mut call = tonic::Request::new(request(w, n));
                call.metadata_mut()
                    .insert("x-request-id", format!("crash-{w}-{n}").parse().unwrap());
                match client.create_account_link_invitation(call).await {
                    Ok(reply) => {
                        let link = reply.into_inner().account_link.unwrap().account_link_id;
                        answered
                            .lock()
                            .unwrap()
                            .push((format!("crash-{w}-{n}"), link));
                    }
                    // The connection died with the server.
                    Err(_) => break,
                }
            }
        }));
    }
    // Fails, rather than hangs, if the server stops answering early.
    tokio::time::timeout(Duration::from_secs(60), async {
        while answered.lock().unwrap().len() < 60 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("60 answers before the crash");
    let pid = child.id().expect("running").to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap()
            .success()
    );
    child.wait().await.unwrap();
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    let answered = answered.lock().unwrap().clone();

    // Every answered RPC was audited before it was answered, and the chain
    // the crash interrupted still verifies.
    let store = AnyStore::connect(&url, 2).await.unwrap();
    let audited: std::collections::HashSet<String> = crate::helpers::audit_events_of(&store)
        .await
        .into_iter()
        .map(|e| e.request_id)
        .collect();
    for (id, _) in &answered {
        assert!(audited.contains(id), "{id} was answered but not audited");
    }
    let report = audit::verify(&store, DEFAULT_CHAIN, None, None)
        .await
        .unwrap()
        .expect("the chain verifies after a crash");
    assert!(report.count >= u64::try_from(answered.len()).unwrap());

    // After a restart, each answered token replays its link, with no new
    // AWS call.
    let mut child = spawn_server(&url, port, &emulator.endpoint_url());
    let mut client = connect_when_listening(&mut child, port).await;
    let calls_before = emulator.emulator().calls().len();
    for (token, link) in &answered {
        let (w, n) = token
            .strip_prefix("crash-")
            .and_then(|s| s.split_once('-'))
            .unwrap();
        let reply = client
            .create_account_link_invitation(request(w.parse().unwrap(), n.parse().unwrap()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            &reply.account_link.unwrap().account_link_id,
            link,
            "{token}"
        );
    }
    assert_eq!(emulator.emulator().calls().len(), calls_before);
}
