//! Unit tests of the console: escaping, cookies and forms, CSRF, sessions, passwords and
//! roles, the preview sanitiser, and pages rendered from hostile data.

use std::time::{Duration, Instant};

use super::html::esc;
use super::http::{Form, cookie, local_path};
use super::session::{IDLE, MAX_AGE, Sessions, Who, set_cookie};
use super::users::{
    ConsoleUser, Role, TOKEN_USER, Users, UsersError, check_users, hash_password, verify_password,
};
use super::{csrf, preview};
use crate::config::{Config, Secret};

const HOSTILE: &str = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>&amp;";

fn who(role: Role) -> Who {
    Who {
        id: "sid".into(),
        user: "<b>eve</b>".into(),
        role,
        csrf: "c".repeat(64),
        notice: Some((true, "<i>boom</i>".into())),
    }
}

#[test]
fn escaping_leaves_no_markup() {
    assert_eq!(
        esc("<a href=\"x\">'&'</a>"),
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
    );
    assert_eq!(esc("tab\tnl\nnul\0bell\x07 é ✖"), "tab\tnl\nnulbell é ✖");
    let e = esc(HOSTILE);
    assert!(
        !e.contains('<') && !e.contains('>') && !e.contains('"') && !e.contains('\''),
        "{e}"
    );
}

#[test]
fn cookies_are_read_by_name_only() {
    assert_eq!(
        cookie("a=1; rebound_session=abc; b=2", "rebound_session"),
        Some("abc")
    );
    assert_eq!(
        cookie(
            "xrebound_session=evil; rebound_session=\"q1\"",
            "rebound_session"
        ),
        Some("q1")
    );
    assert_eq!(cookie("rebound_session", "rebound_session"), None);
    assert_eq!(
        cookie("rebound_session=a b", "rebound_session"),
        None,
        "spaces are not a cookie value"
    );
    assert_eq!(cookie("", "x"), None);
    let c = set_cookie("rebound_session", "v", "/ui", true, None);
    for part in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Secure"] {
        assert!(c.contains(part), "{c}");
    }
    assert!(!set_cookie("n", "v", "/ui", false, Some(0)).contains("Secure"));
    assert!(set_cookie("n", "", "/ui", false, Some(0)).contains("Max-Age=0"));
}

#[test]
fn forms_decode_and_keep_the_first_value() {
    let f = Form::parse(b"to=a%40b.test&to=second&name=+Vera+&empty=&bad=%zz%&csrf=x");
    assert_eq!(f.get("to"), Some("a@b.test"));
    assert_eq!(f.get("name"), Some("Vera"));
    assert_eq!(f.raw("name"), Some(" Vera "));
    assert_eq!(f.get("empty"), None);
    assert_eq!(f.get("bad"), Some("%zz%"));
    assert_eq!(
        Form::parse(&[0xff, b'=', 0xfe]).get("\u{fffd}"),
        Some("\u{fffd}")
    );
    let many: Vec<u8> = (0..500)
        .flat_map(|i| format!("k{i}=v&").into_bytes())
        .collect();
    assert_eq!(Form::parse(&many).get("k63"), Some("v"));
    assert_eq!(Form::parse(&many).get("k64"), None, "at most 64 fields");
}

#[test]
fn redirects_stay_on_the_console() {
    assert_eq!(
        local_path(Some("/ui/log?recipient=a%40b"), "/ui/"),
        "/ui/log?recipient=a%40b"
    );
    for bad in [
        "https://evil.example/",
        "//evil.example/ui/",
        "/ui//evil",
        "/ui/\\evil",
        "/other",
        "/ui/a b",
        "javascript:alert(1)",
    ] {
        assert_eq!(local_path(Some(bad), "/ui/"), "/ui/", "{bad}");
    }
    assert_eq!(local_path(None, "/ui/queue"), "/ui/queue");
}

#[test]
fn csrf_tokens_match_only_themselves() {
    let t = csrf::new_token();
    assert_eq!(t.len(), 64);
    assert_ne!(t, csrf::new_token());
    assert!(csrf::matches(&t, Some(&t)));
    assert!(!csrf::matches(&t, Some(&t[..63])));
    assert!(!csrf::matches(&t, Some("")));
    assert!(!csrf::matches(&t, None));
    assert!(
        !csrf::matches("", Some("")),
        "an empty expected token never matches"
    );
}

