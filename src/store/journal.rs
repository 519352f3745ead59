//! Outcomes that could not be recorded before the daemon stopped: a faulted
//! store cannot take them, so at shutdown the scheduler writes their write sets
//! to a plain file next to the database (the disk usually takes a small file
//! once the database has given up), and the next start applies them before
//! anything else. Without this, a message delivered during the fault would be
//! delivered again after the restart.
//!
//! Format: a magic line, then per write set its op count (u32), and per op the
//! tree index (u8), the key (u32 length + bytes) and the value (u8 present flag,
//! then u32 length + bytes). All integers big-endian.

use std::io::Write;
use std::path::PathBuf;

use super::{Store, StoreError, TREE_NAMES, WriteSet};

const MAGIC: &[u8] = b"rebound-unrecorded-1\n";
const FILE: &str = "unrecorded-outcomes";

impl Store {
    fn journal_path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// Writes `sets` to the journal (replacing it) and makes it durable.
    pub fn save_unrecorded(&self, sets: &[WriteSet]) -> std::io::Result<PathBuf> {
        let mut bytes = MAGIC.to_vec();
        for ws in sets {
            encode(ws, &mut bytes);
        }
        let path = self.journal_path();
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(self.dir.as_path())?.sync_all()?;
        Ok(path)
    }

    /// The write sets saved by [`Store::save_unrecorded`], if any (empty when there is no journal).
    pub fn unrecorded(&self) -> Result<Vec<WriteSet>, StoreError> {
        let bytes = match std::fs::read(self.journal_path()) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::Db(format!("{FILE}: {e}"))),
        };
        let corrupt = || StoreError::Corrupt {
            tree: FILE,
            detail: "truncated or unknown format".into(),
        };
        let mut rest = bytes.strip_prefix(MAGIC).ok_or_else(corrupt)?;
        let mut sets = Vec::new();
        while !rest.is_empty() {
            sets.push(decode(&mut rest).ok_or_else(corrupt)?);
        }
        Ok(sets)
    }

    /// Removes the journal once its write sets are durable in the database.
    pub fn clear_unrecorded(&self) -> std::io::Result<()> {
        match std::fs::remove_file(self.journal_path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => std::fs::File::open(self.dir.as_path())?.sync_all(),
        }
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn encode(ws: &WriteSet, out: &mut Vec<u8>) {
    out.extend_from_slice(&(ws.ops.len() as u32).to_be_bytes());
    for (tree, key, value) in &ws.ops {
        out.push(*tree as u8);
        put_bytes(out, key);
        match value {
            Some(v) => {
                out.push(1);
                put_bytes(out, v);
            }
            None => out.push(0),
        }
    }
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, tail) = rest.split_at_checked(n)?;
    *rest = tail;
    Some(head)
}

fn take_u32(rest: &mut &[u8]) -> Option<usize> {
    Some(u32::from_be_bytes(take(rest, 4)?.try_into().ok()?) as usize)
}

fn take_bytes(rest: &mut &[u8]) -> Option<Vec<u8>> {
    let n = take_u32(rest)?;
    Some(take(rest, n)?.to_vec())
}

fn decode(rest: &mut &[u8]) -> Option<WriteSet> {
    let n = take_u32(rest)?;
    let mut ws = WriteSet::new();
    for _ in 0..n {
        let tree = TREE_NAMES.get(usize::from(*take(rest, 1)?.first()?))?.0;
        let key = take_bytes(rest)?;
        let value = match take(rest, 1)?.first()? {
            0 => None,
            1 => Some(take_bytes(rest)?),
            _ => return None,
        };
        ws.ops.push((tree, key, value));
    }
    Some(ws)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TreeId;

    #[test]
    fn saved_write_sets_come_back_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store.unrecorded().unwrap().is_empty());
        let mut a = WriteSet::new();
        a.insert(TreeId::Messages, b"1".to_vec(), b"record".to_vec());
        a.remove(TreeId::Schedule, b"old".to_vec());
        let mut b = WriteSet::new();
        b.insert(TreeId::Outbox, b"e".to_vec(), Vec::new());
        store.save_unrecorded(&[a.clone(), b.clone()]).unwrap();
        let back = store.unrecorded().unwrap();
        assert_eq!(
            back.iter().map(|w| w.ops.clone()).collect::<Vec<_>>(),
            vec![a.ops, b.ops]
        );
        store.clear_unrecorded().unwrap();
        assert!(store.unrecorded().unwrap().is_empty());
        std::fs::write(
            dir.path().join(FILE),
            b"rebound-unrecorded-1\n\x00\x00\x00\x05",
        )
        .unwrap();
        assert!(matches!(
            store.unrecorded(),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
