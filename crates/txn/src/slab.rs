//! A small generational slab: stable `u32` indices, reused after removal.

use crate::types::Id;

#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    val: Option<T>,
}

#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
    /// Generation given to the next insert: unique across slots, so a stale key never matches
    /// a later occupant, even after the storage was dropped.
    next_gen: u32,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            next_gen: 0,
        }
    }
}

impl<T> Slab<T> {
    pub(crate) fn insert(&mut self, val: T) -> Id {
        self.len += 1;
        let generation = self.next_gen;
        self.next_gen = self.next_gen.wrapping_add(1);
        if let Some(idx) = self.free.pop()
            && let Some(s) = self.slots.get_mut(idx as usize)
        {
            s.generation = generation;
            s.val = Some(val);
            return Id { idx, generation };
        }
        let idx = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        self.slots.push(Slot {
            generation,
            val: Some(val),
        });
        Id { idx, generation }
    }

    pub(crate) fn get(&self, id: Id) -> Option<&T> {
        self.slots
            .get(id.idx as usize)
            .filter(|s| s.generation == id.generation)
            .and_then(|s| s.val.as_ref())
    }

    pub(crate) fn get_mut(&mut self, id: Id) -> Option<&mut T> {
        self.slots
            .get_mut(id.idx as usize)
            .filter(|s| s.generation == id.generation)
            .and_then(|s| s.val.as_mut())
    }

    pub(crate) fn remove(&mut self, id: Id) -> Option<T> {
        let s = self
            .slots
            .get_mut(id.idx as usize)
            .filter(|s| s.generation == id.generation)?;
        let v = s.val.take()?;
        self.free.push(id.idx);
        self.len -= 1;
        Some(v)
    }

    pub(crate) const fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn capacity_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<Slot<T>>() + self.free.capacity() * size_of::<u32>()
    }

    /// Drops the storage when empty (after a burst).
    pub(crate) fn shrink_if_empty(&mut self) {
        if self.len == 0 && self.slots.len() > 64 {
            self.slots = Vec::new();
            self.free = Vec::new();
        }
    }
}
