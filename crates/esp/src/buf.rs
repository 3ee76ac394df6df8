//! A packet buffer with head- and tailroom, so that ESP encapsulation can
//! prepend the ESP header and IV and append padding, trailer and ICV around the
//! inner packet without moving it, and decapsulation can narrow the window
//! onto the inner packet without copying it.
//!
//! The storage is allocated once, at construction, and never grows: a driver
//! keeps a pool of buffers and reuses them, so the per-packet path allocates
//! nothing. Every operation that would leave the storage fails with a
//! [`BufError`] instead of panicking or reallocating.
//!
//! The storage is owned (`PacketBuf`, a `Box<[u8]>`) or borrowed
//! ([`PacketBuf::over`], a `&mut [u8]`): a batching driver keeps one large
//! arena per thread and encapsulates packets side by side in it, so that a
//! run of ESP packets is one contiguous slice for a single segmented send
//! (UDP GSO), or decapsulates the segments of one coalesced datagram (UDP
//! GRO) where they were received.
//!
//! ```text
//!  0        start                end              capacity
//!  |headroom |====== data ========| tailroom         |
//! ```

/// Why a window operation could not be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BufError {
    #[error("not enough headroom: need {needed}, have {available}")]
    NoHeadroom { needed: usize, available: usize },
    #[error("not enough tailroom: need {needed}, have {available}")]
    NoTailroom { needed: usize, available: usize },
    #[error("window holds {available} bytes, not {needed}")]
    TooShort { needed: usize, available: usize },
}

/// Storage a [`PacketBuf`] can work on: any byte slice it may write.
pub trait BufStorage: AsRef<[u8]> + AsMut<[u8]> {}

impl<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized> BufStorage for T {}

/// A fixed-size byte buffer with a movable data window, over owned storage
/// (the default) or a borrowed slice ([`PacketBuf::over`]).
#[derive(Clone)]
pub struct PacketBuf<S = Box<[u8]>> {
    storage: S,
    start: usize,
    end: usize,
    /// Where the window starts after [`clear`](Self::clear).
    reserved_head: usize,
}

impl PacketBuf {
    /// Enough for ESP header + CBC IV (24) plus an outer IPv6 + UDP header
    /// (48) should a driver build those in place too, rounded up generously.
    pub const DEFAULT_HEADROOM: usize = 128;
    /// Enough for the largest padding (15) + trailer (2) + ICV (32) of the
    /// suites implemented here.
    pub const DEFAULT_TAILROOM: usize = 64;
    /// Payload space of [`with_default_room`](Self::with_default_room): an
    /// inner packet of a 1500-byte MTU link and then some.
    pub const DEFAULT_PAYLOAD: usize = 2048;

    /// A buffer of `headroom + payload + tailroom` bytes whose window starts,
    /// empty, after `headroom`.
    pub fn new(headroom: usize, payload: usize, tailroom: usize) -> PacketBuf {
        let cap = headroom.saturating_add(payload).saturating_add(tailroom);
        PacketBuf {
            storage: vec![0u8; cap].into_boxed_slice(),
            start: headroom,
            end: headroom,
            reserved_head: headroom,
        }
    }

    /// [`DEFAULT_HEADROOM`](Self::DEFAULT_HEADROOM), [`DEFAULT_PAYLOAD`](Self::DEFAULT_PAYLOAD),
    /// [`DEFAULT_TAILROOM`](Self::DEFAULT_TAILROOM).
    pub fn with_default_room() -> PacketBuf {
        Self::new(
            Self::DEFAULT_HEADROOM,
            Self::DEFAULT_PAYLOAD,
            Self::DEFAULT_TAILROOM,
        )
    }

    /// A buffer holding a copy of `data` with the default head- and tailroom
    /// (convenient for tests; drivers reuse buffers instead).
    pub fn from_slice(data: &[u8]) -> PacketBuf {
        let mut b = Self::new(Self::DEFAULT_HEADROOM, data.len(), Self::DEFAULT_TAILROOM);
        b.storage[b.start..b.start + data.len()].copy_from_slice(data);
        b.end = b.start + data.len();
        b
    }
}

