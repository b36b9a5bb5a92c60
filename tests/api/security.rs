//! Authentication, policy, principal isolation, acting accounts through
//! assumed roles, and mTLS (DESIGN §8, §11).

use account_link_service::proto::pb;
use account_link_service::proto::pb::account_link_service_client::AccountLinkServiceClient;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::{
    SOURCE, TARGET, TestApp, bearer, operations, reason, sha256_hex, spawn_app_with, write_temp,
};

const ROLE_111: &str = "arn:aws:iam::111111111111:role/workspaces-linker";
const ROLE_222: &str = "arn:aws:iam::222222222222:role/workspaces-linker";

fn config(protect_health: bool) -> String {
    format!(
        r#"
[[accounts]]
account_id = "111111111111"
role_arn = "{ROLE_111}"

[[accounts]]
account_id = "222222222222"
role_arn = "{ROLE_222}"
external_id = "ext-222"
session_name = "linker-test"

[auth]
protect_health_and_reflection = {protect_health}

[[auth.tokens]]
principal = "alice"
sha256 = "{alice}"

[[auth.tokens]]
principal = "bob"
sha256 = "{bob}"

[[auth.tokens]]
principal = "reader"
sha256 = "{reader}"

[[policy]]
principal = "alice"
methods = ["*"]
accounts = ["*"]

[[policy]]
principal = "bob"
methods = ["*"]
accounts = ["*"]

[[policy]]
principal = "reader"
methods = ["GetAccountLink", "ListAccountLinks"]
accounts = ["111111111111"]
"#,
        alice = sha256_hex("alice-token-s3cret"),
        bob = sha256_hex("bob-token-s3cret"),
        reader = sha256_hex("reader-token-s3cret"),
    )
}

/// A production-shaped app: no --dev, accounts through assumed roles (base
/// credentials: the emulator's static ones), bearer tokens and a policy.
async fn secured_app(protect_health: bool) -> TestApp {
    let path = write_temp("config.toml", config(protect_health).as_bytes());
    let app = spawn_app_with(|args| {
        args.dev = false;
        args.emulator_credentials = true;
        args.config = Some(path);
    })
    .await;
    app.emu().require_external_id(ROLE_222, "ext-222");
    app
}

fn create(account: &str, target: &str, token: &str) -> pb::CreateAccountLinkInvitationRequest {
    pb::CreateAccountLinkInvitationRequest {
        account_id: account.into(),
        target_account_id: target.into(),
        client_token: token.into(),
    }
}