#[test]
fn sessions_expire_when_idle_and_at_their_max_age() {
    let s = Sessions::default();
    let t0 = Instant::now();
    let id = s.start("vera", Role::Viewer, t0);
    let w = s.get(&id, t0 + Duration::from_secs(60)).expect("live");
    assert_eq!((w.user.as_str(), w.role), ("vera", Role::Viewer));
    assert_eq!(w.csrf.len(), 64);
    assert!(s.get("not-a-session", t0).is_none());
    s.notify(&id, (false, "done".into()));
    assert_eq!(
        s.get(&id, t0 + Duration::from_secs(61)).unwrap().notice,
        Some((false, "done".into()))
    );
    assert_eq!(
        s.get(&id, t0 + Duration::from_secs(62)).unwrap().notice,
        None,
        "a notice is shown once"
    );
    assert!(
        s.get(&id, t0 + Duration::from_secs(62) + IDLE).is_none(),
        "idle too long"
    );
    assert!(s.is_empty(), "an expired session is forgotten");
    let busy = s.start("op", Role::Operator, t0);
    let mut t = t0;
    while t < t0 + MAX_AGE - IDLE {
        t += IDLE / 2;
        assert!(s.get(&busy, t).is_some());
    }
    assert!(
        s.get(&busy, t0 + MAX_AGE).is_none(),
        "ends at its max age however busy"
    );
    let gone = s.start("x", Role::Operator, t0);
    s.end(&gone);
    assert!(s.get(&gone, t0).is_none());
}

#[test]
fn passwords_and_the_token_sign_in_with_their_role() {
    let hash = hash_password("correct horse").unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(verify_password(&hash, "correct horse"));
    assert!(!verify_password(&hash, "correct horse "));
    assert!(!verify_password("not a hash", "x"));
    let mut cfg = Config::default();
    cfg.api.token = Some(Secret("the-token".into()));
    cfg.api.users = vec![
        ConsoleUser {
            name: "Vera".into(),
            password_hash: Secret(hash.clone()),
            role: Role::Viewer,
        },
        ConsoleUser {
            name: "olga".into(),
            password_hash: Secret(hash),
            role: Role::Operator,
        },
    ];
    let users = Users::new(&cfg);
    assert_eq!(
        users.check("vera", "correct horse"),
        Some(("Vera".into(), Role::Viewer))
    );
    assert_eq!(
        users.check("olga", "correct horse"),
        Some(("olga".into(), Role::Operator))
    );
    assert_eq!(users.check("olga", "wrong"), None);
    assert_eq!(users.check("nobody", "correct horse"), None);
    assert_eq!(
        users.check("", "the-token"),
        Some((TOKEN_USER.into(), Role::Operator))
    );
    assert_eq!(users.check("", "correct horse"), None);
    assert!(Role::Operator.can_act() && !Role::Viewer.can_act());
}

#[test]
fn the_users_config_is_checked() {
    let good = hash_password("pw").unwrap();
    let u = |name: &str, hash: &str| ConsoleUser {
        name: name.into(),
        password_hash: Secret(hash.into()),
        role: Role::Viewer,
    };
    assert_eq!(check_users(&[u("a", &good), u("b", &good)]), Ok(()));
    assert_eq!(check_users(&[u(" ", &good)]), Err(UsersError::EmptyName));
    assert_eq!(
        check_users(&[u("a", &good), u("A", &good)]),
        Err(UsersError::Duplicate("A".into()))
    );
    assert_eq!(
        check_users(&[u("api-token", &good)]),
        Err(UsersError::Reserved("api-token".into()))
    );
    assert_eq!(
        check_users(&[u("a", "plaintext")]),
        Err(UsersError::BadHash("a".into()))
    );
    let toml =
        format!("[[api.users]]\nname = \"vera\"\npassword_hash = \"{good}\"\nrole = \"viewer\"\n");
    let cfg = Config::from_str(&toml, "t").expect("a users entry parses");
    assert_eq!(cfg.api.users[0].role, Role::Viewer);
    assert!(
        Config::from_str(
            "[[api.users]]\nname = \"v\"\npassword_hash = \"x\"\nrole = \"viewer\"\n",
            "t"
        )
        .is_err(),
        "a bad hash is refused at load"
    );
    assert!(
        Config::from_str(&toml.replace("viewer", "admin"), "t").is_err(),
        "roles are viewer or operator"
    );
    assert!(
        !format!("{:?}", cfg.api.users[0]).contains("argon2"),
        "the hash is not printed"
    );
}

