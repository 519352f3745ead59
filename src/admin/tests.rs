//! Tests of the admin operations against a real daemon state (`Daemon`) on a temp dir, with
//! messages queued through the intake and outcomes applied by the disposition.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::config::Config;
use crate::daemon::state::Daemon;
use crate::inbound::accept::QueueIntake;
use crate::inbound::intake::{Intake, RecipientSpec, SessionInfo, Submission};
use crate::model::address::Address;
use crate::model::time::{ManualClock, Timestamp};
use crate::model::{EnhancedCode, EventKind, Reply, Status, SuppressionReason};
use crate::records::disposition::{Outcome, apply_attempt};
use crate::store::TreeId;

const T0: Timestamp = Timestamp(1_795_000_000_000);

struct Kit {
    daemon: Arc<Daemon>,
    clock: ManualClock,
    _dir: tempfile::TempDir,
}

fn kit() -> Kit {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.server.data_dir = dir.path().to_path_buf();
    let clock = ManualClock::new(T0);
    let daemon = Daemon::open(Arc::new(cfg), Arc::new(clock.clone())).unwrap();
    Kit {
        daemon,
        clock,
        _dir: dir,
    }
}

async fn submit(daemon: &Arc<Daemon>, rcpts: &[&str]) -> String {
    let sub = Submission {
        session: SessionInfo {
            peer: "127.0.0.1:40000".parse().unwrap(),
            helo: "app".into(),
            tls: false,
            auth_user: None,
            relay_allowed: true,
        },
        sender: Some(Address::parse("app@example.org").unwrap()),
        recipients: rcpts
            .iter()
            .map(|r| RecipientSpec {
                address: Address::parse(r).unwrap(),
                orcpt: None,
                notify: None,
            })
            .collect(),
        env_id: None,
        ret: None,
        body: format!(
            "From: app@example.org\r\nTo: {}\r\nSubject: hi\r\n\r\nhello\r\n",
            rcpts.join(", ")
        )
        .into_bytes(),
    };
    QueueIntake {
        daemon: daemon.clone(),
    }
    .submit(sub)
    .await
    .unwrap()
    .queue_id
}

/// Applies one reply per recipient (by index) to a queued message.
async fn reply(daemon: &Daemon, id: &str, replies: &[(usize, u16, &str, &str)]) {
    let mut rec = daemon
        .store
        .message(parse_id(id).unwrap())
        .unwrap()
        .unwrap();
    let outcomes: Vec<Outcome> = replies
        .iter()
        .map(|(i, c, e, t)| Outcome {
            index: *i,
            reply: Reply::remote(*c, EnhancedCode::parse(e), *t),
            remote_host: Some("mx.example.net".into()),
        })
        .collect();
    let (ws, events) = apply_attempt(daemon, &mut rec, &outcomes, daemon.now()).unwrap();
    daemon.commit(ws, &events).await.unwrap();
}

fn addr(s: &str) -> Address {
    Address::parse(s).unwrap()
}

#[tokio::test]
async fn queue_list_show_retry_delete() {
    let k = kit();
    let a = submit(&k.daemon, &["a@example.net", "b@example.net"]).await;
    let b = submit(&k.daemon, &["c@example.net"]).await;
    reply(&k.daemon, &b, &[(0, 250, "2.0.0", "ok")]).await;
    let page = list_queue(&k.daemon, false, None, 10).unwrap();
    assert_eq!(
        page.items
            .iter()
            .map(|m| m.queue_id.clone())
            .collect::<Vec<_>>(),
        vec![a.clone()],
        "finished messages hidden by default"
    );
    let all = list_queue(&k.daemon, true, None, 1).unwrap();
    assert_eq!(all.items.len(), 1);
    let rest = list_queue(&k.daemon, true, all.next_cursor.as_deref(), 10).unwrap();
    assert_eq!(rest.items[0].queue_id, b);
    assert!(rest.next_cursor.is_none());

    let shown = show(&k.daemon, &a).unwrap();
    assert_eq!(shown.recipients.len(), 2);
    assert_eq!(shown.events.as_ref().unwrap().len(), 2);
    assert!(shown.body_kept);

    k.clock.advance(Duration::from_secs(60));
    reply(
        &k.daemon,
        &a,
        &[
            (0, 451, "4.7.1", "greylisted"),
            (1, 451, "4.7.1", "greylisted"),
        ],
    )
    .await;
    let due_before = k
        .daemon
        .store
        .message(parse_id(&a).unwrap())
        .unwrap()
        .unwrap()
        .next_attempt
        .unwrap();
    assert!(due_before > k.daemon.now());
    let v = retry(&k.daemon, &a).await.unwrap();
    assert_eq!(v.next_attempt, Some(k.daemon.now()));
    assert_eq!(
        k.daemon.store.due(k.daemon.now(), 10).unwrap().len(),
        1,
        "schedule key moved, not duplicated"
    );
    assert!(matches!(
        retry(&k.daemon, &b).await,
        Err(AdminError::Refused { .. })
    ));

    let dropped = delete(&k.daemon, &a).await.unwrap();
    assert_eq!(dropped.len(), 2);
    assert!(dropped.iter().all(|e| e.status == EventKind::Dropped));
    assert!(
        k.daemon
            .store
            .message(parse_id(&a).unwrap())
            .unwrap()
            .is_none()
    );
    assert!(
        k.daemon
            .store
            .body(parse_id(&a).unwrap())
            .unwrap()
            .is_none()
    );
    assert!(
        k.daemon
            .store
            .due(Timestamp(i64::MAX / 2), 10)
            .unwrap()
            .is_empty()
    );
    assert!(matches!(show(&k.daemon, &a), Err(AdminError::NotFound(_))));
    assert!(matches!(
        show(&k.daemon, "zz"),
        Err(AdminError::BadInput { param: "id", .. })
    ));
}

