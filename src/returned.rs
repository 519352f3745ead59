//! Returned mail (placeholder until the bounce parser lands): records an `unverified` event.
use crate::model::{Event, EventKind, Source};
use crate::relay::Relay;
use crate::store::{StoreError, WriteSet};

pub fn ingest(relay: &Relay, raw: &[u8], envelope_rcpt: Option<&str>, ws: &mut WriteSet) -> Result<Vec<Event>, StoreError> {
    let mut ev = Event::new(EventKind::Unverified, relay.now());
    ev.source = Some(Source::Dsn);
    ev.diagnostic = Some(format!("{} bytes to {}", raw.len(), envelope_rcpt.unwrap_or("-")));
    Ok(vec![relay.record(ws, ev)?])
}