/// Every tag left in sanitised HTML, with its attributes.
fn tags(html: &str) -> Vec<String> {
    html.split('<')
        .skip(1)
        .map(|t| t.split('>').next().unwrap_or("").to_ascii_lowercase())
        .collect()
}

#[test]
fn the_sanitiser_removes_what_runs_or_loads() {
    let dirty = "<p onclick=\"x()\" style=\"color:red\">Hi <b>there</b></p><script>alert(1)</script><SCRIPT src=//e.test/x.js></SCRIPT>\
        <img src=\"http://e.test/t.png\" alt=remote><img src=\"data:image/png;base64,AAAA\" onerror=alert(1)><img src=\"data:image/svg+xml,x\">\
        <a href=\"javascript:alert(1)\">j</a><a href=\"&#106;avascript:alert(1)\">k</a><iframe src=//e.test></iframe><object data=x></object>\
        <style>@import url(http://e.test/a.css); body{background:URL(http://e.test/b)}</style><div style=\"background:url(http://e.test/c)\">d</div>\
        <!-- <script>alert(3)</script> --><svg><script>alert(4)</script></svg><form action=//e.test><input name=q></form><meta http-equiv=refresh content=0;url=//e.test>\
        <base href=//e.test/><link rel=stylesheet href=//e.test/s.css><p title='a\"b'>q</p><scr<script>ipt>alert(5)</script>";
    let clean = preview::sanitise(dirty);
    let lower = clean.to_ascii_lowercase();
    for bad in [
        "<script",
        "onclick",
        "onerror",
        "javascript:",
        "e.test",
        "<iframe",
        "<object",
        "<svg",
        "<form",
        "<input",
        "<meta",
        "<base",
        "<link",
        "@import",
        "url(",
    ] {
        assert!(!lower.contains(bad), "{bad} survived: {clean}");
    }
    for t in tags(&clean) {
        assert!(!t.contains(" on"), "an event attribute survived: {t}");
    }
    assert!(
        clean.contains("<p style=\"color:red\">Hi <b>there</b></p>"),
        "{clean}"
    );
    assert!(
        clean.contains("<img src=\"data:image/png;base64,AAAA\">"),
        "{clean}"
    );
    assert!(clean.contains("<img alt=\"remote\">"), "{clean}");
    assert!(clean.contains("title=\"a&quot;b\""), "{clean}");
    assert!(
        !clean.contains("alert(5)") || !lower.contains("<script"),
        "{clean}"
    );
    assert_eq!(
        preview::sanitise("a < b and c > d"),
        "a &lt; b and c &gt; d"
    );
    assert_eq!(preview::sanitise("<p"), "<p>");
    assert_eq!(preview::sanitise("</"), "&lt;/");
}

#[test]
fn the_preview_of_a_text_message_is_escaped_text() {
    let doc = preview::document(
        b"Subject: hi\r\nContent-Type: text/plain\r\n\r\n<script>alert(1)</script> & more\r\n",
    );
    assert!(
        doc.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"),
        "{doc}"
    );
    let html = preview::document(
        b"Subject: hi\r\nContent-Type: text/html\r\n\r\n<p>ok</p><script>alert(1)</script>\r\n",
    );
    assert!(
        html.contains("<p>ok</p>") && !html.contains("<script"),
        "{html}"
    );
    assert_eq!(
        preview::header_text(b"Subject: a\r\nTo: b\r\n\r\nbody"),
        "Subject: a\r\nTo: b"
    );
    assert_eq!(
        preview::subject(b"Subject: =?utf-8?q?Term_dates?=\r\n\r\nx").as_deref(),
        Some("Term dates")
    );
    assert!(
        preview::PREVIEW_CSP
            .starts_with("default-src 'none'; style-src 'unsafe-inline'; img-src data:")
    );
}

