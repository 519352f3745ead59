//! Delivery status notifications to the original sender (`bounces.notify_sender`); placeholder.
use crate::model::Event;
use crate::relay::Relay;
use crate::store::StoreError;
use crate::store::queue::MessageRecord;

pub fn maybe_notify(relay: &Relay, rec: &MessageRecord, events: &[Event]) -> Result<Option<u64>, StoreError> {
    let _ = (relay, rec, events);
    Ok(None)
}
