//! The communications log read in the order of an index whose keys are
//! `group ‖ event key` (`ev_status`: status name ‖ 0 ‖ event key): groups in
//! ascending or descending byte order, and inside each group newest first. The
//! console's and the API's sort by status use it, so that order covers the whole
//! log and a page costs what it shows, not the log's size. A page resumes after
//! `(group, event key)`, the last row of the page before; a group's events
//! outside the time bounds are not read (each group is one key range).

use std::ops::Bound;

use super::events::{EventQuery, PAGE_BYTES, approx_size, event_key, matches, prev_key};
use super::{Store, StoreError, TreeId};
use crate::model::Event;

/// Index entries a page looks at, at most (a page of a filter that matches little stops
/// there, shorter, with a cursor to go on).
pub const LOOK_BUDGET: usize = 20_000;

/// Where a grouped read resumes: inside `group`, with the events older than `below`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCursor {
    pub group: Vec<u8>,
    pub below: [u8; 16],
}

/// One page in group order, and where the next one starts (`None`: the end).
#[derive(Debug, Clone)]
pub struct GroupedPage {
    pub events: Vec<Event>,
    /// For each event, its group (the index key without the event key).
    pub groups: Vec<Vec<u8>>,
    pub next: Option<GroupCursor>,
}

/// What a grouped read is asked: the index, the direction of its groups, the filter.
#[derive(Debug, Clone, Copy)]
pub struct GroupedQuery<'a> {
    pub tree: TreeId,
    pub groups_descending: bool,
    pub query: &'a EventQuery,
    pub after: Option<&'a GroupCursor>,
}

impl Store {
    /// Reads one page of `g.query`'s events in group order (see the module doc).
    pub fn query_grouped(&self, g: GroupedQuery<'_>) -> Result<GroupedPage, StoreError> {
        let limit = g.query.limit.clamp(1, 10_000);
        let tree = self.tree(g.tree);
        let mut page = GroupedPage {
            events: Vec::new(),
            groups: Vec::new(),
            next: None,
        };
        let (mut group, mut below) = match g.after {
            Some(c) => (Some(c.group.clone()), c.below),
            None => (edge_group(tree, g.groups_descending)?, [0xff; 16]),
        };
        let (mut looked, mut bytes) = (0usize, 0usize);
        while let Some(gr) = group {
            if !group_wanted(&gr, g) {
                below = [0xff; 16];
                group = next_group(tree, &gr, g.groups_descending)?;
                continue;
            }
            for item in group_range(tree, &gr, g.query, &below).rev() {
                let (k, _) = item?;
                looked += 1;
                let key: [u8; 16] = k[k.len() - 16..].try_into().unwrap_or([0; 16]);
                if let Some(ev) = self.event_by_key(&key)?
                    && matches(&ev, g.query)
                {
                    bytes += approx_size(&ev);
                    page.events.push(ev);
                    page.groups.push(gr.clone());
                }
                if page.events.len() >= limit || bytes >= PAGE_BYTES || looked >= LOOK_BUDGET {
                    page.next = Some(GroupCursor {
                        group: gr.clone(),
                        below: key,
                    });
                    return Ok(page);
                }
            }
            below = [0xff; 16];
            group = next_group(tree, &gr, g.groups_descending)?;
        }
        Ok(page)
    }
}

/// False for a status group the query's status filter leaves out (its events are not read).
fn group_wanted(group: &[u8], g: GroupedQuery<'_>) -> bool {
    if g.tree != TreeId::EvStatus || g.query.statuses.is_empty() {
        return true;
    }
    let word = group.strip_suffix(&[0]).unwrap_or(group);
    g.query.statuses.iter().any(|s| s.as_bytes() == word)
}

/// A group's keys within the query's time bounds and older than `below`.
fn group_range(tree: &sled::Tree, group: &[u8], q: &EventQuery, below: &[u8; 16]) -> sled::Iter {
    let lo = q.since.map(|t| event_key(t, 0)).unwrap_or([0; 16]);
    let hi = q
        .until
        .map(|t| event_key(t, u64::MAX))
        .unwrap_or([0xff; 16]);
    let below = prev_key(below);
    let hi = if below.as_slice() < hi.as_slice() {
        below
    } else {
        hi.to_vec()
    };
    let (mut a, mut b) = (group.to_vec(), group.to_vec());
    a.extend_from_slice(&lo);
    b.extend_from_slice(&hi);
    if a > b {
        // An empty range (sled refuses a reversed one).
        return tree.range(a.clone()..a);
    }
    tree.range(a..=b)
}

/// The group of a key (the key without its trailing event key).
fn group_of(key: &[u8]) -> Vec<u8> {
    key[..key.len().saturating_sub(16)].to_vec()
}

/// The first group (or the last one, descending).
fn edge_group(tree: &sled::Tree, descending: bool) -> Result<Option<Vec<u8>>, StoreError> {
    let kv = if descending {
        tree.iter().next_back()
    } else {
        tree.iter().next()
    };
    Ok(kv.transpose()?.map(|(k, _)| group_of(&k)))
}

/// The group after `group` in the direction read (one seek).
fn next_group(
    tree: &sled::Tree,
    group: &[u8],
    descending: bool,
) -> Result<Option<Vec<u8>>, StoreError> {
    let kv = if descending {
        let mut lo = group.to_vec();
        lo.extend_from_slice(&[0; 16]);
        tree.range(..lo).next_back()
    } else {
        let mut hi = group.to_vec();
        hi.extend_from_slice(&[0xff; 16]);
        tree.range::<Vec<u8>, _>((Bound::Excluded(hi), Bound::Unbounded))
            .next()
    };
    Ok(kv.transpose()?.map(|(k, _)| group_of(&k)))
}
