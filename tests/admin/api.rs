//! The admin API over real HTTP on 127.0.0.1: guards, every route, errors,
//! paging, the consent rule, resend, the undelivered report and erasure.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::config::TOKEN;
use crate::support::http::raw;
use crate::support::rig::{rig, rig_with};
use rebound::store::TreeId;
use serde_json::json;

#[tokio::test]
async fn token_is_required_and_only_in_the_header() {
    let r = rig().await;
    let host = r.host();
    let no_auth = raw(r.addr, "GET", "/v1/queue", &[("Host", &host)], b"").await;
    assert_eq!(no_auth.status, 401);
    assert_eq!(no_auth.error_code(), "unauthorized");
    assert_eq!(no_auth.header("www-authenticate"), Some("Bearer"));
    let wrong = raw(
        r.addr,
        "GET",
        "/v1/queue",
        &[("Host", &host), ("Authorization", "Bearer nope")],
        b"",
    )
    .await;
    assert_eq!(wrong.status, 401);
    let basic = raw(
        r.addr,
        "GET",
        "/v1/queue",
        &[
            ("Host", &host),
            ("Authorization", &format!("Basic {TOKEN}")),
        ],
        b"",
    )
    .await;
    assert_eq!(basic.status, 401);
    let in_query = raw(
        r.addr,
        "GET",
        &format!("/v1/queue?token={TOKEN}"),
        &[("Host", &host)],
        b"",
    )
    .await;
    assert_eq!(in_query.status, 401);
    let in_query2 = raw(
        r.addr,
        "GET",
        &format!("/v1/queue?access_token={TOKEN}"),
        &[("Host", &host)],
        b"",
    )
    .await;
    assert_eq!(in_query2.status, 401);
    for path in [
        "/v1/events",
        "/v1/suppressions",
        "/v1/reports/undelivered",
        "/v1/openapi.json",
        "/v1/messages/AB",
    ] {
        assert_eq!(
            raw(r.addr, "GET", path, &[("Host", &host)], b"")
                .await
                .status,
            401,
            "{path}"
        );
    }
    assert_eq!(
        raw(
            r.addr,
            "POST",
            "/v1/erase",
            &[("Host", &host), ("Content-Type", "application/json")],
            br#"{"address":"a@b.example"}"#
        )
        .await
        .status,
        401
    );
    assert_eq!(r.get("/v1/queue").await.status, 200);
    let lower = raw(
        r.addr,
        "GET",
        "/v1/queue",
        &[
            ("Host", &host),
            ("Authorization", &format!("bearer {TOKEN}")),
        ],
        b"",
    )
    .await;
    assert_eq!(lower.status, 200, "the scheme is case-insensitive");
}