#[tokio::test]
async fn resend_links_both_messages_and_checks_suppression() {
    let k = kit();
    let a = submit(&k.daemon, &["typo@example.nte"]).await;
    reply(&k.daemon, &a, &[(0, 550, "5.1.1", "user unknown")]).await;
    assert!(
        k.daemon
            .store
            .suppression("typo@example.nte")
            .unwrap()
            .is_some(),
        "hard bounce suppressed"
    );
    let err = resend(&k.daemon, &a, None).await.unwrap_err();
    assert!(
        matches!(
            &err,
            AdminError::Refused {
                code: "suppressed",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("hard_bounce"), "{err}");

    let r = resend(&k.daemon, &a, Some(addr("right@example.net")))
        .await
        .unwrap();
    assert_ne!(r.queue_id, a);
    let new = k
        .daemon
        .store
        .message(parse_id(&r.queue_id).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(new.resent_from, Some(parse_id(&a).unwrap()));
    assert_eq!(new.recipients[0].address, "right@example.net");
    assert_eq!(
        k.daemon.store.body(new.id).unwrap(),
        k.daemon.store.body(parse_id(&a).unwrap()).unwrap()
    );
    let old_events = show(&k.daemon, &a).unwrap().events.unwrap();
    let resent = old_events
        .iter()
        .find(|e| e.status == EventKind::Resent)
        .expect("resent event on the old message");
    assert_eq!(resent.linked_queue_id.as_deref(), Some(r.queue_id.as_str()));
    let new_events = show(&k.daemon, &r.queue_id).unwrap().events.unwrap();
    assert_eq!(new_events[0].status, EventKind::Queued);
    assert_eq!(new_events[0].linked_queue_id.as_deref(), Some(a.as_str()));
}

#[tokio::test]
async fn undelivered_report_takes_the_latest_status_in_the_window() {
    let k = kit();
    let m = submit(
        &k.daemon,
        &[
            "ok@example.net",
            "gone@example.net",
            "full@example.net",
            "spam@example.net",
            "later@example.net",
        ],
    )
    .await;
    reply(
        &k.daemon,
        &m,
        &[
            (0, 250, "2.0.0", "ok"),
            (1, 550, "5.1.1", "no such user"),
            (2, 452, "4.2.2", "mailbox full"),
            (3, 554, "5.7.1", "message rejected as spam"),
            (4, 451, "4.3.0", "try later"),
        ],
    )
    .await;
    k.clock.advance(Duration::from_secs(600));
    reply(&k.daemon, &m, &[(4, 250, "2.0.0", "ok")]).await;
    let rep = undelivered(&k.daemon, None, None, None, None).unwrap();
    let mut got: Vec<(String, Status)> = rep
        .items
        .iter()
        .map(|i| (i.recipient.clone(), i.status))
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    // 554 5.7.1 is `failed` with the rules table, `deferred` with the placeholder classifier.
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0], ("full@example.net".into(), Status::Deferred));
    assert_eq!(got[1], ("gone@example.net".into(), Status::Bounced));
    assert_eq!(got[2].0, "spam@example.net");
    assert_eq!(rep.summary.get("bounced"), Some(&1));
    assert_eq!(rep.total, 3);
    let gone = rep
        .items
        .iter()
        .find(|i| i.status == Status::Bounced)
        .unwrap();
    assert_eq!(gone.diagnostic.as_deref(), Some("550 5.1.1 no such user"));
    assert!(gone.reason.is_some());
    let only = undelivered(&k.daemon, None, None, None, Some("bounced,expired")).unwrap();
    assert_eq!(only.items.len(), 1);
    assert_eq!(only.items[0].recipient, "gone@example.net");
    assert!(matches!(
        undelivered(&k.daemon, Some("0"), None, None, None),
        Err(AdminError::BadInput { param: "days", .. })
    ));
    assert!(matches!(
        undelivered(&k.daemon, None, None, None, Some("delivered")),
        Err(AdminError::BadInput {
            param: "status",
            ..
        })
    ));
    k.clock.advance(Duration::from_secs(31 * 86_400));
    assert!(
        undelivered(&k.daemon, None, None, None, None)
            .unwrap()
            .items
            .is_empty(),
        "outside the 30-day window"
    );
}

#[tokio::test]
async fn suppressions_add_remove_force_and_events() {
    let k = kit();
    let (e, changed) = add_suppression(
        &k.daemon,
        &addr("Bob@Example.COM"),
        SuppressionReason::Manual,
        None,
        false,
    )
    .await
    .unwrap();
    assert!(changed);
    assert_eq!(e.reason, SuppressionReason::Manual);
    assert!(
        !add_suppression(
            &k.daemon,
            &addr("bob@example.com"),
            SuppressionReason::Manual,
            None,
            false
        )
        .await
        .unwrap()
        .1,
        "same entry: unchanged"
    );
    add_suppression(
        &k.daemon,
        &addr("c@example.com"),
        SuppressionReason::Complaint,
        Some("abuse report".into()),
        false,
    )
    .await
    .unwrap();
    let page = list_suppressions(&k.daemon, Some(SuppressionReason::Complaint), None, 10).unwrap();
    assert_eq!(page.items.len(), 1);
    let err = remove_suppression(&k.daemon, &addr("c@example.com"), false)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            AdminError::Refused {
                code: "consent_required",
                ..
            }
        ) && err.to_string().contains("consent"),
        "{err}"
    );
    assert!(
        add_suppression(
            &k.daemon,
            &addr("c@example.com"),
            SuppressionReason::Manual,
            None,
            false
        )
        .await
        .is_err(),
        "cannot downgrade a complaint"
    );
    remove_suppression(&k.daemon, &addr("c@example.com"), true)
        .await
        .unwrap();
    remove_suppression(&k.daemon, &addr("BOB@example.com"), false)
        .await
        .unwrap();
    assert!(matches!(
        remove_suppression(&k.daemon, &addr("bob@example.com"), false).await,
        Err(AdminError::NotFound(_))
    ));
    let f = EventFilter {
        status: Some("suppression_added,suppression_removed".into()),
        ..Default::default()
    };
    let evs = events(&k.daemon, &f).unwrap().events;
    assert_eq!(
        evs.iter()
            .filter(|e| e.status == EventKind::SuppressionAdded)
            .count(),
        2
    );
    assert_eq!(
        evs.iter()
            .filter(|e| e.status == EventKind::SuppressionRemoved)
            .count(),
        2
    );
}

