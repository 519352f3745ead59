//! Fuzzes the queue record decoder (poison records from disk): never a panic,
//! and whatever decodes re-encodes to a record that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rebound::store::MessageRecord;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = MessageRecord::decode(data) {
        let bytes = r.encode().expect("a decoded record encodes");
        let again = MessageRecord::decode(&bytes).expect("a decoded record re-encodes");
        assert_eq!(again, r);
    }
});