#[tokio::test]
async fn generated_token_is_kept_private_in_data_dir() {
    let r = rig_with(None).await;
    assert_eq!(
        r.get("/v1/queue").await.status,
        401,
        "the test token is not this daemon's"
    );
    let path = r.dir.path().join("api.token");
    let token = std::fs::read_to_string(&path).unwrap().trim().to_string();
    assert!(token.len() >= 32);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let host = r.host();
    let ok = raw(
        r.addr,
        "GET",
        "/v1/queue",
        &[
            ("Host", &host),
            ("Authorization", &format!("Bearer {token}")),
        ],
        b"",
    )
    .await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn foreign_host_is_refused_and_healthz_is_open() {
    let r = rig().await;
    let auth = format!("Bearer {TOKEN}");
    let port = r.addr.port().to_string();
    for bad in [
        "evil.example".to_string(),
        format!("evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
    ] {
        let resp = raw(
            r.addr,
            "GET",
            "/v1/queue",
            &[("Host", &bad), ("Authorization", &auth)],
            b"",
        )
        .await;
        assert_eq!(resp.status, 403, "{bad}");
        assert_eq!(resp.error_code(), "forbidden_host");
        assert_eq!(
            raw(r.addr, "GET", "/healthz", &[("Host", &bad)], b"")
                .await
                .status,
            403
        );
    }
    for good in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "localhost".into(),
    ] {
        assert_eq!(
            raw(
                r.addr,
                "GET",
                "/v1/queue",
                &[("Host", &good), ("Authorization", &auth)],
                b""
            )
            .await
            .status,
            200,
            "{good}"
        );
    }
    assert_eq!(
        raw(r.addr, "GET", "/v1/queue", &[("Authorization", &auth)], b"")
            .await
            .status,
        403,
        "no Host at all"
    );
    let host = r.host();
    let h = raw(r.addr, "GET", "/healthz", &[("Host", &host)], b"").await;
    assert_eq!((h.status, h.json()["status"].as_str()), (200, Some("ok")));
    assert!(h.header("access-control-allow-origin").is_none());
    r.daemon.shutting_down.store(true, Ordering::SeqCst);
    assert_eq!(
        raw(r.addr, "GET", "/healthz", &[("Host", &host)], b"")
            .await
            .status,
        503
    );
    r.daemon.shutting_down.store(false, Ordering::SeqCst);
    r.daemon.ready.store(false, Ordering::SeqCst);
    assert_eq!(
        raw(r.addr, "GET", "/healthz", &[("Host", &host)], b"")
            .await
            .status,
        503
    );
}

#[tokio::test]
async fn unknown_ids_are_404_and_bad_parameters_are_named() {
    let r = rig().await;
    let nf = r.get("/v1/messages/ABCDEF").await;
    assert_eq!((nf.status, nf.error_code().as_str()), (404, "not_found"));
    assert_eq!(
        r.call("POST", "/v1/messages/ABCDEF/retry", None)
            .await
            .status,
        404
    );
    assert_eq!(
        r.call("DELETE", "/v1/messages/ABCDEF", None).await.status,
        404
    );
    assert_eq!(
        r.call("POST", "/v1/messages/ABCDEF/resend", None)
            .await
            .status,
        404
    );
    assert_eq!(
        r.call("DELETE", "/v1/suppressions/nobody@example.com", None)
            .await
            .status,
        404
    );
    assert_eq!(r.get("/v1/nothing-here").await.status, 404);
    for (path, param) in [
        ("/v1/messages/not-hex", "id"),
        ("/v1/events?status=bogus", "status"),
        ("/v1/events?since=last-tuesday", "since"),
        ("/v1/events?until=2026-13-45", "until"),
        ("/v1/events?limit=0", "limit"),
        ("/v1/events?limit=abc", "limit"),
        ("/v1/events?message=xyz", "message"),
        ("/v1/events?cursor=zz", "cursor"),
        ("/v1/events?colour=red", "colour"),
        ("/v1/queue?all=maybe", "all"),
        ("/v1/queue?cursor=nothex", "cursor"),
        ("/v1/reports/undelivered?days=-1", "days"),
        ("/v1/reports/undelivered?status=delivered", "status"),
        ("/v1/suppressions?reason=annoyed", "reason"),
        ("/v1/suppressions/export?format=xml", "format"),
    ] {
        let resp = r.get(path).await;
        assert_eq!(resp.status, 400, "{path}: {}", resp.body);
        let msg = resp.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            msg.starts_with(&format!("{param}:")),
            "{path}: message {msg:?} should name {param}"
        );
    }
    let bad_addr = r.call("PUT", "/v1/suppressions/not-an-address", None).await;
    assert_eq!(bad_addr.status, 400);
    assert!(bad_addr.body.contains("address"));
}