/// The cells of one exported CSV record exactly as written (quotes removed, `""` undoubled),
/// without [`parse_csv`]'s stripping of the formula guard.
fn raw_cells(line: &str) -> Vec<String> {
    let (mut cells, mut cell, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        match (quoted, ch) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') if cell.is_empty() => quoted = true,
            (false, ',') => cells.push(std::mem::take(&mut cell)),
            (_, c) => cell.push(c),
        }
    }
    cells.push(cell);
    cells
}

/// A large import names only the first refused records and counts the rest; an unterminated
/// quote refuses the whole file before anything is written.
#[tokio::test]
async fn imports_bound_their_error_list_and_refuse_broken_quoting_up_front() {
    let k = kit();
    let mut csv = String::from("address,reason\n");
    for i in 0..250 {
        csv.push_str(&format!("not-an-address-{i},manual\n"));
    }
    csv.push_str("ok@example.com,manual\n");
    let st = import_suppressions(&k.daemon, ExportFormat::Csv, &csv)
        .await
        .unwrap();
    assert_eq!(
        (st.added, st.errors.len(), st.more_errors),
        (1, crate::admin::transfer::MAX_LISTED_ERRORS, 150),
        "{:?}",
        (st.added, st.errors.len(), st.more_errors)
    );
    let k2 = kit();
    let broken = "address,reason\nfirst@example.com,manual\n\"second@example.com,manual\n";
    assert!(
        import_suppressions(&k2.daemon, ExportFormat::Csv, broken)
            .await
            .is_err()
    );
    assert!(
        k2.daemon
            .store
            .suppression("first@example.com")
            .unwrap()
            .is_none(),
        "nothing imported from a refused file"
    );
}

