//! A back-end segment's holes: whole pages inside its free ranges that HeapCompact gave back
//! (decommitted), as Windows' heap leaves uncommitted ranges inside a segment. Byte offsets
//! from the segment's base, page-aligned, sorted, disjoint and never touching (touching holes
//! are merged), each inside one free range and below the committed prefix. A block placed
//! over a hole commits the pages it needs first ([`Holes::within`], then [`Holes::fill`]).
//!
//! Every operation is O(log h + k) for h holes and k holes touched.

use crate::os::linux::metaheap::{meta_vec, MetaVec};
use std::ops::Range;

/// The holes of one segment.
pub(crate) struct Holes {
    spans: MetaVec<(usize, usize)>,
    bytes: usize,
}

impl Holes {
    /// No holes.
    pub(crate) fn new() -> Holes {
        Holes {
            spans: meta_vec(),
            bytes: 0,
        }
    }

    /// Forgets every hole (a fresh reservation).
    pub(crate) fn clear(&mut self) {
        self.spans.clear();
        self.bytes = 0;
    }

    /// Whether there are none (the usual case: one test on the allocation path).
    #[inline(always)]
    pub(crate) fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Total bytes decommitted in holes.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The holes, in address order.
    pub(crate) fn spans(&self) -> &[(usize, usize)] {
        &self.spans
    }

    /// Indices of the holes overlapping `[a, b)`.
    fn overlapping(&self, a: usize, b: usize) -> Range<usize> {
        let lo = self.spans.partition_point(|h| h.1 <= a);
        let hi = self.spans.partition_point(|h| h.0 < b);
        lo..hi.max(lo)
    }

    /// The parts of `[a, b)` that are holes, in address order: what must be committed before
    /// those bytes are used.
    pub(crate) fn within(&self, a: usize, b: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.spans[self.overlapping(a, b)]
            .iter()
            .map(move |&(s, e)| (s.max(a), e.min(b)))
    }

    /// The parts of `[a, b)` that are not holes, in address order (what a decommit of
    /// `[a, b)` would change).
    pub(crate) fn gaps(&self, a: usize, b: usize) -> MetaVec<(usize, usize)> {
        let mut out = meta_vec();
        let mut at = a;
        for (s, e) in self.within(a, b) {
            if s > at {
                out.push((at, s));
            }
            at = e;
        }
        if at < b {
            out.push((at, b));
        }
        out
    }

    /// `[a, b)` (page-aligned) is committed again: it stops being (part of) a hole.
    pub(crate) fn fill(&mut self, a: usize, b: usize) {
        let r = self.overlapping(a, b);
        if r.is_empty() {
            return;
        }
        let (first, last) = (self.spans[r.start], self.spans[r.end - 1]);
        let mut keep: [Option<(usize, usize)>; 2] = [None, None];
        if first.0 < a {
            keep[0] = Some((first.0, a));
        }
        if last.1 > b {
            keep[1] = Some((b, last.1));
        }
        let removed: usize = self.spans[r.clone()].iter().map(|h| h.1 - h.0).sum();
        let kept: usize = keep.iter().flatten().map(|h| h.1 - h.0).sum();
        self.bytes -= removed - kept;
        let at = r.start;
        self.spans.drain(r);
        for (k, h) in keep.into_iter().flatten().enumerate() {
            self.spans.insert(at + k, h);
        }
    }

    /// `[a, b)` (page-aligned, overlapping no hole) was decommitted: a hole, merged with the
    /// holes it touches.
    pub(crate) fn add(&mut self, a: usize, b: usize) {
        if a >= b {
            return;
        }
        self.bytes += b - a;
        let i = self.spans.partition_point(|h| h.0 < a);
        let prev = i > 0 && self.spans[i - 1].1 == a;
        let next = i < self.spans.len() && self.spans[i].0 == b;
        match (prev, next) {
            (true, true) => {
                self.spans[i - 1].1 = self.spans[i].1;
                self.spans.remove(i);
            }
            (true, false) => self.spans[i - 1].1 = b,
            (false, true) => self.spans[i].0 = a,
            (false, false) => self.spans.insert(i, (a, b)),
        }
    }

    /// The committed prefix shrank to `end`: holes at or above it are part of the
    /// uncommitted tail now.
    pub(crate) fn truncate(&mut self, end: usize) {
        while let Some(&(s, e)) = self.spans.last() {
            if e <= end {
                break;
            }
            self.spans.pop();
            self.bytes -= e - s;
            if s < end {
                self.spans.push((s, end));
                self.bytes += end - s;
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(h: &Holes) -> Vec<(usize, usize)> {
        h.spans().to_vec()
    }

    #[test]
    fn add_merges_fill_splits_truncate_clips() {
        let mut h = Holes::new();
        h.add(0x3000, 0x5000);
        h.add(0x8000, 0x9000);
        h.add(0x5000, 0x6000);
        assert_eq!(spans(&h), [(0x3000, 0x6000), (0x8000, 0x9000)]);
        h.add(0x6000, 0x8000);
        assert_eq!(spans(&h), [(0x3000, 0x9000)]);
        assert_eq!(h.bytes(), 0x6000);
        assert_eq!(h.within(0x2000, 0x4000).collect::<Vec<_>>(), [(0x3000, 0x4000)]);
        assert_eq!(&*h.gaps(0x1000, 0xA000), &[(0x1000, 0x3000), (0x9000, 0xA000)]);
        h.fill(0x4000, 0x5000);
        assert_eq!(spans(&h), [(0x3000, 0x4000), (0x5000, 0x9000)]);
        assert_eq!(h.bytes(), 0x5000);
        h.fill(0x2000, 0x6000);
        assert_eq!(spans(&h), [(0x6000, 0x9000)]);
        h.fill(0x1000, 0x2000);
        assert_eq!(h.bytes(), 0x3000);
        h.truncate(0x7000);
        assert_eq!(spans(&h), [(0x6000, 0x7000)]);
        assert_eq!(h.bytes(), 0x1000);
        h.truncate(0x6000);
        assert!(h.is_empty());
        assert_eq!(h.bytes(), 0);
    }
}
