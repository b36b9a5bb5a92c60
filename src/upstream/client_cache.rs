//! [`ClientCache`]: a bounded map whose values are built on first use, at most once per key
//! while the key is cached. [`super::SdkUpstream`] keeps the SDK clients of `--dev` acting
//! accounts in one, so that any number of accounts costs a bounded number of clients.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

/// A bounded cache from `K` to a `V` built on first use.
///
/// - **Hit**: a shared read lock, one hash lookup, a relaxed load and at most one relaxed
///   store, and a clone of the value (an `Arc` increment for an SDK client). No allocation.
/// - **Miss**: the write lock is held only to insert an empty slot (and evict one when
///   full); the value is built outside it, in the slot's [`OnceLock`], so concurrent first
///   uses of one key build it once and wait for it, and other keys do not wait at all.
/// - **Full**: an insertion evicts the least recently used entry, approximately: a use
///   stamps the entry with the current epoch, a counter bumped by each insertion, and the
///   entry with the oldest stamp goes. Eviction scans the entries, O(capacity), on a miss
///   only. An evicted value leaves the cache only; whoever holds a clone keeps it.
pub(super) struct ClientCache<K, V> {
    /// Most entries held at once, >= 1.
    capacity: usize,
    /// Bumped by every insertion; the stamp of a use.
    epoch: AtomicU64,
    entries: RwLock<HashMap<K, Arc<Slot<V>>>>,
}

/// One entry: its value once built, and the epoch of its last use.
struct Slot<V> {
    value: OnceLock<V>,
    used: AtomicU64,
}

impl<V> Slot<V> {
    /// Stamps a use at `epoch`, writing only when the stamp changes.
    fn touch(&self, epoch: u64) {
        if self.used.load(Ordering::Relaxed) != epoch {
            self.used.store(epoch, Ordering::Relaxed);
        }
    }
}

impl<K, V> fmt::Debug for ClientCache<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl<K, V> ClientCache<K, V> {
    /// An empty cache of at most `capacity` entries (0 is read as 1).
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            epoch: AtomicU64::new(0),
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// Most entries held at once.
    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many entries are cached, built or being built.
    pub(super) fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl<K: Eq + Hash + Clone, V: Clone> ClientCache<K, V> {
    /// The value of `key`, built by `build` if the key is not cached. `build` runs at most
    /// once per key while the key stays cached, however many callers ask at once; they all
    /// get its value. If `build` panics the slot stays empty and the next caller builds.
    pub(super) fn get_or_build(&self, key: &K, build: impl FnOnce() -> V) -> V {
        let epoch = self.epoch.load(Ordering::Relaxed);
        let found = {
            let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
            entries.get(key).map(|slot| {
                slot.touch(epoch);
                slot.value.get().cloned().ok_or_else(|| Arc::clone(slot))
            })
        };
        let slot = match found {
            Some(Ok(value)) => return value,
            Some(Err(building)) => building,
            None => self.insert_slot(key),
        };
        slot.value.get_or_init(build).clone()
    }

    /// The slot of `key`, inserted empty unless a concurrent caller inserted it first;
    /// evicts the least recently used entry when the cache is full.
    fn insert_slot(&self, key: &K) -> Arc<Slot<V>> {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = entries.get(key) {
            slot.touch(self.epoch.load(Ordering::Relaxed));
            return Arc::clone(slot);
        }
        if entries.len() >= self.capacity {
            let oldest = entries
                .iter()
                .min_by_key(|(_, slot)| slot.used.load(Ordering::Relaxed))
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        let epoch = self.epoch.fetch_add(1, Ordering::Relaxed) + 1;
        let slot = Arc::new(Slot {
            value: OnceLock::new(),
            used: AtomicU64::new(epoch),
        });
        entries.insert(key.clone(), Arc::clone(&slot));
        slot
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;

    #[test]
    fn stays_bounded_and_builds_each_new_key_once() {
        let cache = ClientCache::new(4);
        let builds = AtomicUsize::new(0);
        for round in 0..2 {
            for key in 0..100_u32 {
                let value = cache.get_or_build(&key, || {
                    builds.fetch_add(1, Ordering::Relaxed);
                    key * 10
                });
                assert_eq!(value, key * 10);
                assert!(cache.len() <= 4, "round {round}: {} entries", cache.len());
            }
        }
        // Cycling through 100 keys with room for 4 evicts every key before its next use.
        assert_eq!(builds.load(Ordering::Relaxed), 200);
        assert_eq!(cache.len(), 4);
    }

    #[test]
    fn evicts_the_least_recently_used_entry() {
        let cache = ClientCache::new(3);
        let builds = AtomicUsize::new(0);
        let get = |key: &str| {
            cache.get_or_build(&key.to_owned(), || {
                builds.fetch_add(1, Ordering::Relaxed);
                key.len()
            })
        };
        get("a");
        get("bb");
        get("ccc");
        get("a"); // "bb" is now the least recently used
        get("dddd"); // evicts "bb"
        assert_eq!(builds.load(Ordering::Relaxed), 4);
        get("a");
        get("ccc");
        get("dddd");
        assert_eq!(
            builds.load(Ordering::Relaxed),
            4,
            "survivors are not rebuilt"
        );
        get("bb");
        assert_eq!(
            builds.load(Ordering::Relaxed),
            5,
            "the evicted entry is rebuilt"
        );
    }

    #[test]
    fn concurrent_first_uses_build_once() {
        const THREADS: usize = 16;
        let cache = ClientCache::new(8);
        let builds = AtomicUsize::new(0);
        let start = Barrier::new(THREADS);
        std::thread::scope(|scope| {
            for _ in 0..THREADS {
                scope.spawn(|| {
                    start.wait();
                    let value = cache.get_or_build(&"account", || {
                        builds.fetch_add(1, Ordering::Relaxed);
                        // A slow build widens the window in which the others arrive.
                        std::thread::sleep(Duration::from_millis(20));
                        42
                    });
                    assert_eq!(value, 42);
                });
            }
        });
        assert_eq!(builds.load(Ordering::Relaxed), 1);
        assert_eq!(cache.len(), 1);
    }
}