impl<'a> PacketBuf<&'a mut [u8]> {
    /// A window `start..end` over borrowed storage: the bytes before `start`
    /// are the headroom, those after `end` the tailroom, and
    /// [`clear`](Self::clear) goes back to an empty window at `start`.
    pub fn over(storage: &'a mut [u8], start: usize, end: usize) -> Result<Self, BufError> {
        if start > end || end > storage.len() {
            return Err(BufError::TooShort {
                needed: end.max(start),
                available: storage.len(),
            });
        }
        Ok(PacketBuf {
            storage,
            start,
            end,
            reserved_head: start,
        })
    }
}

impl<S: BufStorage> PacketBuf<S> {
    /// Where the window lies in the storage (offsets from its first byte).
    pub fn range(&self) -> core::ops::Range<usize> {
        self.start..self.end
    }

    /// Empties the window and puts it back after the headroom given at
    /// construction. Call before reusing the buffer for the next packet.
    pub fn clear(&mut self) {
        self.start = self.reserved_head;
        self.end = self.reserved_head;
    }

    /// Replaces the window's content with a copy of `data`, at the reserved
    /// headroom.
    pub fn set_data(&mut self, data: &[u8]) -> Result<(), BufError> {
        self.clear();
        self.extend_from_slice(data)
    }

    /// The bytes after the window, to receive into: `clear()`, read into
    /// `spare_mut()`, then `commit(n)`.
    pub fn spare_mut(&mut self) -> &mut [u8] {
        &mut self.storage.as_mut()[self.end..]
    }

    /// Extends the window over `n` bytes that were written into
    /// [`spare_mut`](Self::spare_mut).
    pub fn commit(&mut self, n: usize) -> Result<(), BufError> {
        self.push_back(n).map(|_| ())
    }

    /// The data window.
    pub fn as_slice(&self) -> &[u8] {
        &self.storage.as_ref()[self.start..self.end]
    }

    /// The data window, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.storage.as_mut()[self.start..self.end]
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// Free bytes in front of the window.
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Free bytes behind the window.
    pub fn tailroom(&self) -> usize {
        self.storage.as_ref().len() - self.end
    }

    /// Total storage size.
    pub fn capacity(&self) -> usize {
        self.storage.as_ref().len()
    }

    /// Grows the window by `n` bytes at the front and returns them (their
    /// content is whatever the storage held).
    pub fn push_front(&mut self, n: usize) -> Result<&mut [u8], BufError> {
        if n > self.start {
            return Err(BufError::NoHeadroom {
                needed: n,
                available: self.start,
            });
        }
        self.start -= n;
        Ok(&mut self.storage.as_mut()[self.start..self.start + n])
    }

    /// Grows the window by `n` bytes at the back and returns them.
    pub fn push_back(&mut self, n: usize) -> Result<&mut [u8], BufError> {
        let available = self.tailroom();
        if n > available {
            return Err(BufError::NoTailroom {
                needed: n,
                available,
            });
        }
        let old = self.end;
        self.end += n;
        Ok(&mut self.storage.as_mut()[old..self.end])
    }

    /// Appends a copy of `data`.
    pub fn extend_from_slice(&mut self, data: &[u8]) -> Result<(), BufError> {
        self.push_back(data.len())?.copy_from_slice(data);
        Ok(())
    }

    /// Shrinks the window by `n` bytes at the front.
    pub fn pull_front(&mut self, n: usize) -> Result<(), BufError> {
        if n > self.len() {
            return Err(BufError::TooShort {
                needed: n,
                available: self.len(),
            });
        }
        self.start += n;
        Ok(())
    }

    /// Shrinks the window by `n` bytes at the back.
    pub fn trim_back(&mut self, n: usize) -> Result<(), BufError> {
        if n > self.len() {
            return Err(BufError::TooShort {
                needed: n,
                available: self.len(),
            });
        }
        self.end -= n;
        Ok(())
    }