#[tokio::test]
async fn csv_round_trip_neutralises_formulas() {
    let k = kit();
    let csv = "address,reason,time,diagnostic\r\nx@example.com,hard_bounce,2026-11-01T10:00:00Z,\"550 5.1.1 no, really\"\r\n\"=cmd@example.com\",manual,,=HYPERLINK(\"http://evil\")\nnot-an-address,manual,,\ny@example.com,bogus,,\n\
+plus@example.com,manual,,+1+1\n-minus@example.com,manual,,-2+3\nat@example.com,manual,,@SUM(A1:A2)\n";
    let st = import_suppressions(&k.daemon, ExportFormat::Csv, csv)
        .await
        .unwrap();
    assert_eq!(st.added, 5, "{st:?}");
    assert_eq!(st.errors.len(), 2, "{st:?}");
    assert!(st.errors[0].starts_with("line 4"), "{st:?}");
    let out = export_suppressions(&k.daemon, ExportFormat::Csv).unwrap();
    assert!(out.contains("\"550 5.1.1 no, really\""), "{out}");
    // Each cell a spreadsheet would run as a formula (= + - @ first) is written with a `'` in
    // front; without the guard these are exactly the cells that start with = + - @.
    let rows: std::collections::BTreeMap<String, Vec<String>> = out
        .lines()
        .skip(1)
        .map(raw_cells)
        .map(|c| (c[0].trim_start_matches('\'').to_string(), c))
        .collect();
    let cells = |address: &str, n: usize| {
        rows.get(address)
            .unwrap_or_else(|| panic!("{address} not exported: {out}"))[n]
            .clone()
    };
    assert_eq!(cells("=cmd@example.com", 0), "'=cmd@example.com", "{out}");
    assert_eq!(
        cells("=cmd@example.com", 3),
        "'=HYPERLINK(\"http://evil\")",
        "{out}"
    );
    assert_eq!(cells("+plus@example.com", 0), "'+plus@example.com", "{out}");
    assert_eq!(cells("+plus@example.com", 3), "'+1+1", "{out}");
    assert_eq!(
        cells("-minus@example.com", 0),
        "'-minus@example.com",
        "{out}"
    );
    assert_eq!(cells("-minus@example.com", 3), "'-2+3", "{out}");
    assert_eq!(cells("at@example.com", 3), "'@SUM(A1:A2)", "{out}");
    assert_eq!(
        cells("x@example.com", 3),
        "550 5.1.1 no, really",
        "a harmless cell is left alone: {out}"
    );
    assert_eq!(rows.len(), 5, "{out}");
    let guarded = rows
        .values()
        .flatten()
        .filter(|c| c.starts_with('\''))
        .count();
    assert_eq!(guarded, 7, "{out}");
    for row in rows.values() {
        assert!(
            !row.iter()
                .any(|c| c.starts_with(['=', '+', '-', '@', '\t', '\r'])),
            "unguarded formula cell: {row:?}"
        );
    }
    // Import strips the guard again.
    let k2 = kit();
    let st2 = import_suppressions(&k2.daemon, ExportFormat::Csv, &out)
        .await
        .unwrap();
    assert_eq!((st2.added, st2.errors.len()), (5, 0), "{st2:?}");
    assert_eq!(
        k2.daemon
            .store
            .suppression("=cmd@example.com")
            .unwrap()
            .unwrap()
            .diagnostic
            .as_deref(),
        Some("=HYPERLINK(\"http://evil\")")
    );
    assert_eq!(
        k2.daemon
            .store
            .suppression("+plus@example.com")
            .unwrap()
            .unwrap()
            .diagnostic
            .as_deref(),
        Some("+1+1")
    );
    assert_eq!(
        k2.daemon
            .store
            .suppression("at@example.com")
            .unwrap()
            .unwrap()
            .diagnostic
            .as_deref(),
        Some("@SUM(A1:A2)")
    );
    let jl = export_suppressions(&k.daemon, ExportFormat::JsonLines).unwrap();
    let k3 = kit();
    assert_eq!(
        import_suppressions(&k3.daemon, ExportFormat::JsonLines, &jl)
            .await
            .unwrap()
            .added,
        5
    );
    assert_eq!(
        k3.daemon
            .store
            .suppression("x@example.com")
            .unwrap()
            .unwrap()
            .time,
        Timestamp::parse_rfc3339("2026-11-01T10:00:00Z").unwrap()
    );
}

