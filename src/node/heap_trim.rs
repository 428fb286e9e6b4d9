//! Gives the heap a burst freed back to the kernel. glibc keeps pages freed
//! inside its heaps mapped, so after a burst (thousands of txs in the
//! mempool and in flight, the net layer's buffers) the process kept up to
//! ~10 MiB of freed memory as RSS (SECURITY.md, "Node memory"); a small
//! host needs it back. `malloc_trim` returns every whole free page; it runs
//! when the caller is idle after work, at most once per [`TRIM_EVERY_MS`].

use crate::time::MonoTime;

/// How often a node trims at most: a trim walks every arena under its
/// lock, so not after every commit.
pub const TRIM_EVERY_MS: u64 = 5_000;

#[derive(Debug, Default)]
pub struct HeapTrim {
    last: Option<MonoTime>,
    /// Work was done (memory allocated and freed) since the last trim.
    worked: bool,
}

impl HeapTrim {
    pub fn worked(&mut self) {
        self.worked = true;
    }

    /// The caller is idle: trims if work was done since the last trim and
    /// that was [`TRIM_EVERY_MS`] ago or more. Returns whether it trimmed.
    pub fn idle(&mut self, now: MonoTime) -> bool {
        let recent = self
            .last
            .is_some_and(|last| now.saturating_since(last).as_millis() < u128::from(TRIM_EVERY_MS));
        if !self.worked || recent {
            return false;
        }
        self.last = Some(now);
        self.worked = false;
        trim();
        true
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only releases free memory; no pointer is passed.
    unsafe { libc::malloc_trim(0) };
}

/// Other allocators return freed memory themselves (or offer no call).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_after_work_at_most_once_per_period() {
        let mut heap = HeapTrim::default();
        let t0 = MonoTime(1_000);
        assert!(!heap.idle(t0), "nothing done yet");
        heap.worked();
        assert!(heap.idle(t0));
        assert!(!heap.idle(t0.plus_ms(TRIM_EVERY_MS)), "no work since");
        heap.worked();
        assert!(!heap.idle(t0.plus_ms(TRIM_EVERY_MS - 1)));
        assert!(heap.idle(t0.plus_ms(TRIM_EVERY_MS)));
        // A clock that steps back never trims twice in a row.
        heap.worked();
        assert!(!heap.idle(t0));
    }
}
