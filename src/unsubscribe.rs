//! One-click unsubscribe (RFC 8058); placeholder until the unsubscribe work lands.
use crate::model::Event;
use crate::relay::Relay;
use crate::store::{StoreError, WriteSet};

/// Handles mail to the unsubscribe mailto address; `None` when `envelope_rcpt` is not one.
pub fn by_mail(relay: &Relay, raw: &[u8], envelope_rcpt: Option<&str>, ws: &mut WriteSet) -> Result<Option<Vec<Event>>, StoreError> {
    let _ = (relay, raw, envelope_rcpt, ws);
    Ok(None)
}