#[tokio::test]
async fn bodies_must_be_json() {
    let r = rig().await;
    let (host, auth) = (r.host(), format!("Bearer {TOKEN}"));
    let form = raw(
        r.addr,
        "PUT",
        "/v1/suppressions/a@example.com",
        &[
            ("Host", &host),
            ("Authorization", &auth),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        b"reason=manual",
    )
    .await;
    assert_eq!(form.status, 415);
    let plain = raw(
        r.addr,
        "POST",
        "/v1/erase",
        &[
            ("Host", &host),
            ("Authorization", &auth),
            ("Content-Type", "text/plain"),
        ],
        br#"{"address":"a@example.com"}"#,
    )
    .await;
    assert_eq!(plain.status, 415);
    let none = raw(
        r.addr,
        "POST",
        "/v1/erase",
        &[("Host", &host), ("Authorization", &auth)],
        br#"{"address":"a@example.com"}"#,
    )
    .await;
    assert_eq!(none.status, 415, "a body without a content type is refused");
    let garbage = r
        .call(
            "PUT",
            "/v1/suppressions/a@example.com",
            Some(json!({"reason": "manual", "extra": 1})),
        )
        .await;
    assert_eq!(garbage.status, 400);
    assert!(
        r.daemon
            .store
            .suppression("a@example.com")
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn queue_routes_and_paging() {
    let r = rig().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(r.submit(&[&format!("u{i}@example.net")]).await);
    }
    r.attempt(&ids[4], &[(0, 250, "2.0.0", "ok")]).await;
    let p1 = r.get("/v1/queue?limit=2").await.json();
    assert_eq!(p1["items"].as_array().unwrap().len(), 2);
    let c = p1["next_cursor"].as_str().unwrap().to_string();
    let p2 = r.get(&format!("/v1/queue?limit=2&cursor={c}")).await.json();
    assert_eq!(p2["items"].as_array().unwrap().len(), 2);
    assert!(
        p2["next_cursor"].is_null(),
        "the finished fifth message is hidden: {p2}"
    );
    let all = r.get("/v1/queue?all=true&limit=100").await.json();
    assert_eq!(all["items"].as_array().unwrap().len(), 5);
    let m = r.get(&format!("/v1/messages/{}", ids[0])).await.json();
    assert_eq!(m["recipients"][0]["status"], "queued");
    assert_eq!(m["events"][0]["status"], "queued");
    assert!(
        m["received"].as_str().unwrap().ends_with('Z'),
        "RFC 3339 times: {m}"
    );
    r.attempt(&ids[0], &[(0, 421, "4.4.2", "try later")]).await;
    let retried = r
        .call("POST", &format!("/v1/messages/{}/retry", ids[0]), None)
        .await;
    assert_eq!(retried.status, 200, "{}", retried.body);
    assert_eq!(
        retried.json()["next_attempt"].as_str(),
        Some(r.daemon.now().to_rfc3339().as_str())
    );
    assert_eq!(
        r.call("POST", &format!("/v1/messages/{}/retry", ids[4]), None)
            .await
            .status,
        409
    );
    let del = r
        .call("DELETE", &format!("/v1/messages/{}", ids[1]), None)
        .await;
    assert_eq!(del.status, 200);
    assert_eq!(del.json()["events"][0]["status"], "dropped");
    assert_eq!(r.get(&format!("/v1/messages/{}", ids[1])).await.status, 404);
    let ev = r
        .get(&format!("/v1/events?message={}", ids[1]))
        .await
        .json();
    assert_eq!(ev["items"][0]["status"], "dropped", "newest first: {ev}");
}

#[tokio::test]
async fn events_page_with_cursor_and_filters() {
    let r = rig().await;
    for i in 0..7 {
        r.clock.advance(Duration::from_secs(1));
        r.submit(&[if i % 2 == 0 {
            "even@example.net"
        } else {
            "odd@example.net"
        }])
        .await;
    }
    let mut seen = Vec::new();
    let mut path = "/v1/events?recipient=EVEN@example.net&limit=2".to_string();
    loop {
        let page = r.get(&path).await.json();
        for e in page["items"].as_array().unwrap() {
            assert_eq!(e["recipient"], "even@example.net");
            seen.push(e["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/events?recipient=EVEN@example.net&limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted, "newest first without repeats");
    let since = r
        .get("/v1/events?since=3s&status=queued,deferred")
        .await
        .json();
    assert_eq!(since["items"].as_array().unwrap().len(), 4, "{since}");
    let window = r
        .get(&format!(
            "/v1/events?since={}&until={}",
            crate::support::rig::T0
                .plus(Duration::from_secs(2))
                .to_rfc3339(),
            crate::support::rig::T0
                .plus(Duration::from_secs(3))
                .to_rfc3339()
        ))
        .await
        .json();
    assert_eq!(window["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn suppressions_need_force_to_remove_consent_entries() {
    let r = rig().await;
    let put = r
        .call(
            "PUT",
            "/v1/suppressions/Angry@Example.com",
            Some(json!({"reason": "complaint", "diagnostic": "abuse report"})),
        )
        .await;
    assert_eq!(put.status, 201, "{}", put.body);
    assert_eq!(put.json()["reason"], "complaint");
    let same = r
        .call(
            "PUT",
            "/v1/suppressions/angry@example.com",
            Some(json!({"reason": "complaint"})),
        )
        .await;
    assert_eq!(same.status, 200, "unchanged");
    let manual = r.call("PUT", "/v1/suppressions/m@example.com", None).await;
    assert_eq!(
        (manual.status, manual.json()["reason"].as_str()),
        (201, Some("manual"))
    );
    let refused = r
        .call("DELETE", "/v1/suppressions/angry@example.com", None)
        .await;
    assert_eq!(refused.status, 409);
    assert_eq!(refused.error_code(), "consent_required");
    assert!(refused.body.contains("consent"), "{}", refused.body);
    assert!(
        r.daemon
            .store
            .suppression("angry@example.com")
            .unwrap()
            .is_some()
    );
    let downgrade = r
        .call(
            "PUT",
            "/v1/suppressions/angry@example.com",
            Some(json!({"reason": "manual"})),
        )
        .await;
    assert_eq!(downgrade.status, 409);
    let list = r.get("/v1/suppressions?reason=complaint").await.json();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let forced = r
        .call(
            "DELETE",
            "/v1/suppressions/angry@example.com?force=true",
            None,
        )
        .await;
    assert_eq!(forced.status, 200);
    assert_eq!(forced.json()["removed"]["reason"], "complaint");
    assert!(
        r.daemon
            .store
            .suppression("angry@example.com")
            .unwrap()
            .is_none()
    );
    assert_eq!(
        r.call("DELETE", "/v1/suppressions/m%40example.com", None)
            .await
            .status,
        200,
        "percent-encoded address"
    );
    let log = r
        .get("/v1/events?status=suppression_added,suppression_removed")
        .await
        .json();
    assert_eq!(log["items"].as_array().unwrap().len(), 4, "{log}");
}

#[tokio::test]
async fn import_and_export() {
    let r = rig().await;
    let (host, auth) = (r.host(), format!("Bearer {TOKEN}"));
    let csv = "address,reason,time,diagnostic\nx@example.com,hard_bounce,2026-11-01T10:00:00Z,550 5.1.1 gone\n@bad,manual,,\nf@example.com,manual,,=SUM(A1:A9)\n";
    let imp = raw(
        r.addr,
        "POST",
        "/v1/suppressions/import",
        &[
            ("Host", &host),
            ("Authorization", &auth),
            ("Content-Type", "text/csv"),
        ],
        csv.as_bytes(),
    )
    .await;
    assert_eq!(imp.status, 200, "{}", imp.body);
    let st = imp.json();
    assert_eq!(st["added"], 2);
    assert_eq!(st["errors"].as_array().unwrap().len(), 1);
    let form = raw(
        r.addr,
        "POST",
        "/v1/suppressions/import",
        &[
            ("Host", &host),
            ("Authorization", &auth),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        csv.as_bytes(),
    )
    .await;
    assert_eq!(form.status, 415);
    let out = r.get("/v1/suppressions/export?format=csv").await;
    assert!(out.header("content-type").unwrap().starts_with("text/csv"));
    assert!(
        out.body.contains("'=SUM(A1:A9)") && !out.body.contains(",=SUM"),
        "{}",
        out.body
    );
    let jl = r.get("/v1/suppressions/export?format=jsonl").await;
    let lines: Vec<serde_json::Value> = jl
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["time"], "2026-11-01T10:00:00Z");
}

#[tokio::test]
async fn resend_is_refused_for_a_suppressed_address() {
    let r = rig().await;
    let id = r.submit(&["typo@example.nte"]).await;
    r.attempt(&id, &[(0, 550, "5.1.1", "no such user")]).await;
    let refused = r
        .call("POST", &format!("/v1/messages/{id}/resend"), None)
        .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(refused.error_code(), "suppressed");
    assert!(
        refused.body.contains("hard_bounce"),
        "the reason is given: {}",
        refused.body
    );
    let also = r
        .call(
            "POST",
            &format!("/v1/messages/{id}/resend"),
            Some(json!({"to": "TYPO@example.nte"})),
        )
        .await;
    assert_eq!(also.status, 409);
    let bad = r
        .call(
            "POST",
            &format!("/v1/messages/{id}/resend"),
            Some(json!({"to": "no at sign"})),
        )
        .await;
    assert_eq!(bad.status, 400);
    let ok = r
        .call(
            "POST",
            &format!("/v1/messages/{id}/resend"),
            Some(json!({"to": "typo@example.net"})),
        )
        .await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    let new_id = ok.json()["queue_id"].as_str().unwrap().to_string();
    let m = r.get(&format!("/v1/messages/{new_id}")).await.json();
    assert_eq!(m["resent_from"], id.as_str());
    assert_eq!(m["events"][0]["linked_queue_id"], id.as_str());
    let old = r
        .get(&format!("/v1/events?message={id}&status=resent"))
        .await
        .json();
    assert_eq!(old["items"][0]["linked_queue_id"], new_id.as_str());
}

#[tokio::test]
async fn undelivered_report_over_a_mix_of_outcomes() {
    let r = rig().await;
    let a = r
        .submit(&["ok@example.net", "gone@example.net", "slow@example.net"])
        .await;
    r.attempt(
        &a,
        &[
            (0, 250, "2.0.0", "ok"),
            (1, 550, "5.1.1", "no such user"),
            (2, 451, "4.3.0", "try later"),
        ],
    )
    .await;
    let b = r.submit(&["late@example.net"]).await;
    r.attempt(&b, &[(0, 451, "4.3.0", "try later")]).await;
    r.clock.advance(Duration::from_secs(600));
    r.attempt(&b, &[(0, 250, "2.0.0", "ok")]).await;
    r.call("PUT", "/v1/suppressions/blocked@example.net", None)
        .await;
    r.submit(&["blocked@example.net"]).await;
    let rep = r.get("/v1/reports/undelivered?days=30").await.json();
    let mut got: Vec<(String, String)> = rep["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["recipient"].as_str().unwrap().into(),
                i["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("blocked@example.net".into(), "dropped".into()),
            ("gone@example.net".into(), "bounced".into()),
            ("slow@example.net".into(), "deferred".into())
        ],
        "{rep}"
    );
    assert_eq!(
        rep["summary"],
        json!({"bounced": 1, "deferred": 1, "dropped": 1})
    );
    let gone = rep["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["status"] == "bounced")
        .unwrap()
        .clone();
    assert_eq!(gone["diagnostic"], "550 5.1.1 no such user");
    assert_eq!(gone["reason"], "userunknown");
    let only = r.get("/v1/reports/undelivered?status=dropped").await.json();
    assert_eq!(only["total"], 1);
}

#[tokio::test]
async fn erase_leaves_nothing_for_the_address() {
    let r = rig().await;
    let a = r.submit(&["Forget.Me@example.net"]).await;
    r.attempt(&a, &[(0, 550, "5.1.1", "<forget.me@example.net>: unknown")])
        .await;
    r.submit(&["friend@example.net", "forget.me@example.net"])
        .await;
    r.submit(&["bystander@example.net"]).await;
    let st = r
        .call(
            "POST",
            "/v1/erase",
            Some(json!({"address": "FORGET.ME@example.net"})),
        )
        .await;
    assert_eq!(st.status, 200, "{}", st.body);
    let st = st.json();
    assert_eq!(st["messages"], 2);
    assert_eq!(st["suppression_kept"], true);
    for t in TreeId::ALL {
        let n = r
            .daemon
            .store
            .tree_mentions(t, "forget.me@example.net")
            .unwrap();
        if t == TreeId::Suppressions {
            assert_eq!(n, 1, "only the suppression entry (reason and time) remains");
        } else {
            assert_eq!(n, 0, "{t:?} still names the address");
        }
    }
    let ev = r
        .get("/v1/events?recipient=forget.me@example.net")
        .await
        .json();
    assert!(ev["items"].as_array().unwrap().is_empty());
    let s = r
        .daemon
        .store
        .suppression("forget.me@example.net")
        .unwrap()
        .unwrap();
    assert!(s.diagnostic.is_none() && s.event_id.is_none());
    assert_eq!(
        r.get("/v1/queue").await.json()["items"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "the bystander's message and the shared one (for friend@) stay"
    );
    assert_eq!(st["messages_kept"], 1);
}

/// Every path and method in openapi.json answers through the router (not the 404 fallback or 405).
#[tokio::test]
async fn every_documented_route_is_routed() {
    let r = rig().await;
    let doc: serde_json::Value = serde_json::from_str(rebound::api::OPENAPI).unwrap();
    let mut n = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{id}", "ABCDEF")
            .replace("{address}", "x@example.com");
        for method in ops.as_object().unwrap().keys() {
            let resp = r.call(&method.to_uppercase(), &concrete, None).await;
            assert_ne!(resp.status, 405, "{method} {path}");
            assert!(
                !(resp.status == 404 && resp.body.contains("no such route")),
                "{method} {path} is not routed"
            );
            n += 1;
        }
    }
    assert!(n >= 15);
    assert_eq!(r.get("/v1/openapi.json").await.json()["openapi"], "3.1.0");
}
