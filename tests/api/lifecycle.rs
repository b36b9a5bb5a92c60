//! The account-link lifecycle, each transition checked through
//! GetAccountLink and ListAccountLinks.

use account_link_service::proto::pb;
use account_link_service::proto::pb::AccountLinkStatus as S;
use tonic::Code;

use crate::helpers::{OTHER, SOURCE, TARGET, spawn_app};

fn status(link: &pb::AccountLink) -> S {
    S::try_from(link.account_link_status).expect("known status")
}

#[tokio::test]
async fn invitation_accepted_by_the_target_becomes_linked() {
    let app = spawn_app().await;
    let created = app.create(SOURCE, TARGET, "").await.expect("create");
    let link = created.account_link.expect("link");
    assert!(link.account_link_id.starts_with("link-"));
    assert_eq!(link.source_account_id, SOURCE);
    assert_eq!(link.target_account_id, TARGET);
    assert_eq!(status(&link), S::PendingAcceptanceByTargetAccount);
    let id = link.account_link_id.clone();

    // Both parties see it pending; the target finds it by the source's account id.
    for account in [SOURCE, TARGET] {
        assert_eq!(
            status(&app.get(account, &id).await.unwrap()),
            S::PendingAcceptanceByTargetAccount
        );
    }
    let by_account = app
        .client
        .clone()
        .get_account_link(pb::GetAccountLinkRequest {
            account_id: TARGET.into(),
            link_id: String::new(),
            linked_account_id: SOURCE.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .account_link
        .unwrap();
    assert_eq!(by_account.account_link_id, id);
    let pending = app
        .list(TARGET, &[S::PendingAcceptanceByTargetAccount], 0, "")
        .await
        .unwrap();
    assert_eq!(pending.account_links, vec![link.clone()]);
    assert!(
        app.list(TARGET, &[S::Linked], 0, "")
            .await
            .unwrap()
            .account_links
            .is_empty()
    );

    let accepted = app
        .accept(TARGET, &id, "")
        .await
        .expect("accept")
        .account_link
        .unwrap();
    assert_eq!(status(&accepted), S::Linked);
    assert_eq!(accepted.account_link_id, id);
    for account in [SOURCE, TARGET] {
        assert_eq!(status(&app.get(account, &id).await.unwrap()), S::Linked);
    }
    let linked = app.list(SOURCE, &[S::Linked], 0, "").await.unwrap();
    assert_eq!(linked.account_links.len(), 1);
    assert_eq!(linked.account_links[0].account_link_id, id);
    assert!(
        app.list(SOURCE, &[S::PendingAcceptanceByTargetAccount], 0, "")
            .await
            .unwrap()
            .account_links
            .is_empty()
    );
    // A third account sees nothing.
    assert!(
        app.list(OTHER, &[], 0, "")
            .await
            .unwrap()
            .account_links
            .is_empty()
    );
}

#[tokio::test]
async fn invitation_rejected_by_the_target_becomes_rejected() {
    let app = spawn_app().await;
    let id = app
        .create(SOURCE, TARGET, "")
        .await
        .unwrap()
        .account_link
        .unwrap()
        .account_link_id;
    let rejected = app
        .reject(TARGET, &id, "")
        .await
        .expect("reject")
        .account_link
        .unwrap();
    assert_eq!(status(&rejected), S::Rejected);
    assert_eq!(status(&app.get(SOURCE, &id).await.unwrap()), S::Rejected);
    let listed = app.list(SOURCE, &[S::Rejected], 0, "").await.unwrap();
    assert_eq!(listed.account_links.len(), 1);
    assert!(
        app.list(SOURCE, &[S::PendingAcceptanceByTargetAccount], 0, "")
            .await
            .unwrap()
            .account_links
            .is_empty()
    );
    // A rejected target may be invited again.
    let again = app
        .create(SOURCE, TARGET, "")
        .await
        .expect("re-invite")
        .account_link
        .unwrap();
    assert_ne!(again.account_link_id, id);
}

#[tokio::test]
async fn invitation_deleted_by_the_source_is_gone() {
    let app = spawn_app().await;
    let id = app
        .create(SOURCE, TARGET, "")
        .await
        .unwrap()
        .account_link
        .unwrap()
        .account_link_id;
    let deleted = app
        .delete(SOURCE, &id, "")
        .await
        .expect("delete")
        .account_link
        .unwrap();
    assert_eq!(deleted.account_link_id, id);
    let err = app
        .get(SOURCE, &id)
        .await
        .expect_err("deleted link is not found");
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        app.list(SOURCE, &[], 0, "")
            .await
            .unwrap()
            .account_links
            .is_empty()
    );
    assert!(
        app.list(TARGET, &[], 0, "")
            .await
            .unwrap()
            .account_links
            .is_empty()
    );
}

#[tokio::test]
async fn list_pages_through_every_link_with_and_without_a_filter() {
    let app = spawn_app().await;
    let targets: Vec<String> = (0..7).map(|i| format!("4444444444{i:02}")).collect();
    let mut ids = Vec::new();
    for t in &targets {
        ids.push(
            app.create(SOURCE, t, "")
                .await
                .unwrap()
                .account_link
                .unwrap()
                .account_link_id,
        );
    }
    // Accept three of them so a filter has something to exclude.
    for (t, id) in targets.iter().zip(&ids).take(3) {
        app.accept(t, id, "").await.unwrap();
    }

    let (all, pages) = app.list_all(SOURCE, &[], 2).await;
    assert_eq!(pages, 4, "7 links in pages of 2");
    let mut seen: Vec<String> = all.iter().map(|l| l.account_link_id.clone()).collect();
    seen.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(seen, expected, "every link exactly once");

    let (linked, pages) = app.list_all(SOURCE, &[S::Linked], 2).await;
    assert_eq!(pages, 2);
    assert_eq!(linked.len(), 3);
    assert!(linked.iter().all(|l| status(l) == S::Linked));

    let (pending, _) = app
        .list_all(SOURCE, &[S::PendingAcceptanceByTargetAccount], 1)
        .await;
    assert_eq!(pending.len(), 4);

    let both = app
        .list_all(
            SOURCE,
            &[S::Linked, S::PendingAcceptanceByTargetAccount],
            25,
        )
        .await;
    assert_eq!((both.0.len(), both.1), (7, 1));
}
