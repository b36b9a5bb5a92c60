//! The audit hash chain: verify passes on an honest trail and names the
//! first broken seq after tampering (as a superuser bypassing the
//! append-only triggers, or on SQLite someone who can write the file and
//! drops them), a deleted row, swapped rows, and deleted newest rows. Runs
//! the real `audit verify` command for the exit codes.

use std::process::Command;

use account_link_service::audit::{self, Break};
use account_link_service::store::{AnyStore, DEFAULT_CHAIN, Store};

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

/// Runs SQL with the append-only triggers out of the way: as a PostgreSQL
/// superuser could (`session_replication_role`), or, on SQLite, as anyone
/// who can write the file (drop the triggers, tamper, put them back, in
/// one transaction).
async fn as_superuser(app: &TestApp, statements: &[&str]) {
    match &app.store {
        AnyStore::Postgres(pg) => {
            let mut tx = pg.pool().begin().await.unwrap();
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
        AnyStore::Sqlite(lite) => {
            let mut tx = lite.writer().begin().await.unwrap();
            let triggers: Vec<(String, String)> = sqlx::query_as(
                "select name, sql from sqlite_master \
                 where type = 'trigger' and tbl_name = 'audit_event'",
            )
            .fetch_all(&mut *tx)
            .await
            .unwrap();
            assert_eq!(triggers.len(), 3, "{triggers:?}");
            for (name, _) in &triggers {
                sqlx::query(sqlx::AssertSqlSafe(format!("drop trigger {name}")))
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            for sql in statements {
                sqlx::query(sqlx::AssertSqlSafe(*sql))
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            for (_, sql) in triggers {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            tx.commit().await.unwrap();
        }
    }
}

async fn verdict(app: &TestApp) -> Result<audit::VerifyReport, Break> {
    audit::verify(&app.store, DEFAULT_CHAIN, None, None)
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
    let head = app.store.chain_head(DEFAULT_CHAIN).await.unwrap().row_hash;
    assert_eq!(report.head.as_slice(), head);
    let (ok, out) = cli_verify(&app);
    assert!(ok, "{out}");
    assert_eq!(out, format!("ok: 6 events, head {}", hex::encode(head)));
    // A sub-range verifies too.
    let part = audit::verify(&app.store, DEFAULT_CHAIN, Some(3), Some(4))
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
async fn a_changed_prev_hash_is_a_broken_link_not_a_hash_mismatch() {
    let app = app_with_events(6).await;
    // A well-formed hash, but not the one of the row before.
    as_superuser(
        &app,
        &["update audit_event set prev_hash = \
           (select row_hash from audit_event where seq = 1) where seq = 4"],
    )
    .await;
    assert_eq!(verdict(&app).await, Err(Break::PrevHashMismatch { seq: 4 }));
    let (ok, out) = cli_verify(&app);
    assert!(!ok);
    assert_eq!(
        out,
        "broken at seq 4: broken link (prev_hash is not the row_hash of seq 3)"
    );
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

fn key_pair() -> (
    ed25519_dalek::SigningKey,
    ed25519_dalek::VerifyingKey,
    String,
) {
    use account_link_service::audit::checkpoint;
    let (seed, public) = checkpoint::generate_key().unwrap();
    let path = crate::helpers::write_temp("signing.key", seed.as_bytes());
    (
        checkpoint::read_signing_key(&path).unwrap(),
        checkpoint::read_public_key(&public).unwrap(),
        public,
    )
}

#[tokio::test]
async fn a_checkpoint_proves_the_prefix_even_when_the_newest_rows_and_head_are_rolled_back() {
    let app = app_with_events(6).await;
    let (signing, verifying, _) = key_pair();
    let cp = audit::create_checkpoint(&app.store, DEFAULT_CHAIN, &signing, None)
        .await
        .unwrap()
        .expect("an intact chain is signed");
    assert_eq!((cp.from_seq, cp.to_seq), (1, 6));
    audit::verify_checkpoint(&app.store, &cp, &verifying)
        .await
        .unwrap()
        .expect("holds");

    // More events later: the prefix still holds; a chained checkpoint covers them.
    app.list(SOURCE, &[], 0, "").await.unwrap();
    audit::verify_checkpoint(&app.store, &cp, &verifying)
        .await
        .unwrap()
        .expect("still holds");
    let next = audit::create_checkpoint(&app.store, DEFAULT_CHAIN, &signing, Some(&cp))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((next.from_seq, next.to_seq), (7, 7));
    assert_eq!(
        next.previous_signature.as_deref(),
        Some(cp.signature.as_str())
    );

    // Someone deletes seq 5..7 and rolls the chain head back to seq 4:
    // a plain verify is fooled, the checkpoint is not.
    as_superuser(
        &app,
        &[
            "delete from audit_event where seq >= 5",
            "update audit_chain set last_seq = 4, \
             last_hash = (select row_hash from audit_event where seq = 4)",
        ],
    )
    .await;
    assert!(
        verdict(&app).await.is_ok(),
        "the rollback hides from a plain verify"
    );
    assert_eq!(
        audit::verify_checkpoint(&app.store, &cp, &verifying)
            .await
            .unwrap(),
        Err(Break::MissingNewest { from: 5, head: 6 })
    );

    // A forged checkpoint (or another signer) is refused.
    let mut forged = cp.clone();
    forged.to_seq = 4;
    assert!(
        audit::verify_checkpoint(&app.store, &forged, &verifying)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_checkpoint_commands_sign_and_verify() {
    let app = app_with_events(3).await;
    let bin = env!("CARGO_BIN_EXE_account-link-service");
    let dir = std::env::temp_dir().join(format!("als-cp-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("audit.key");
    let cp = dir.join("cp.json");
    let run = |args: &[&str]| {
        let out = Command::new(bin)
            .args(args)
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        )
    };
    let (ok, public) = run(&["audit", "keygen", "--out", key.to_str().unwrap()]);
    assert!(ok && public.len() == 64, "{public}");
    let url = app.database_url.as_str();
    let (ok, out) = run(&[
        "audit",
        "checkpoint",
        "--database-url",
        url,
        "--signing-key",
        key.to_str().unwrap(),
        "--out",
        cp.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let (ok, out) = run(&[
        "audit",
        "verify",
        "--database-url",
        url,
        "--checkpoint",
        cp.to_str().unwrap(),
        "--public-key",
        &public,
    ]);
    assert!(ok, "{out}");
    assert!(out.starts_with("ok: 3 events, head "), "{out}");
    as_superuser(
        &app,
        &["update audit_event set grpc_code = 'OK' where seq = 2"],
    )
    .await;
    let (ok, out) = run(&[
        "audit",
        "verify",
        "--database-url",
        url,
        "--checkpoint",
        cp.to_str().unwrap(),
        "--public-key",
        &public,
    ]);
    assert!(!ok);
    assert_eq!(out, "broken at seq 2: hash mismatch (the row was changed)");
}

#[tokio::test]
async fn retention_deletes_only_a_checkpointed_prefix_and_verify_still_passes() {
    let app = app_with_events(6).await;
    let (signing, verifying, _) = key_pair();
    let future = time::OffsetDateTime::now_utc() + time::Duration::days(1);
    // No checkpoint yet: nothing may be deleted.
    assert_eq!(
        audit::retain(&app.store, DEFAULT_CHAIN, &verifying, future)
            .await
            .unwrap(),
        Ok(None)
    );

    let cp = audit::create_checkpoint(&app.store, DEFAULT_CHAIN, &signing, None)
        .await
        .unwrap()
        .unwrap();
    app.list(SOURCE, &[], 0, "").await.unwrap(); // seq 7, after the checkpoint
    // A cut-off before every event deletes nothing.
    let past = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    assert_eq!(
        audit::retain(&app.store, DEFAULT_CHAIN, &verifying, past)
            .await
            .unwrap(),
        Ok(None)
    );

    let outcome = audit::retain(&app.store, DEFAULT_CHAIN, &verifying, future)
        .await
        .unwrap()
        .unwrap()
        .expect("the checkpointed prefix goes");
    assert_eq!((outcome.to_seq, outcome.deleted), (6, 6));
    let seqs: Vec<i64> = app.audit_events().await.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [7, 8], "seq 7 kept, seq 8 records the deletion");
    let last = app.audit_events().await.pop().unwrap();
    assert_eq!(
        (last.method.as_str(), last.principal.as_str()),
        ("AuditRetention", "system:retention")
    );
    assert_eq!(last.response_elements.unwrap()["deleted_events"], 6);

    // The chain still verifies, anchored at the retained checkpoint.
    let report = verdict(&app).await.expect("verify passes after retention");
    assert_eq!((report.first_seq, report.count), (7, 2));
    // Deleting outside the retention function is still refused.
    let err = crate::helpers::execute(&app.store, "delete from audit_event where seq = 7")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    let _ = cp;
}

#[tokio::test]
async fn export_streams_cloudtrail_records_for_a_time_range() {
    let app = app_with_events(2).await;
    // 100 000 more rows, written straight in SQL (hashes are not checked by
    // export).
    let inserted = match &app.store {
        AnyStore::Postgres(pg) => sqlx::query(
            "insert into audit_event (event_id, chain_id, seq, event_time, method, read_only, \
               principal, request_id, account_id, request_parameters, grpc_code, \
               upstream_attempts, idempotency_outcome, duration_us, prev_hash, row_hash) \
             select gen_random_uuid(), 'default', 2 + g, \
               now() - interval '1 hour' + g * interval '1 ms', \
               'GetAccountLink', true, 'bulk', 'req-' || g, '111111111111', \
               jsonb_build_object('link_id', 'link-' || lpad(g::text, 8, '0')), 'OK', 1, 'none', \
               10, decode(repeat('00', 32), 'hex'), decode(repeat('11', 32), 'hex') \
             from generate_series(1, 100000) g",
        )
        .execute(pg.pool())
        .await
        .unwrap()
        .rows_affected(),
        AnyStore::Sqlite(lite) => sqlx::query(
            "with recursive g(n) as (select 1 union all select n + 1 from g where n < 100000) \
             insert into audit_event (event_id, chain_id, seq, event_time, method, read_only, \
               principal, request_id, account_id, request_parameters, grpc_code, \
               upstream_attempts, idempotency_outcome, duration_us, prev_hash, row_hash) \
             select randomblob(16), 'default', 2 + n, \
               cast(unixepoch('subsec') * 1000000 as integer) - 3600000000 + n * 1000, \
               'GetAccountLink', 1, 'bulk', 'req-' || n, '111111111111', \
               json_object('link_id', 'link-' || printf('%08d', n)), 'OK', 1, 'none', 10, \
               zeroblob(32), unhex(replace(hex(zeroblob(32)), '0', '1')) \
             from g",
        )
        .execute(lite.writer())
        .await
        .unwrap()
        .rows_affected(),
    };
    assert_eq!(inserted, 100_000);
    let since = "2000-01-01T00:00:00Z";
    let until = "2100-01-01T00:00:00Z";
    let out = Command::new(env!("CARGO_BIN_EXE_account-link-service"))
        .args([
            "audit",
            "export",
            "--database-url",
            &app.database_url,
            "--since",
            since,
            "--until",
            until,
        ])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 100_002);
    let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    for key in [
        "eventVersion",
        "eventTime",
        "eventSource",
        "eventName",
        "userIdentity",
        "sourceIPAddress",
        "userAgent",
        "requestParameters",
        "responseElements",
        "errorCode",
        "errorMessage",
        "requestID",
        "eventID",
        "readOnly",
        "recipientAccountId",
        "seq",
        "prevHash",
        "rowHash",
    ] {
        assert!(first.get(key).is_some(), "missing {key}: {first}");
    }
    assert_eq!(first["eventName"], "ListAccountLinks");
    let last: serde_json::Value = serde_json::from_str(lines[100_001]).unwrap();
    assert_eq!(last["seq"], 100_002);
    assert_eq!(last["userIdentity"]["principalId"], "bulk");
    // An empty range exports nothing.
    let out = Command::new(env!("CARGO_BIN_EXE_account-link-service"))
        .args([
            "audit",
            "export",
            "--database-url",
            &app.database_url,
            "--since",
            "2000-01-01T00:00:00Z",
            "--until",
            "2000-01-02T00:00:00Z",
        ])
        .output()
        .unwrap();
    assert!(out.status.success() && out.stdout.is_empty());
}
