//! Fuzzes what the web console reads from a browser: the `Cookie` header and
//! urlencoded forms never panic, a cookie value found is a plain token, and a
//! redirect target taken from a form is always a console path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rebound::api::console::http::{Form, cookie, local_path};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(v) = cookie(&text, "rebound_session") {
        assert!(v.bytes().all(|b| b.is_ascii_graphic() && b != b';' && b != b'"'), "{v:?}");
    }
    let form = Form::parse(data);
    let back = local_path(form.get("back"), "/ui/");
    assert!(back.starts_with("/ui/") && !back.contains("//") && !back.contains('\\'), "{back:?}");
    let _ = form.raw("password");
});