    /// Shortens the window to `len` bytes; no effect if it is shorter already.
    pub fn truncate(&mut self, len: usize) {
        if len < self.len() {
            self.end = self.start + len;
        }
    }
}

impl<S: BufStorage> core::fmt::Debug for PacketBuf<S> {
    /// Lengths only: the content may be plaintext user traffic.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PacketBuf")
            .field("headroom", &self.headroom())
            .field("len", &self.len())
            .field("tailroom", &self.tailroom())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_shrinks_in_place() {
        let mut b = PacketBuf::new(8, 4, 4);
        assert_eq!(
            (b.headroom(), b.len(), b.tailroom(), b.capacity()),
            (8, 0, 8, 16)
        );
        b.extend_from_slice(&[1, 2, 3]).unwrap();
        b.push_front(2).unwrap().copy_from_slice(&[9, 9]);
        b.push_back(1).unwrap()[0] = 7;
        assert_eq!(b.as_slice(), &[9, 9, 1, 2, 3, 7]);
        assert_eq!((b.headroom(), b.tailroom()), (6, 4));
        b.pull_front(2).unwrap();
        b.trim_back(1).unwrap();
        assert_eq!(b.as_slice(), &[1, 2, 3]);
        b.truncate(10);
        assert_eq!(b.len(), 3);
        b.truncate(1);
        assert_eq!(b.as_slice(), &[1]);
    }

    #[test]
    fn refuses_to_leave_the_storage() {
        let mut b = PacketBuf::new(2, 2, 1);
        assert_eq!(
            b.push_front(3).unwrap_err(),
            BufError::NoHeadroom {
                needed: 3,
                available: 2
            }
        );
        assert_eq!(
            b.push_back(4).unwrap_err(),
            BufError::NoTailroom {
                needed: 4,
                available: 3
            }
        );
        assert!(b.pull_front(1).is_err());
        assert!(b.trim_back(1).is_err());
        assert!(b.push_front(2).is_ok());
        assert!(b.push_front(1).is_err());
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn clear_restores_the_reserved_headroom() {
        let mut b = PacketBuf::new(16, 8, 8);
        b.set_data(&[1, 2, 3, 4]).unwrap();
        b.push_front(10).unwrap();
        b.pull_front(14).unwrap();
        b.clear();
        assert_eq!((b.headroom(), b.len()), (16, 0));
    }

    #[test]
    fn receive_into_spare_then_commit() {
        let mut b = PacketBuf::new(4, 8, 0);
        b.clear();
        let spare = b.spare_mut();
        assert_eq!(spare.len(), 8);
        spare[..3].copy_from_slice(&[5, 6, 7]);
        b.commit(3).unwrap();
        assert_eq!(b.as_slice(), &[5, 6, 7]);
        assert!(b.commit(6).is_err());
    }

    #[test]
    fn borrowed_storage_windows() {
        let mut arena = [0u8; 32];
        arena[10..14].copy_from_slice(&[1, 2, 3, 4]);
        let mut b = PacketBuf::over(&mut arena[4..], 6, 10).unwrap();
        assert_eq!(b.as_slice(), &[1, 2, 3, 4]);
        assert_eq!((b.headroom(), b.tailroom(), b.range()), (6, 18, 6..10));
        b.push_front(2).unwrap().copy_from_slice(&[8, 9]);
        b.push_back(1).unwrap()[0] = 5;
        assert_eq!(b.range(), 4..11);
        assert!(b.push_back(18).is_err());
        assert_eq!(&arena[8..15], &[8, 9, 1, 2, 3, 4, 5]);
        assert!(PacketBuf::over(&mut arena[..4], 2, 5).is_err());
        assert!(PacketBuf::over(&mut arena[..4], 3, 2).is_err());
    }

    #[test]
    fn debug_shows_no_content() {
        let b = PacketBuf::from_slice(b"secret");
        let s = format!("{b:?}");
        assert!(!s.contains("secret") && !s.contains("115"), "{s}");
    }
}
