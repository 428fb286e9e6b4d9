//! A set of validator-set members by index, for the per-txid questions
//! asked once per window vote and listed txid ("has this member already
//! voted / signed it?"). The first [`INLINE_MEMBERS`] bits sit inside the
//! value itself, so for a committee of up to that many members (the
//! default seat count) the answer is read from the record already being
//! looked at, not from a second allocation on cold memory.

/// Members answered without a heap allocation.
pub const INLINE_MEMBERS: usize = 128;
const INLINE_WORDS: usize = INLINE_MEMBERS / 64;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberBits {
    inline: [u64; INLINE_WORDS],
    /// Words for members from [`INLINE_MEMBERS`] on (empty for small sets).
    spill: Vec<u64>,
}

impl MemberBits {
    /// An empty set with room for members `0..members`.
    pub fn new(members: usize) -> MemberBits {
        MemberBits {
            inline: [0; INLINE_WORDS],
            spill: vec![0; members.div_ceil(64).saturating_sub(INLINE_WORDS)],
        }
    }

    pub fn contains(&self, member: usize) -> bool {
        let (word, bit) = (member / 64, member % 64);
        let w = match self.inline.get(word) {
            Some(w) => Some(w),
            None => self.spill.get(word - INLINE_WORDS),
        };
        w.is_some_and(|w| w & (1 << bit) != 0)
    }

    /// Adds `member` (growing the set if it was sized too small).
    pub fn insert(&mut self, member: usize) {
        let (word, bit) = (member / 64, member % 64);
        let w = match word.checked_sub(INLINE_WORDS) {
            None => self.inline.get_mut(word),
            Some(spilled) => {
                if self.spill.len() <= spilled {
                    self.spill.resize(spilled + 1, 0);
                }
                self.spill.get_mut(spilled)
            }
        };
        if let Some(w) = w {
            *w |= 1 << bit;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_inline_and_spilled_are_found_and_others_not() {
        for size in [0, 5, INLINE_MEMBERS, INLINE_MEMBERS + 1, 1000] {
            let mut bits = MemberBits::new(size);
            let members = [0, 63, 64, 127, 128, 500, 999, 4000];
            for m in members.iter().step_by(2) {
                bits.insert(*m);
            }
            for (i, m) in members.iter().enumerate() {
                assert_eq!(bits.contains(*m), i % 2 == 0, "size {size}, member {m}");
            }
            assert!(!bits.contains(1) && !bits.contains(usize::MAX));
        }
    }
}