#[test]
fn pages_escape_hostile_data_and_hide_actions_from_viewers() {
    use crate::model::{Event, EventKind, Suppression, SuppressionReason};
    let mut ev = Event::new(
        EventKind::Bounced,
        crate::model::time::Timestamp(1_700_000_000_000),
    );
    ev.id = HOSTILE.into();
    ev.recipient = Some(format!("{HOSTILE}@x.test"));
    ev.diagnostic = Some(HOSTILE.into());
    ev.queue_id = Some(HOSTILE.into());
    ev.remote_host = Some(HOSTILE.into());
    let sup = Suppression {
        address: format!("{HOSTILE}@x.test"),
        reason: SuppressionReason::Complaint,
        time: ev.time,
        diagnostic: Some(HOSTILE.into()),
        event_id: Some(HOSTILE.into()),
    };
    let f = super::pages::log::Filters {
        recipient: Some(HOSTILE.into()),
        message: Some(HOSTILE.into()),
        ..Default::default()
    };
    for role in [Role::Operator, Role::Viewer] {
        let w = who(role);
        let sf = super::pages::suppressions::Filters {
            q: Some(HOSTILE.into()),
            ..Default::default()
        };
        let pages = [
            super::html::page(
                &w,
                "/ui/log",
                HOSTILE,
                &super::pages::log::render(
                    &f,
                    &super::pages::log::LogPage {
                        events: vec![ev.clone()],
                        next: Some(HOSTILE.into()),
                        sort: crate::admin::log::LogSort::default(),
                        notice: Some(HOSTILE.into()),
                    },
                ),
            ),
            super::pages::suppressions::render(
                &w,
                &sf,
                std::slice::from_ref(&sup),
                Some(HOSTILE),
                1,
                HOSTILE,
            ),
        ];
        for p in &pages {
            assert!(
                !p.contains("<script")
                    && !p.contains("<img")
                    && !p.contains("<b>eve")
                    && !p.contains("<i>boom"),
                "unescaped: {p}"
            );
            assert!(
                !p.contains(HOSTILE) && !p.contains("\"'>"),
                "a value broke out: {p}"
            );
        }
        assert_eq!(
            pages[1].contains("/ui/actions/unblock"),
            role == Role::Operator,
            "only operators get Remove block"
        );
        assert!(
            pages[1].contains("<s class=\"struck\""),
            "a complaint is struck through"
        );
    }
}

#[test]
fn the_chart_is_one_bar_per_hour() {
    let svg = super::pages::dashboard::chart(&[
        0, 1, 5, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10,
    ]);
    assert_eq!(svg.matches("<rect").count(), 24);
    assert!(svg.contains("max 10/h") && !svg.contains("style=") && !svg.contains("<script"));
}

#[tokio::test]
async fn the_undelivered_page_pages_through_every_row_once() {
    use crate::model::{Event, EventKind};
    use crate::store::WriteSet;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.server.data_dir = dir.path().to_path_buf();
    let daemon = crate::daemon::state::Daemon::open(
        std::sync::Arc::new(cfg),
        std::sync::Arc::new(crate::model::time::SystemClock),
    )
    .unwrap();
    let now = daemon.now();
    let total = 2 * super::pages::undelivered::PAGE + 7;
    for i in 0..total + 5 {
        let kind = if i < total {
            EventKind::Bounced
        } else {
            EventKind::Delivered
        };
        let mut e = Event::new(kind, now.minus(Duration::from_secs(60 + i as u64)));
        e.recipient = Some(format!("r{i}@x.test"));
        e.queue_id = Some(format!("{:X}", i + 1));
        daemon.store.stamp_event(&mut e).unwrap();
        let mut ws = WriteSet::new();
        daemon.store.index_current(&mut ws, &e).unwrap();
        ws.put_event(&e, false);
        daemon.store.apply(&ws).unwrap();
    }
    let mut f = super::pages::undelivered::Filters::default();
    let mut seen = Vec::new();
    loop {
        let v = super::pages::undelivered::by_index(&daemon, &f).unwrap();
        assert_eq!(
            (v.total, v.summary.clone()),
            (total, vec![("bounced".to_string(), total)])
        );
        assert!(
            v.rows.windows(2).all(|w| w[0].time >= w[1].time),
            "newest first"
        );
        seen.extend(v.rows.iter().map(|r| r.recipient.clone()));
        match v.next_cursor {
            Some(c) => f.cursor = Some(c),
            None => break,
        }
    }
    let distinct: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(
        (seen.len(), distinct.len()),
        (total, total),
        "every row once"
    );
    assert_eq!(seen[0], "r0@x.test");
    f.cursor = Some("nonsense".into());
    assert!(super::pages::undelivered::by_index(&daemon, &f).is_err());
    let only = super::pages::undelivered::Filters {
        status: Some("failed".into()),
        ..Default::default()
    };
    assert_eq!(
        super::pages::undelivered::by_index(&daemon, &only)
            .unwrap()
            .total,
        0
    );
    let bad = super::pages::undelivered::Filters {
        status: Some("delivered".into()),
        ..Default::default()
    };
    assert!(
        super::pages::undelivered::by_index(&daemon, &bad).is_err(),
        "delivered is not an undelivered status"
    );
}

