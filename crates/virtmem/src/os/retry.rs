//! The one retry loop. A step that loses a race to another thread (the allocation it found
//! was released or replaced before its lock was taken; the free range it found was mapped
//! before `MAP_FIXED_NOREPLACE` got there) is tried again — at most [`MAX_ATTEMPTS`] times,
//! never by recursion, so a pathological race costs a bounded number of attempts and ends
//! with a clear error instead of an unbounded loop or a stack overflow.
//!
//! Which error ends it is the caller's choice, documented where it calls:
//! ERROR_INVALID_ADDRESS (487) where an existing allocation kept changing under the call
//! (looking it up again would keep failing the same way), ERROR_NOT_ENOUGH_MEMORY (8) where a
//! free address range kept being taken.

/// How many times a step that lost a race is tried before the call gives up.
pub(crate) const MAX_ATTEMPTS: usize = 64;

/// Runs `attempt` until it returns `Some` (done: its result is the call's), at most
/// [`MAX_ATTEMPTS`] times; `None` means "lost a race, try again". After the last attempt
/// the result is `Err(exhausted)`. Between attempts the thread yields, so the winner of the
/// race can finish.
pub(crate) fn bounded<T, E>(
    exhausted: E,
    mut attempt: impl FnMut() -> Option<Result<T, E>>,
) -> Result<T, E> {
    for n in 0..MAX_ATTEMPTS {
        if n > 0 {
            std::thread::yield_now();
        }
        if let Some(r) = attempt() {
            return r;
        }
    }
    Err(exhausted)
}

/// Repeats a kernel call that failed — an undo or a trim that must not be left half done —
/// until it succeeds, at most [`MAX_ATTEMPTS`] times (through [`bounded`], so still one
/// retry loop). After the last attempt the result is that attempt's error.
pub(crate) fn until_ok<T, E>(mut call: impl FnMut() -> Result<T, E>) -> Result<T, E> {
    let mut n = 0;
    let r = bounded(None, || {
        n += 1;
        match call() {
            Ok(v) => Some(Ok(v)),
            Err(e) if n >= MAX_ATTEMPTS => Some(Err(Some(e))),
            Err(_) => None,
        }
    });
    // `bounded` makes MAX_ATTEMPTS attempts and the last one returns `Some`, so its own
    // `exhausted` (None) is never the answer.
    r.map_err(|e| e.expect("the last attempt returns its error"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_after_the_bound_with_the_given_error() {
        let mut n = 0;
        let r: Result<(), u32> = bounded(487, || {
            n += 1;
            None
        });
        assert_eq!((r, n), (Err(487), MAX_ATTEMPTS));
        let mut n = 0;
        let r: Result<u32, u32> = bounded(8, || {
            n += 1;
            (n == 3).then_some(Ok(7))
        });
        assert_eq!((r, n), (Ok(7), 3));
        assert_eq!(bounded::<u32, u32>(8, || Some(Err(1))), Err(1));
    }

    #[test]
    fn until_ok_retries_then_gives_the_last_error() {
        let mut n = 0;
        let r: Result<u32, usize> = until_ok(|| {
            n += 1;
            Err(n)
        });
        assert_eq!(r, Err(MAX_ATTEMPTS));
        let mut n = 0;
        let r: Result<u32, usize> = until_ok(|| {
            n += 1;
            if n == 5 {
                Ok(9)
            } else {
                Err(n)
            }
        });
        assert_eq!((r, n), (Ok(9), 5));
    }
}
