//! `ChunkedVec`: the tree's node slab, a vector in fixed-size chunks.
//!
//! A `Vec` of znodes doubles as it grows: each doubling copies every node and, for a moment,
//! holds the old and the new vector; the allocator may keep the freed old one resident for a
//! while (at 2,000,000 znodes of 64 bytes the 64 MiB of the previous vector stayed, 33
//! resident bytes per znode, bench/FINDINGS.md), and at 20,000,000 the copy is a gigabyte.
//! Chunks of [`CHUNK_LEN`] elements are allocated once at their final size and never move;
//! only the first grows as a `Vec` does (so a small tree stays small), up to that size.
//! Large chunks: the allocator maps each one on its own, and only the pages written are
//! resident (smaller chunks, 1 MiB or less, cost 7-14 more resident bytes per znode in the
//! same measurement, interleaved with the nodes' own allocations).

use std::ops::{Index, IndexMut};

/// Elements per chunk (a chunk of 56-byte nodes is 56 MiB).
pub const CHUNK_LEN: usize = 1 << 20;
/// The first chunk's first capacity.
const FIRST_CAPACITY: usize = 64;

#[derive(Debug, Clone)]
pub struct ChunkedVec<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for ChunkedVec<T> {
    fn default() -> Self {
        ChunkedVec { chunks: Vec::new(), len: 0 }
    }
}

impl<T> ChunkedVec<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Elements the allocated chunks hold.
    pub fn capacity(&self) -> usize {
        self.chunks.iter().map(|c| c.capacity()).sum()
    }

    /// Room for `n` elements in the first chunk at once (at most a chunk), when nothing is
    /// stored yet: a tree loaded from a snapshot of known size skips the doublings (and their
    /// copies). Pages reserved and never written are not resident.
    pub fn reserve_first(&mut self, n: usize) {
        if self.chunks.is_empty() {
            self.chunks.push(Vec::with_capacity(n.clamp(FIRST_CAPACITY, CHUNK_LEN)));
        }
    }

    pub fn push(&mut self, v: T) {
        match self.chunks.last() {
            None => self.chunks.push(Vec::with_capacity(FIRST_CAPACITY)),
            Some(last) if last.len() == CHUNK_LEN => self.chunks.push(Vec::with_capacity(CHUNK_LEN)),
            Some(_) => {}
        }
        let last = self.chunks.last_mut().expect("a chunk with room");
        debug_assert!(last.len() < CHUNK_LEN);
        last.push(v);
        self.len += 1;
        debug_assert_eq!(self.len, (self.chunks.len() - 1) * CHUNK_LEN + self.chunks.last().map_or(0, |c| c.len()));
    }

    pub fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i / CHUNK_LEN)?.get(i % CHUNK_LEN)
    }

    pub fn first(&self) -> Option<&T> {
        self.get(0)
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.chunks.iter().flat_map(|c| c.iter())
    }
}

impl<T> Index<usize> for ChunkedVec<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        &self.chunks[i / CHUNK_LEN][i % CHUNK_LEN]
    }
}

impl<T> IndexMut<usize> for ChunkedVec<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.chunks[i / CHUNK_LEN][i % CHUNK_LEN]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_index_iterate_across_chunks() {
        let mut v = ChunkedVec::default();
        let n = CHUNK_LEN * 2 + 5;
        for i in 0..n {
            v.push(i);
        }
        assert_eq!(v.len(), n);
        assert!(v.capacity() >= n && v.capacity() <= CHUNK_LEN * 3, "{}", v.capacity());
        assert_eq!(v[CHUNK_LEN], CHUNK_LEN);
        assert_eq!(v.get(n - 1), Some(&(n - 1)));
        assert_eq!(v.get(n), None);
        v[7] = 70;
        assert_eq!(v.first(), Some(&0));
        assert_eq!(v.iter().copied().filter(|&x| x == 70).count(), 2);
        assert_eq!(v.iter().count(), n);
    }
}