fn list(account: &str) -> pb::ListAccountLinksRequest {
    pb::ListAccountLinksRequest {
        account_id: account.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn callers_need_a_valid_bearer_token_and_are_audited_either_way() {
    let app = secured_app(false).await;
    let mut client = app.client.clone();

    let err = client.list_account_links(list(SOURCE)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(reason(&err), "CREDENTIALS_MISSING");

    let err = client
        .list_account_links(bearer(list(SOURCE), "not-a-known-token"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(reason(&err), "INVALID_BEARER_TOKEN");
    assert!(
        !format!("{err:?}").contains("not-a-known-token"),
        "token echoed: {err:?}"
    );

    let ok = client
        .list_account_links(bearer(list(SOURCE), "alice-token-s3cret"))
        .await
        .expect("alice may list");
    assert!(ok.metadata().get("authorization").is_none());

    let events = app.audit_events().await;
    let who: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.principal.as_str(), e.grpc_code.as_str()))
        .collect();
    assert_eq!(
        who,
        [
            ("anonymous", "UNAUTHENTICATED"),
            ("anonymous", "UNAUTHENTICATED"),
            ("alice", "OK")
        ]
    );
    assert_eq!(
        operations(&app.calls())
            .iter()
            .filter(|o| *o == "ListAccountLinks")
            .count(),
        1
    );

    // No bearer token reaches the database.
    for token in ["alice-token-s3cret", "not-a-known-token"] {
        let rows = crate::helpers::rows_as_text(&app.store, "audit_event").await;
        assert!(!rows.is_empty());
        assert!(
            !rows.iter().any(|row| row.contains(token)),
            "{token} stored"
        );
    }
}

#[tokio::test]
async fn the_policy_decides_methods_and_acting_accounts_before_any_record_or_call() {
    let app = secured_app(false).await;
    let mut client = app.client.clone();
    let reader = "reader-token-s3cret";

    // A method the reader may not call.
    let err = client
        .create_account_link_invitation(bearer(create(SOURCE, TARGET, "r-1"), reader))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(reason(&err), "CALLER_NOT_ALLOWED");
    // An account the reader may not act as.
    let err = client
        .list_account_links(bearer(list(TARGET), reader))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(reason(&err), "CALLER_NOT_ALLOWED");
    // Allowed.
    client
        .list_account_links(bearer(list(SOURCE), reader))
        .await
        .expect("reader lists 111");

    let events = app.audit_events().await;
    let denied: Vec<(&str, Option<&str>)> = events
        .iter()
        .filter(|e| e.error_reason.as_deref() == Some("CALLER_NOT_ALLOWED"))
        .map(|e| (e.principal.as_str(), e.account_id.as_deref()))
        .collect();
    assert_eq!(denied, [("reader", Some(SOURCE)), ("reader", Some(TARGET))]);
    let records = crate::helpers::count(&app.store, "client_token_record").await;
    assert_eq!(records, 0, "no dedup record for a denied call");
    let workspaces_calls: Vec<String> = operations(&app.calls())
        .into_iter()
        .filter(|o| o != "AssumeRole")
        .collect();
    assert_eq!(workspaces_calls, ["ListAccountLinks"]);
}

#[tokio::test]
async fn two_principals_with_the_same_client_token_never_share_an_outcome() {
    let app = secured_app(false).await;
    let mut client = app.client.clone();
    let alice = client
        .create_account_link_invitation(bearer(
            create(SOURCE, TARGET, "same"),
            "alice-token-s3cret",
        ))
        .await
        .expect("alice invites");
    // Bob's identical request is his own: it reaches AWS, which refuses a
    // second invitation, instead of replaying Alice's answer.
    let bob = client
        .create_account_link_invitation(bearer(create(SOURCE, TARGET, "same"), "bob-token-s3cret"))
        .await
        .unwrap_err();
    assert_eq!(bob.code(), Code::AlreadyExists);
    assert!(alice.metadata().get("idempotent-replayed").is_none());
    let creates: Vec<_> = app
        .calls()
        .into_iter()
        .filter(|c| c.operation == "CreateAccountLinkInvitation")
        .collect();
    assert_eq!(creates.len(), 2);
    assert_ne!(
        creates[0].client_token, creates[1].client_token,
        "distinct upstream tokens"
    );
    // Each replays their own.
    let again = client
        .create_account_link_invitation(bearer(
            create(SOURCE, TARGET, "same"),
            "alice-token-s3cret",
        ))
        .await
        .unwrap();
    assert_eq!(again.get_ref(), alice.get_ref());
    let bob_again = client
        .create_account_link_invitation(bearer(create(SOURCE, TARGET, "same"), "bob-token-s3cret"))
        .await
        .unwrap_err();
    assert_eq!(bob_again.code(), Code::AlreadyExists);
    assert_eq!(
        bob_again.metadata().get("idempotent-replayed").unwrap(),
        "true"
    );
}

#[tokio::test]
async fn accounts_act_through_assumed_roles_and_unconfigured_ones_are_refused() {
    let app = secured_app(false).await;
    let mut client = app.client.clone();
    let alice = "alice-token-s3cret";
    let link = client
        .create_account_link_invitation(bearer(create(SOURCE, TARGET, ""), alice))
        .await
        .expect("create as 111 through its role")
        .into_inner()
        .account_link
        .unwrap();
    let accepted = client
        .accept_account_link_invitation(bearer(
            pb::AcceptAccountLinkInvitationRequest {
                account_id: TARGET.into(),
                link_id: link.account_link_id.clone(),
                client_token: String::new(),
            },
            alice,
        ))
        .await
        .expect("accept as 222 through its role (with its external id)")
        .into_inner()
        .account_link
        .unwrap();
    assert_eq!(
        accepted.account_link_status,
        pb::AccountLinkStatus::Linked as i32
    );
    let seen: Vec<(String, Option<String>)> = app
        .calls()
        .into_iter()
        .map(|c| (c.operation, c.account_id))
        .collect();
    let expect = |op: &str, acct: &str| (op.to_owned(), Some(acct.to_owned()));
    assert_eq!(
        seen,
        [
            expect("AssumeRole", SOURCE),
            expect("CreateAccountLinkInvitation", SOURCE),
            expect("AssumeRole", TARGET),
            expect("AcceptAccountLinkInvitation", TARGET),
        ]
    );

    let before = app.calls().len();
    let err = client
        .list_account_links(bearer(list("333333333333"), alice))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "ACCOUNT_NOT_CONFIGURED");
    assert_eq!(app.calls().len(), before, "no upstream call");
}

#[tokio::test]
async fn health_is_open_by_default_and_closed_when_configured() {
    let open = secured_app(false).await;
    let mut health = HealthClient::new(channel(&open).await);
    health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("open health");

    let closed = secured_app(true).await;
    let mut health = HealthClient::new(channel(&closed).await);
    let err = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    health
        .check(bearer(
            HealthCheckRequest {
                service: String::new(),
            },
            "reader-token-s3cret",
        ))
        .await
        .expect("with a token");
}

async fn channel(app: &TestApp) -> Channel {
    Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// A test PKI: a CA, a server certificate for localhost, and client
/// certificates signed by the CA or by a stranger.
struct Pki {
    ca_pem: String,
    server: (String, String),
    client: (String, String),
    stranger: (String, String),
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test ca");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf = |sans: Vec<SanType>, issuer: &Issuer<'_, KeyPair>| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = sans;
        let cert = params.signed_by(&key, issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let server = leaf(
        vec![SanType::DnsName("localhost".try_into().unwrap())],
        &issuer,
    );
    let client = leaf(
        vec![SanType::URI(
            "spiffe://test.example/ns/ci/sa/linker".try_into().unwrap(),
        )],
        &issuer,
    );

    let stranger_key = KeyPair::generate().unwrap();
    let mut stranger_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    stranger_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let stranger_issuer = Issuer::new(stranger_params, stranger_key);
    let stranger = leaf(
        vec![SanType::URI("spiffe://evil.example/x".try_into().unwrap())],
        &stranger_issuer,
    );
    Pki {
        ca_pem: ca_cert.pem(),
        server,
        client,
        stranger,
    }
}

async fn tls_client(
    app: &TestApp,
    ca: &str,
    identity: Option<&(String, String)>,
) -> Result<AccountLinkServiceClient<Channel>, tonic::transport::Error> {
    account_link_service::startup::install_crypto_provider();
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let channel = Channel::from_shared(format!("https://localhost:{}", app.addr.port()))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await?;
    Ok(AccountLinkServiceClient::new(channel))
}

#[tokio::test]
async fn mtls_takes_the_principal_from_the_client_certificate() {
    let pki = pki();
    let policy = r#"
[[policy]]
principal = "spiffe://test.example/ns/ci/sa/linker"
methods = ["ListAccountLinks"]
accounts = ["*"]
"#;
    let config = write_temp("config.toml", policy.as_bytes());
    let cert = write_temp("server.pem", pki.server.0.as_bytes());
    let key = write_temp("server.key", pki.server.1.as_bytes());
    let ca = write_temp("ca.pem", pki.ca_pem.as_bytes());
    let app = crate::helpers::spawn_app_tls(|args| {
        args.config = Some(config);
        args.tls_cert = Some(cert);
        args.tls_key = Some(key);
        args.tls_client_ca = Some(ca);
    })
    .await;

    let mut client = tls_client(&app, &pki.ca_pem, Some(&pki.client))
        .await
        .expect("handshake");
    client
        .list_account_links(list(SOURCE))
        .await
        .expect("the certificate's principal may list");
    let err = client
        .create_account_link_invitation(create(SOURCE, TARGET, ""))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::PermissionDenied,
        "policy applies to the certificate principal"
    );
    let events = app.audit_events().await;
    assert!(
        events
            .iter()
            .all(|e| e.principal == "spiffe://test.example/ns/ci/sa/linker"),
        "{events:#?}"
    );

    // A certificate from another CA, or none, does not get through the handshake.
    for identity in [Some(&pki.stranger), None] {
        let refused = match tls_client(&app, &pki.ca_pem, identity).await {
            Err(_) => true,
            Ok(mut c) => c.list_account_links(list(SOURCE)).await.is_err(),
        };
        assert!(refused, "{:?}", identity.map(|_| "stranger"));
    }
    assert_eq!(
        app.audit_events().await.len(),
        2,
        "refused handshakes never reach the service"
    );
}
