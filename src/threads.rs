//! The scoped threads that `plan` and `observe` run work on side by side.

/// A scoped thread's result; a panic in it goes on in the thread that waits
/// (as if the work had run there), rather than becoming an error value.
pub fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}