#[tokio::test]
async fn the_log_sorts_by_every_column_across_every_page() {
    use crate::model::{Event, EventKind};
    use crate::store::WriteSet;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.server.data_dir = dir.path().to_path_buf();
    let daemon = crate::daemon::state::Daemon::open(
        std::sync::Arc::new(cfg),
        std::sync::Arc::new(crate::model::time::SystemClock),
    )
    .unwrap();
    let now = daemon.now();
    let total = 2 * super::pages::log::PAGE + 9;
    let mut ws = WriteSet::new();
    for i in 0..total {
        let kind = if i % 3 == 0 {
            EventKind::Bounced
        } else {
            EventKind::Delivered
        };
        let mut e = Event::new(
            kind,
            now.minus(Duration::from_secs(60 + (i as u64 * 7919) % 5000)),
        );
        e.recipient = Some(format!("r{i}@x.test"));
        e.queue_id = Some(format!("{:X}", (i * 37) % 23 + 1));
        e.diagnostic = Some(format!("{} diag", i % 5));
        daemon.store.stamp_event(&mut e).unwrap();
        ws.put_event(&e, false);
    }
    daemon.store.apply(&ws).unwrap();
    let key = |sort: &str, e: &Event| -> String {
        match sort {
            "status" => e.status.as_str().to_string(),
            "recipient" => e.recipient.clone().unwrap_or_default(),
            "message" => format!(
                "{:016X}",
                u64::from_str_radix(e.queue_id.as_deref().unwrap(), 16).unwrap()
            ),
            "diagnostic" => e.diagnostic.clone().unwrap_or_default(),
            _ => format!("{:020}", e.time.millis()),
        }
    };
    for sort in [
        "time",
        "status",
        "recipient",
        "message",
        "diagnostic",
        "newest",
        "oldest",
    ] {
        for order in ["asc", "desc"] {
            let mut f = super::pages::log::Filters {
                sort: Some(sort.into()),
                order: Some(order.into()),
                ..Default::default()
            };
            let mut seen: Vec<Event> = Vec::new();
            loop {
                let p = super::pages::log::gather(&daemon, &f).unwrap();
                assert!(p.notice.is_none(), "{sort} {order}: {:?}", p.notice);
                assert!(p.events.len() <= super::pages::log::PAGE);
                seen.extend(p.events);
                match p.next {
                    Some(c) => f.cursor = Some(c),
                    None => break,
                }
            }
            let ids: std::collections::HashSet<_> = seen.iter().map(|e| e.id.clone()).collect();
            assert_eq!(
                (seen.len(), ids.len()),
                (total, total),
                "{sort} {order}: every event once"
            );
            let got: Vec<(String, String)> =
                seen.iter().map(|e| (key(sort, e), e.id.clone())).collect();
            let mut want = got.clone();
            // the column in the order asked, ties newest first (for time: the event key itself)
            want.sort_by(|a, b| {
                let v = if order == "desc" {
                    b.0.cmp(&a.0)
                } else {
                    a.0.cmp(&b.0)
                };
                v.then(if sort == "time" || sort == "newest" || sort == "oldest" {
                    if order == "desc" {
                        b.1.cmp(&a.1)
                    } else {
                        a.1.cmp(&b.1)
                    }
                } else {
                    b.1.cmp(&a.1)
                })
            });
            assert_eq!(got, want, "{sort} {order}: ordered across every page");
        }
    }
    let f = super::pages::log::Filters {
        sort: Some("nonsense".into()),
        ..Default::default()
    };
    assert!(
        matches!(
            super::pages::log::gather(&daemon, &f),
            Err(crate::admin::AdminError::BadInput { param: "sort", .. })
        ),
        "an unknown column is refused"
    );
}
