//! HTML output: [`esc`], which every value put in a page goes through (text and
//! attribute values alike), the page layout (navigation, sign-out, notice), the
//! style sheet (served from `/ui/console.css`: no inline style, no other host),
//! and small pieces the pages share (status words, time, forms, paging links).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::session::Who;
use crate::model::time::Timestamp;

/// The CSP of every console page: nothing runs, styles and frames come from here only.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Escapes text for HTML text and quoted attribute values: `& < > " '` become entities;
/// control characters other than tab, CR and LF are dropped.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// [`esc`] of an optional value, `-` when absent.
pub fn esc_opt(s: Option<&str>) -> String {
    s.map(esc).unwrap_or_else(|| "-".into())
}

/// A time as people read it (UTC, to the second), in a `<time>` element.
pub fn time(t: Timestamp) -> String {
    let iso = t.to_rfc3339();
    let shown = iso.trim_end_matches('Z').replacen('T', " ", 1);
    format!("<time datetime=\"{}\">{}</time>", esc(&iso), esc(&shown))
}

/// A status word (README "What happens to each recipient") as a coloured label.
pub fn status(word: &str) -> String {
    let class: String = word
        .chars()
        .filter(|c| c.is_ascii_lowercase() || *c == '_')
        .collect();
    format!("<span class=\"st st-{class}\">{}</span>", esc(word))
}

/// The hidden CSRF field of a form.
pub fn csrf_field(who: &Who) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        super::csrf::FIELD,
        esc(&who.csrf)
    )
}

/// A POST form to `action` with hidden `fields`, the CSRF token and `extra` markup before the button.
pub fn action_form(
    who: &Who,
    action: &str,
    fields: &[(&str, &str)],
    extra: &str,
    button: &str,
    class: &str,
) -> String {
    let mut f = format!(
        "<form method=\"post\" action=\"{}\" class=\"inline {}\">{}",
        esc(action),
        esc(class),
        csrf_field(who)
    );
    for (k, v) in fields {
        f.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            esc(k),
            esc(v)
        ));
    }
    f.push_str(extra);
    f.push_str(&format!(
        "<button type=\"submit\">{}</button></form>",
        esc(button)
    ));
    f
}

/// A "next page" link to `path` with `query` (already encoded), or nothing.
pub fn next_link(path: &str, query: Option<String>, label: &str) -> String {
    match query {
        Some(q) => format!(
            "<p class=\"paging\"><a rel=\"next\" href=\"{}?{}\">{} →</a></p>",
            esc(path),
            esc(&q),
            esc(label)
        ),
        None => String::new(),
    }
}

/// The navigation entries: (path, label).
const NAV: [(&str, &str); 5] = [
    ("/ui/", "Dashboard"),
    ("/ui/undelivered", "Undelivered"),
    ("/ui/log", "Comms log"),
    ("/ui/suppressions", "Suppressions"),
    ("/ui/queue", "Queue"),
];

/// A whole page: layout around `body` (already escaped markup), for the signed-in `who`.
pub fn page(who: &Who, current: &str, title: &str, body: &str) -> String {
    let mut nav = String::new();
    for (path, label) in NAV {
        let cur = if path == current {
            " aria-current=\"page\""
        } else {
            ""
        };
        nav.push_str(&format!("<a href=\"{path}\"{cur}>{label}</a>"));
    }
    let notice = match &who.notice {
        Some((true, m)) => format!("<p class=\"notice error\" role=\"alert\">{}</p>", esc(m)),
        Some((false, m)) => format!("<p class=\"notice ok\" role=\"status\">{}</p>", esc(m)),
        None => String::new(),
    };
    let signout = format!(
        "<form method=\"post\" action=\"/ui/logout\" class=\"signout\">{}<span class=\"who\">{} <small>({})</small></span> <button type=\"submit\">Sign out</button></form>",
        csrf_field(who),
        esc(&who.user),
        esc(who.role.as_str())
    );
    shell(
        title,
        &format!(
            "<header><span class=\"brand\">rebound</span><nav>{nav}</nav>{signout}</header><main><h1>{}</h1>{notice}{body}</main>",
            esc(title)
        ),
    )
}

