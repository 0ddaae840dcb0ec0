//! The few system calls the standard library and `nix` do not wrap safely
//! enough for us. Every `unsafe` block of the crate lives here, each with a
//! `// SAFETY:` comment.

use std::io;

/// A signal as `sigwaitinfo` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalInfo {
    pub signo: i32,
    /// True when the kernel generated it (a terminal's Ctrl-C goes to the
    /// whole foreground process group), false when a process sent it with
    /// kill(2) to us alone.
    pub from_kernel: bool,
}

fn sigset(signals: &[i32]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initializes it before any
    // sigaddset, and both only write inside the struct we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &sig in signals {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Blocks `signals` in the calling thread; threads spawned afterwards inherit
/// the mask. (Child processes do not: std resets the mask before exec.)
pub fn block_signals(signals: &[i32]) -> io::Result<()> {
    let set = sigset(signals);
    // SAFETY: `set` is an initialized sigset_t; the old-mask pointer may be null.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// Waits for one of `signals` (which must be blocked in every thread).
pub fn wait_signal(signals: &[i32]) -> io::Result<SignalInfo> {
    let set = sigset(signals);
    loop {
        // SAFETY: siginfo_t is plain data that sigwaitinfo fills in; `set` is
        // an initialized sigset_t.
        let (rc, info) = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let rc = libc::sigwaitinfo(&set, &mut info);
            (rc, info)
        };
        if rc >= 0 {
            return Ok(SignalInfo {
                signo: rc,
                from_kernel: info.si_code == libc::SI_KERNEL,
            });
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}
