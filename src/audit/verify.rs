//! `audit verify`: recompute a chain and name the first broken `seq`.

use std::fmt;

use tokio_stream::StreamExt;

use super::{GENESIS_HASH, row_hash};
use crate::store::{Store, StoreError, StoredAuditEvent};

/// A verified range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The chain.
    pub chain_id: String,
    /// How many events were checked.
    pub count: u64,
    /// The first and last `seq` checked (`0, 0` when empty).
    pub first_seq: i64,
    /// The last `seq` checked.
    pub last_seq: i64,
    /// `row_hash` of the last event checked (the genesis hash when empty).
    pub head: [u8; 32],
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ok: {} events, head {}",
            self.count,
            hex::encode(self.head)
        )
    }
}

/// The first thing wrong with a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// The row's content does not hash to its `row_hash`: it was changed.
    HashMismatch {
        /// Where.
        seq: i64,
    },
    /// The row hashes correctly as another `seq`: rows were reordered.
    Reordered {
        /// Where it is now.
        seq: i64,
        /// The `seq` it was written as.
        written_as: i64,
    },
    /// The row's `prev_hash` is not the previous row's `row_hash`: the
    /// link between the two rows is broken (the row's `prev_hash` was
    /// changed, or the row was put in from another chain). Reported before
    /// the row's own hash, which covers `prev_hash` and so fails too.
    PrevHashMismatch {
        /// Where.
        seq: i64,
    },
    /// A `seq` is missing: a row was deleted.
    Gap {
        /// The `seq` that should come next.
        expected: i64,
        /// The `seq` found instead (`None`: the range ended early).
        found: Option<i64>,
    },
    /// The chain head records rows that are gone: the newest were deleted.
    MissingNewest {
        /// The first missing `seq`.
        from: i64,
        /// The head's `seq`.
        head: i64,
    },
    /// The last row's hash is not the one the chain head recorded.
    HeadMismatch {
        /// The head's `seq`.
        seq: i64,
    },
}

impl Break {
    /// The first broken `seq`.
    pub fn seq(&self) -> i64 {
        match *self {
            Self::HashMismatch { seq }
            | Self::Reordered { seq, .. }
            | Self::PrevHashMismatch { seq }
            | Self::HeadMismatch { seq } => seq,
            Self::Gap { expected, .. } => expected,
            Self::MissingNewest { from, .. } => from,
        }
    }
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HashMismatch { seq } => {
                write!(
                    f,
                    "broken at seq {seq}: hash mismatch (the row was changed)"
                )
            }
            Self::Reordered { seq, written_as } => write!(
                f,
                "broken at seq {seq}: reordering (the row was written as seq {written_as})"
            ),
            Self::PrevHashMismatch { seq } => write!(
                f,
                "broken at seq {seq}: broken link (prev_hash is not the row_hash of seq {})",
                seq - 1
            ),
            Self::Gap {
                expected,
                found: Some(found),
            } => write!(
                f,
                "broken at seq {expected}: gap (rows {expected}..{} are missing)",
                found - 1
            ),
            Self::Gap {
                expected,
                found: None,
            } => {
                write!(f, "broken at seq {expected}: gap (the range ends early)")
            }
            Self::MissingNewest { from, head } => write!(
                f,
                "broken at seq {from}: the newest rows {from}..{head} are missing"
            ),
            Self::HeadMismatch { seq } => write!(
                f,
                "broken at seq {seq}: the row differs from the chain head's record"
            ),
        }
    }
}

/// How far around a mismatching row to look for the `seq` it was written as.
const REORDER_WINDOW: i64 = 16;

fn check_row(row: &StoredAuditEvent) -> Result<(), Break> {
    let Ok(prev) = <[u8; 32]>::try_from(row.prev_hash.as_slice()) else {
        return Err(Break::HashMismatch { seq: row.seq });
    };
    if row_hash(&prev, &row.chain_id, row.seq, &row.event).as_slice() == row.row_hash {
        return Ok(());
    }
    for delta in (-REORDER_WINDOW..=REORDER_WINDOW).filter(|d| *d != 0) {
        let other = row.seq + delta;
        if other > 0 && row_hash(&prev, &row.chain_id, other, &row.event).as_slice() == row.row_hash
        {
            return Err(Break::Reordered {
                seq: row.seq,
                written_as: other,
            });
        }
    }
    Err(Break::HashMismatch { seq: row.seq })
}

/// Recomputes the chain `chain_id` from `from` (default: its first row,
/// 1 or just past the retention anchor) to `to` (default: the chain head),
/// streaming the rows. Checks that `seq` is contiguous, that each row
/// hashes to its `row_hash`, that each `prev_hash` is the previous
/// `row_hash` (the genesis hash before seq 1, the anchor's hash after
/// retention, the row before `from` otherwise — or, if that row is gone,
/// the first row's own `prev_hash` is trusted), that the rows reach `to`,
/// and, when the range ends at the head, that the head's hash matches the
/// last row.
///
/// # Errors
/// The database error, if reading fails; a broken chain is `Ok(Err(..))`.
pub async fn verify(
    store: &impl Store,
    chain_id: &str,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Result<VerifyReport, Break>, StoreError> {
    let head = store.chain_head(chain_id).await?;
    // After retention the chain starts past its anchor, whose hash the
    // first remaining row must link to.
    let anchor = store.chain_anchor(chain_id).await?;
    let start = anchor.as_ref().map_or(1, |a| a.seq + 1);
    let from = from.unwrap_or(start).max(start);
    let to = to.unwrap_or(head.seq);
    let mut expected_prev: Option<Vec<u8>> = match &anchor {
        _ if from == 1 => Some(GENESIS_HASH.to_vec()),
        Some(a) if from == a.seq + 1 => Some(a.row_hash.clone()),
        _ => store.row_hash_at(chain_id, from - 1).await?,
    };
    let mut report = VerifyReport {
        chain_id: chain_id.to_owned(),
        count: 0,
        first_seq: 0,
        last_seq: 0,
        head: GENESIS_HASH,
    };
    let mut expected_seq = from;
    let mut rows = store.audit_rows_between(chain_id, from, to);
    while let Some(row) = rows.next().await {
        let row = row?;
        if row.seq != expected_seq {
            return Ok(Err(Break::Gap {
                expected: expected_seq,
                found: Some(row.seq),
            }));
        }
        let linked = expected_prev.as_ref().is_none_or(|p| *p == row.prev_hash);
        match check_row(&row) {
            // Moved rows also break the link: say they moved.
            Err(moved @ Break::Reordered { .. }) => return Ok(Err(moved)),
            // `row_hash` covers `prev_hash`, so a changed `prev_hash` fails
            // both checks; the broken link is what is wrong.
            _ if !linked => return Ok(Err(Break::PrevHashMismatch { seq: row.seq })),
            Err(broken) => return Ok(Err(broken)),
            Ok(()) => {}
        }
        if report.count == 0 {
            report.first_seq = row.seq;
        }
        report.count += 1;
        report.last_seq = row.seq;
        report.head = row.row_hash.as_slice().try_into().unwrap_or(GENESIS_HASH);
        expected_prev = Some(row.row_hash);
        expected_seq += 1;
    }
    if expected_seq <= to {
        return Ok(Err(if to == head.seq {
            Break::MissingNewest {
                from: expected_seq,
                head: head.seq,
            }
        } else {
            Break::Gap {
                expected: expected_seq,
                found: None,
            }
        }));
    }
    if to == head.seq && report.count > 0 && report.head.as_slice() != head.row_hash {
        return Ok(Err(Break::HeadMismatch { seq: head.seq }));
    }
    Ok(Ok(report))
}
