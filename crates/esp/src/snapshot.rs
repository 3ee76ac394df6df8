//! Copy-on-write publication of the SAD and SPD to data-plane threads.
//!
//! The control plane changes the databases rarely (SA install, rekey, delete)
//! and the packet path reads them millions of times a second. So the control
//! plane builds a complete new value and publishes it ([`Snapshot::update`]);
//! each worker thread keeps a [`SnapshotReader`] whose [`get`](SnapshotReader::get)
//! costs one atomic load when nothing changed, and only when the generation
//! moved takes the (uncontended) mutex to pick up the new `Arc`. No write lock
//! is ever taken on the packet path, and a worker never blocks a writer for
//! longer than an `Arc` clone.
//!
//! An old snapshot stays valid while a worker still holds it: a deleted SA is
//! freed when the last worker has moved on.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The published version of a value.
#[derive(Debug)]
pub struct Snapshot<T> {
    current: Mutex<Arc<T>>,
    /// Bumped (under the mutex) on every publication.
    generation: AtomicU64,
}

impl<T> Snapshot<T> {
    pub fn new(value: T) -> Snapshot<T> {
        Snapshot {
            current: Mutex::new(Arc::new(value)),
            generation: AtomicU64::new(0),
        }
    }

    /// Holding the lock never panics in here, so poisoning cannot leave the
    /// value half-written: take a poisoned lock over.
    fn lock(&self) -> MutexGuard<'_, Arc<T>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current value.
    pub fn load(&self) -> Arc<T> {
        Arc::clone(&self.lock())
    }

    /// Publishes a new value.
    pub fn store(&self, value: T) {
        let mut cur = self.lock();
        *cur = Arc::new(value);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Copy-on-write update: clones the current value, lets `f` change the
    /// copy, publishes it, and returns `f`'s result. Writers are serialized.
    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> R
    where
        T: Clone,
    {
        let mut cur = self.lock();
        let mut next = T::clone(&cur);
        let r = f(&mut next);
        *cur = Arc::new(next);
        self.generation.fetch_add(1, Ordering::Release);
        r
    }

    /// How many times a value was published.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

/// A worker thread's cached view of a [`Snapshot`].
#[derive(Debug)]
pub struct SnapshotReader<T> {
    source: Arc<Snapshot<T>>,
    cached: Arc<T>,
    generation: u64,
}

impl<T> SnapshotReader<T> {
    pub fn new(source: Arc<Snapshot<T>>) -> SnapshotReader<T> {
        let (cached, generation) = {
            let cur = source.lock();
            (Arc::clone(&cur), source.generation.load(Ordering::Acquire))
        };
        SnapshotReader {
            source,
            cached,
            generation,
        }
    }

    /// The newest published value (refreshed if a new one was published
    /// since the last call).
    pub fn get(&mut self) -> &Arc<T> {
        if self.source.generation.load(Ordering::Acquire) != self.generation {
            let cur = self.source.lock();
            self.cached = Arc::clone(&cur);
            // Read under the lock: writers bump it under the same lock, so
            // value and generation are consistent.
            self.generation = self.source.generation.load(Ordering::Acquire);
        }
        &self.cached
    }

    /// The value cached by the last [`get`](Self::get), without checking for
    /// a newer one (for several lookups on one packet batch).
    pub fn cached(&self) -> &Arc<T> {
        &self.cached
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_see_updates() {
        let snap = Arc::new(Snapshot::new(vec![1]));
        let mut r = SnapshotReader::new(Arc::clone(&snap));
        assert_eq!(**r.get(), vec![1]);
        let old = Arc::clone(r.get());
        let n = snap.update(|v| {
            v.push(2);
            v.len()
        });
        assert_eq!(n, 2);
        assert_eq!(**r.cached(), vec![1]);
        assert_eq!(**r.get(), vec![1, 2]);
        // The old snapshot is still intact for whoever holds it.
        assert_eq!(*old, vec![1]);
        snap.store(vec![3]);
        assert_eq!(**r.get(), vec![3]);
        assert_eq!(*snap.load(), vec![3]);
        assert_eq!(snap.generation(), 2);
    }

    #[test]
    fn concurrent_writers_lose_no_update() {
        let snap = Arc::new(Snapshot::new(0u64));
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let s = Arc::clone(&snap);
                std::thread::spawn(move || {
                    let mut r = SnapshotReader::new(Arc::clone(&s));
                    for _ in 0..250 {
                        s.update(|v| *v += 1);
                        let _ = r.get();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*snap.load(), 1000);
    }
}