/// The document around `inner`.
pub fn shell(title: &str, inner: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta name=\"referrer\" content=\"same-origin\"><title>{} · rebound</title><link rel=\"stylesheet\" href=\"/ui/console.css\"></head><body>{inner}</body></html>",
        esc(title)
    )
}

/// An HTML response with the console's security headers.
pub fn respond(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A signed-in error page (`status`, a sentence saying what happened).
pub fn error_page(who: &Who, status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<p class=\"notice error\" role=\"alert\">{}</p><p><a href=\"/ui/\">Back to the dashboard</a></p>",
        esc(message)
    );
    respond(
        status,
        page(who, "", status.canonical_reason().unwrap_or("Error"), &body),
    )
}

/// A 303 to `to` (a local path), with extra headers.
pub fn see_other(to: &str, cookies: &[String]) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `GET /ui/console.css`.
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

const CSS: &str = r#":root{--fg:#1d2330;--muted:#5b6473;--line:#d9dde5;--bg:#f6f7f9;--card:#fff;--accent:#1f5fbf;--bad:#b42318;--warn:#a15c07;--good:#137333}
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1rem;padding:.5rem 1rem;background:#16213a;color:#fff}
header a{color:#dfe7ff;text-decoration:none;padding:.2rem .4rem;border-radius:4px}header a[aria-current]{background:#2f4272;color:#fff}
header nav{display:flex;flex-wrap:wrap;gap:.25rem;flex:1}.brand{font-weight:700;letter-spacing:.02em}
.signout{display:flex;gap:.5rem;align-items:center}.signout button{background:transparent;color:#fff;border:1px solid #8fa0c8}
main{padding:1rem;max-width:84rem;margin:0 auto}h1{font-size:1.4rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(14rem,1fr));gap:.8rem}.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.8rem}
.big{font-size:1.8rem;font-weight:650}.muted,small{color:var(--muted)}
.scroll{overflow-x:auto;background:var(--card);border:1px solid var(--line);border-radius:8px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}th{font-size:.85rem;color:var(--muted);white-space:nowrap}
th a{color:inherit}td.diag{max-width:28rem;overflow-wrap:anywhere}tr:last-child td{border-bottom:0}
.st{display:inline-block;padding:0 .45rem;border-radius:999px;font-size:.85rem;background:#eef1f6;white-space:nowrap}
.st-delivered{background:#e3f4e8;color:var(--good)}.st-bounced,.st-failed,.st-complained,.st-expired{background:#fde8e6;color:var(--bad)}
.st-deferred,.st-queued,.st-delayed{background:#fff3dc;color:var(--warn)}.st-dropped,.st-unsubscribed{background:#eceef2;color:#444}
.cross{color:var(--bad);font-weight:700}.struck{text-decoration:line-through;color:var(--muted)}
form.filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin:0 0 1rem}form.filters label{display:flex;flex-direction:column;font-size:.85rem;color:var(--muted)}
input,select,button{font:inherit;padding:.3rem .5rem;border:1px solid #b8bfcc;border-radius:5px;background:#fff;color:var(--fg)}
button{background:var(--accent);color:#fff;border-color:var(--accent);cursor:pointer}button.danger,.danger button{background:var(--bad);border-color:var(--bad)}
form.inline{display:inline-flex;flex-wrap:wrap;gap:.3rem;align-items:center;margin:.1rem 0}
.notice{padding:.6rem .8rem;border-radius:6px}.notice.ok{background:#e3f4e8}.notice.error{background:#fde8e6}
.paging{margin:1rem 0}details summary{cursor:pointer;color:var(--accent)}dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem .8rem;margin:.4rem 0}dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#fff;border:1px solid var(--line);padding:.6rem;border-radius:6px;font-size:.85rem}
iframe.preview{width:100%;height:28rem;border:1px solid var(--line);border-radius:6px;background:#fff}
.login{max-width:24rem;margin:3rem auto;background:var(--card);border:1px solid var(--line);border-radius:10px;padding:1.2rem}.login label{display:block;margin:.6rem 0}.login input{width:100%}
svg.chart{width:100%;height:auto;max-height:10rem}.summary a{margin-right:.8rem}
@media (max-width:40rem){main{padding:.6rem}th,td{padding:.35rem .4rem}.hide-narrow{display:none}header{padding:.4rem .6rem}}
"#;
