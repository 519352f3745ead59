//! MX routing through an in-process DNS server: preference order with fallback to
//! the next host, implicit MX, null MX and NXDOMAIN.

use crate::support::config::delivery as config;
use crate::support::mx::{Mode, Script, ScriptedMx, a, dns_server, mx, tx};
use rebound::delivery::outbound::Deliverer;

async fn deliverer(records: Vec<hickory_server::proto::rr::Record>, port: u16) -> Deliverer {
    let ns = dns_server(records).await;
    let mut cfg = config();
    cfg.nameservers = vec![ns];
    cfg.mx_port = port;
    Deliverer::new(&cfg, "relay.test").unwrap()
}

#[tokio::test]
async fn mx_in_preference_order_with_fallback_past_dead_and_busy_hosts() {
    let good = ScriptedMx::start(Script::default()).await;
    let port = good.addr.port();
    let busy = ScriptedMx::start_on(
        format!("127.0.0.3:{port}").parse().unwrap(),
        Script {
            mode: Mode::Greeting("421 4.3.2 busy"),
            ..Script::default()
        },
    )
    .await;
    let d = deliverer(
        vec![
            mx("mail.test.", 5, "busy.test."),
            mx("mail.test.", 10, "dead.test."),
            mx("mail.test.", 20, "good.test."),
            a("busy.test.", "127.0.0.3"),
            a("dead.test.", "127.0.0.2"),
            a("good.test.", "127.0.0.1"),
        ],
        port,
    )
    .await;
    let out = d
        .deliver(
            "mail.test",
            vec![tx(
                "s@app.test",
                &["ok@mail.test", "unknown@mail.test"],
                b"hi\r\n",
            )],
        )
        .await;
    assert_eq!(out[0][0].reply.code, 250);
    assert_eq!(out[0][1].reply.diagnostic(), "550 5.1.1 User unknown");
    assert_eq!(out[0][0].remote_host.as_deref(), Some("good.test"));
    assert_eq!(busy.record().connections, 1);
    assert_eq!(good.record().messages.len(), 1);
}

#[tokio::test]
async fn implicit_mx_uses_the_domain_address() {
    let good = ScriptedMx::start(Script::default()).await;
    let d = deliverer(vec![a("plain.test.", "127.0.0.1")], good.addr.port()).await;
    let out = d
        .deliver(
            "plain.test",
            vec![tx("s@app.test", &["ok@plain.test"], b"hi\r\n")],
        )
        .await;
    assert_eq!(out[0][0].reply.code, 250);
    assert_eq!(out[0][0].remote_host.as_deref(), Some("plain.test"));
}

#[tokio::test]
async fn null_mx_is_permanent_556() {
    let d = deliverer(vec![mx("nomail.test.", 0, ".")], 1).await;
    let out = d
        .deliver(
            "nomail.test",
            vec![tx(
                "s@app.test",
                &["a@nomail.test", "b@nomail.test"],
                b"hi\r\n",
            )],
        )
        .await;
    for o in &out[0] {
        assert!(o.reply.synthetic);
        assert_eq!(
            o.reply.diagnostic().split(' ').take(2).collect::<Vec<_>>(),
            ["556", "5.1.10"]
        );
    }
}

#[tokio::test]
async fn nxdomain_is_permanent_550_5_1_2() {
    let d = deliverer(vec![a("other.test.", "127.0.0.1")], 1).await;
    let out = d
        .deliver(
            "nosuch.test",
            vec![tx("s@app.test", &["a@nosuch.test"], b"hi\r\n")],
        )
        .await;
    let r = &out[0][0].reply;
    assert_eq!(
        (r.code, r.enhanced.unwrap().to_string(), r.synthetic),
        (550, "5.1.2".to_string(), true)
    );
}

#[tokio::test]
async fn unreachable_nameserver_is_temporary_4_4_3() {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    drop(sock);
    let mut cfg = config();
    cfg.nameservers = vec![addr];
    let out = Deliverer::new(&cfg, "relay.test")
        .unwrap()
        .deliver("x.test", vec![tx("s@app.test", &["a@x.test"], b"hi\r\n")])
        .await;
    let r = &out[0][0].reply;
    assert_eq!(
        (r.code, r.enhanced.unwrap().to_string()),
        (451, "4.4.3".to_string())
    );
}
