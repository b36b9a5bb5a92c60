//! Reflection, health and graceful shutdown.

use account_link_service::emulator::{Fault, FaultKind};
use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;

use crate::helpers::{SOURCE, TARGET, spawn_app};

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_the_services() {
    let app = spawn_app().await;
    let url = format!("http://{}", app.addr);

    let channel = tonic::transport::Channel::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = ServerReflectionClient::new(channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(Ok(response)) = stream.next().await else {
        panic!("no reflection answer")
    };
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected answer")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in ["accountlink.v1.AccountLinkService", "grpc.health.v1.Health"] {
        assert!(names.contains(&expected.to_owned()), "{names:?}");
    }

    let mut alpha = AlphaClient::new(channel);
    use tonic_reflection::pb::v1alpha as a;
    let request = a::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            a::server_reflection_request::MessageRequest::FileContainingSymbol(
                "accountlink.v1.AccountLinkService".into(),
            ),
        ),
    };
    let mut stream = alpha
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(Ok(response)) = stream.next().await else {
        panic!("no v1alpha answer")
    };
    assert!(matches!(
        response.message_response,
        Some(a::server_reflection_response::MessageResponse::FileDescriptorResponse(ref f)) if !f.file_descriptor_proto.is_empty()
    ));
}

#[tokio::test]
async fn health_is_serving() {
    let app = spawn_app().await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", "accountlink.v1.AccountLinkService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, 1, "SERVING for {service:?}");
    }
}

#[tokio::test]
async fn shutdown_finishes_in_flight_rpcs_and_their_audit_events() {
    let mut app = spawn_app().await;
    app.emu()
        .inject_fault(Fault::new(FaultKind::Latency { millis: 300 }, 1));
    let client = app.client.clone();
    let in_flight = tokio::spawn(async move {
        let mut client = client;
        client
            .create_account_link_invitation(
                account_link_service::proto::pb::CreateAccountLinkInvitationRequest {
                    account_id: SOURCE.into(),
                    target_account_id: TARGET.into(),
                    client_token: "in-flight".into(),
                },
            )
            .await
    });
    // Wait until the call is upstream, then stop the server.
    while app.calls().is_empty() {
        tokio::task::yield_now().await;
    }
    app.stop().await.expect("clean stop");
    let answered = in_flight.await.unwrap().expect("in-flight rpc answered");
    assert!(answered.into_inner().account_link.is_some());
    let events = app.audit_events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].grpc_code, "OK");
}

#[tokio::test]
async fn the_health_check_command_reports_serving_and_unreachable() {
    use account_link_service::config::HealthCheckArgs;
    use account_link_service::startup::health_check;
    let app = spawn_app().await;
    let args = |addr| HealthCheckArgs {
        addr,
        service: "accountlink.v1.AccountLinkService".into(),
        timeout_secs: 3,
    };
    assert_eq!(health_check(&args(app.addr)).await, Ok(true));
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    assert!(health_check(&args(closed)).await.is_err());
}
