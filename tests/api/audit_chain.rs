//! The audit hash chain: verify passes on an honest trail and names the
//! first broken seq after tampering (as a superuser bypassing the
//! append-only triggers), a deleted row, swapped rows, and deleted newest
//! rows. Runs the real `audit verify` command for the exit codes.

use std::process::Command;

use account_link_service::audit::{self, Break};
use account_link_service::store::DEFAULT_CHAIN;

use crate::helpers::{SOURCE, TARGET, TestApp, spawn_app};

async fn app_with_events(n: usize) -> TestApp {
    let app = spawn_app().await;
    for i in 0..n {
        // Alternate successes and validation failures.
        if i % 2 == 0 {
            app.list(SOURCE, &[], 0, "").await.unwrap();
        } else {
            app.get(TARGET, "bad").await.unwrap_err();
        }
    }
    assert_eq!(app.audit_events().await.len(), n);
    app
}

/// Runs SQL with the append-only triggers disabled, as a superuser could.
async fn as_superuser(app: &TestApp, statements: &[&str]) {
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query("set local session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .unwrap();
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(*sql))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

async fn verdict(app: &TestApp) -> Result<audit::VerifyReport, Break> {
    audit::verify(&app.pool, DEFAULT_CHAIN, None, None)
        .await
        .unwrap()
}

fn cli_verify(app: &TestApp) -> (bool, String) {
    let url = &app.database_url;
    let out = Command::new(env!("CARGO_BIN_EXE_account-link-service"))
        .args(["audit", "verify", "--database-url", url])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    )
}

#[tokio::test]
async fn an_honest_trail_verifies_and_the_hashes_link_up() {
    let app = app_with_events(6).await;
    let report = verdict(&app).await.expect("intact");
    assert_eq!((report.count, report.first_seq, report.last_seq), (6, 1, 6));
    let head: Vec<u8> = sqlx::query_scalar("select last_hash from audit_chain")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(report.head.as_slice(), head);
    let (ok, out) = cli_verify(&app);
    assert!(ok, "{out}");
    assert_eq!(out, format!("ok: 6 events, head {}", hex::encode(head)));
    // A sub-range verifies too.
    let part = audit::verify(&app.pool, DEFAULT_CHAIN, Some(3), Some(4))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(part.count, 2);
}

#[tokio::test]
async fn a_changed_row_is_a_hash_mismatch_at_its_seq() {
    let app = app_with_events(6).await;
    as_superuser(
        &app,
        &["update audit_event set principal = 'mallory' where seq = 3"],
    )
    .await;
    assert_eq!(verdict(&app).await, Err(Break::HashMismatch { seq: 3 }));
    let (ok, out) = cli_verify(&app);
    assert!(!ok);
    assert_eq!(out, "broken at seq 3: hash mismatch (the row was changed)");
}

#[tokio::test]
async fn a_deleted_row_is_a_gap() {
    let app = app_with_events(6).await;
    as_superuser(&app, &["delete from audit_event where seq = 4"]).await;
    assert_eq!(
        verdict(&app).await,
        Err(Break::Gap {
            expected: 4,
            found: Some(5)
        })
    );
    assert_eq!(
        cli_verify(&app).1,
        "broken at seq 4: gap (rows 4..4 are missing)"
    );
}

#[tokio::test]
async fn swapped_rows_are_a_reordering() {
    let app = app_with_events(6).await;
    as_superuser(
        &app,
        &[
            "update audit_event set seq = 1000000 where seq = 5",
            "update audit_event set seq = 5 where seq = 6",
            "update audit_event set seq = 6 where seq = 1000000",
        ],
    )
    .await;
    assert_eq!(
        verdict(&app).await,
        Err(Break::Reordered {
            seq: 5,
            written_as: 6
        })
    );
}

#[tokio::test]
async fn deleting_the_newest_rows_is_detected_against_the_chain_head() {
    let app = app_with_events(6).await;
    as_superuser(&app, &["delete from audit_event where seq >= 5"]).await;
    assert_eq!(
        verdict(&app).await,
        Err(Break::MissingNewest { from: 5, head: 6 })
    );
}

#[tokio::test]
async fn concurrent_appends_keep_one_linked_chain() {
    let app = spawn_app().await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let mut client = app.client.clone();
        tasks.push(tokio::spawn(async move {
            client
                .list_account_links(account_link_service::proto::pb::ListAccountLinksRequest {
                    account_id: if i % 3 == 0 {
                        "bad".into()
                    } else {
                        SOURCE.into()
                    },
                    ..Default::default()
                })
                .await
        }));
    }
    for t in tasks {
        let _ = t.await.unwrap();
    }
    let report = verdict(&app).await.expect("one intact chain");
    assert_eq!(report.count, 24);
}