#[tokio::test]
async fn purge_respects_retention_and_is_idempotent() {
    let k = kit();
    let done = submit(&k.daemon, &["d@example.net"]).await;
    reply(&k.daemon, &done, &[(0, 250, "2.0.0", "ok")]).await;
    let pending = submit(&k.daemon, &["p@example.net"]).await;
    let events_before = k.daemon.store.event_count();
    assert!(events_before >= 3);
    let none = purge(&k.daemon, k.daemon.now()).await;
    assert_eq!((none.events, none.bodies, none.messages), (0, 0, 0));
    k.clock.advance(Duration::from_secs(30 * 86_400 + 1));
    let s = purge(&k.daemon, k.daemon.now()).await;
    assert_eq!((s.events, s.messages, s.bodies), (0, 1, 1), "{s:?}");
    assert!(
        k.daemon
            .store
            .message(parse_id(&done).unwrap())
            .unwrap()
            .is_none()
    );
    assert!(
        k.daemon
            .store
            .body(parse_id(&pending).unwrap())
            .unwrap()
            .is_some(),
        "unfinished message keeps its body"
    );
    k.clock.advance(Duration::from_secs(60 * 86_400));
    let s = purge(&k.daemon, k.daemon.now()).await;
    assert_eq!(s.events, events_before);
    assert_eq!(k.daemon.store.event_count(), 0);
    assert_eq!(
        k.daemon.store.tree(TreeId::EvRcpt).len()
            + k.daemon.store.tree(TreeId::EvMsg).len()
            + k.daemon.store.tree(TreeId::EvStatus).len(),
        0
    );
    let again = purge(&k.daemon, k.daemon.now()).await;
    assert_eq!(
        (again.events, again.bodies, again.messages, again.error),
        (0, 0, 0, None)
    );
}

#[tokio::test]
async fn erase_leaves_nothing_naming_the_address() {
    let k = kit();
    let m1 = submit(&k.daemon, &["Erase.Me@Example.NET"]).await;
    reply(
        &k.daemon,
        &m1,
        &[(0, 550, "5.1.1", "<erase.me@example.net> unknown")],
    )
    .await;
    let m2 = submit(&k.daemon, &["keep@example.net", "erase.me@example.net"]).await;
    let m3 = submit(&k.daemon, &["other@example.net"]).await;
    let st = erase(&k.daemon, &addr("erase.me@example.net"))
        .await
        .unwrap();
    assert_eq!(st.messages, 2, "{st:?}");
    assert!(st.events >= 3, "{st:?}");
    assert!(st.suppression_kept);
    for t in TreeId::ALL
        .into_iter()
        .filter(|t| *t != TreeId::Suppressions)
    {
        assert_eq!(
            k.daemon
                .store
                .tree_mentions(t, "erase.me@example.net")
                .unwrap(),
            0,
            "{t:?} still names the address"
        );
    }
    let s = k
        .daemon
        .store
        .suppression("erase.me@example.net")
        .unwrap()
        .unwrap();
    assert_eq!((s.diagnostic, s.event_id), (None, None));
    assert!(
        k.daemon
            .store
            .message(parse_id(&m3).unwrap())
            .unwrap()
            .is_some()
    );
    // The shared message stays for its other recipient, without the erased address.
    assert_eq!(st.messages_kept, 1, "{st:?}");
    let shared = k
        .daemon
        .store
        .message(parse_id(&m2).unwrap())
        .unwrap()
        .expect("kept for keep@");
    let addrs: Vec<&str> = shared
        .recipients
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    assert_eq!(addrs, ["keep@example.net", super::retention::ERASED]);
    assert_eq!(
        shared.recipients[0].status,
        crate::model::Status::Queued,
        "still to be delivered"
    );
    assert!(
        k.daemon.store.body(shared.id).unwrap().is_some(),
        "the body stays for keep@"
    );
    let keep = events(
        &k.daemon,
        &EventFilter {
            recipient: Some("keep@example.net".into()),
            ..Default::default()
        },
    )
    .unwrap()
    .events;
    assert!(
        keep.iter().all(|e| e.status != EventKind::Dropped),
        "{keep:?}"
    );
}

