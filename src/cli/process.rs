//! Settings for the whole process, made before any command runs.

pub fn setup() {
    // Like other Unix tools, stop quietly when the reader goes away (`geosr table x | head`).
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    keep_freed_memory();
}

/// Keeps the buffers a training step frees for the next step. glibc gives large freed
/// blocks back to the kernel (above its trim threshold, and every block it mmapped),
/// and the next step faults the same pages in again, zeroed: that took ~17% of a
/// step in a profile of `quick` a. A user's own `GLIBC_TUNABLES` for malloc wins.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if !std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("malloc")) {
        // SAFETY: mallopt only sets allocator parameters; called before any thread starts.
        unsafe {
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        }
    }
}