#[tokio::test]
async fn event_filters_name_bad_parameters() {
    let k = kit();
    submit(&k.daemon, &["a@example.net"]).await;
    let bad = |f: EventFilter| match events(&k.daemon, &f) {
        Err(AdminError::BadInput { param, .. }) => param,
        other => panic!("expected a bad parameter, got {other:?}"),
    };
    assert_eq!(
        bad(EventFilter {
            status: Some("queued,nope".into()),
            ..Default::default()
        }),
        "status"
    );
    assert_eq!(
        bad(EventFilter {
            since: Some("yesterday-ish".into()),
            ..Default::default()
        }),
        "since"
    );
    assert_eq!(
        bad(EventFilter {
            limit: Some("0".into()),
            ..Default::default()
        }),
        "limit"
    );
    assert_eq!(
        bad(EventFilter {
            message: Some("xyz".into()),
            ..Default::default()
        }),
        "message"
    );
    assert_eq!(
        bad(EventFilter {
            cursor: Some("abc".into()),
            ..Default::default()
        }),
        "cursor"
    );
    let f = EventFilter {
        since: Some("1h".into()),
        status: Some("queued".into()),
        ..Default::default()
    };
    assert_eq!(events(&k.daemon, &f).unwrap().events.len(), 1);
}

#[tokio::test]
async fn a_sort_without_an_index_is_bounded_and_cursors_keep_to_their_order() {
    use crate::model::Event;
    use crate::store::WriteSet;
    let k = kit();
    let mut ws = WriteSet::new();
    for i in 0..log::SORT_LIMIT + 1 {
        let kind = if i % 100 == 0 {
            EventKind::Bounced
        } else {
            EventKind::Delivered
        };
        let mut e = Event::new(kind, T0.minus(Duration::from_secs(i as u64)));
        e.recipient = Some(format!("r{}@example.net", i % 700));
        e.queue_id = Some(format!("{:X}", i + 1));
        k.daemon.store.stamp_event(&mut e).unwrap();
        ws.put_event(&e, false);
    }
    k.daemon.store.apply(&ws).unwrap();
    let f = |sort: &str, status: Option<&str>| EventFilter {
        sort: Some(sort.into()),
        status: status.map(str::to_string),
        limit: Some("1000".into()),
        ..Default::default()
    };
    for sort in ["recipient", "message", "diagnostic"] {
        match events(&k.daemon, &f(sort, None)) {
            Err(AdminError::BadInput {
                param: "sort",
                message,
            }) => {
                assert!(message.contains("narrow"), "{message}")
            }
            other => panic!(
                "{sort}: {} events over the limit: {other:?}",
                log::SORT_LIMIT + 1
            ),
        }
        let narrow = events(&k.daemon, &f(sort, Some("bounced"))).unwrap();
        assert_eq!(
            narrow.events.len(),
            51,
            "{sort}: the bounced ones are few enough"
        );
    }
    let by_status = events(&k.daemon, &f("status", None)).unwrap();
    assert_eq!(
        by_status.events.len(),
        1000,
        "status reads its index, no bound"
    );
    assert_eq!(by_status.events[0].status, EventKind::Bounced, "A to Z");
    let next = by_status.next_cursor.expect("more pages");
    assert!(next.starts_with("status.asc."), "{next}");
    let wrong = EventFilter {
        cursor: Some(next.clone()),
        order: Some("desc".into()),
        ..f("status", None)
    };
    assert!(
        matches!(
            events(&k.daemon, &wrong),
            Err(AdminError::BadInput {
                param: "cursor",
                ..
            })
        ),
        "a cursor of another order is refused"
    );
    let time = EventFilter {
        cursor: Some(next),
        ..Default::default()
    };
    assert!(matches!(
        events(&k.daemon, &time),
        Err(AdminError::BadInput {
            param: "cursor",
            ..
        })
    ));
    let bad_order = EventFilter {
        order: Some("up".into()),
        ..Default::default()
    };
    assert!(matches!(
        events(&k.daemon, &bad_order),
        Err(AdminError::BadInput { param: "order", .. })
    ));
}
