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
/// the mask, and so do child processes unless `unblock_signals_in_child`
/// is applied to their `Command` (std does not reset the mask before exec).
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

/// fork(2). Returns `None` in the child and the child's pid in the parent.
/// Only for single-threaded callers (the sandbox helper): after fork in a
/// multi-threaded process the child may only call async-signal-safe functions.
pub fn fork_single_threaded() -> io::Result<Option<i32>> {
    // SAFETY: the caller is single-threaded (documented contract), so the
    // child inherits no lock held by another thread and may run normal code.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => Ok(None),
        Ok(nix::unistd::ForkResult::Parent { child }) => Ok(Some(child.as_raw())),
        Err(e) => Err(io::Error::from_raw_os_error(e as i32)),
    }
}

/// Where [`forward_stop_signals_to`] sends them.
static FORWARD_TO: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);
/// Seconds after the first stop signal at which PID 1 kills the whole tree
/// (0: the timer runs already).
static KILL_AFTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Whether a signal came from the kernel: a terminal's SIGINT or SIGHUP,
/// which reached the whole foreground process group, the tree included.
///
/// # Safety
/// `info` is the siginfo_t pointer an SA_SIGINFO handler was given.
unsafe fn from_kernel(info: *const libc::siginfo_t) -> bool {
    // SAFETY: the kernel passes a valid siginfo_t to SA_SIGINFO handlers.
    !info.is_null() && unsafe { (*info).si_code } == libc::SI_KERNEL
}

extern "C" fn forward_to_pid(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let pid = FORWARD_TO.load(std::sync::atomic::Ordering::SeqCst);
    // SAFETY: `info` is the handler's own argument; kill(2) is
    // async-signal-safe.
    unsafe {
        if pid > 0 && !from_kernel(info) {
            libc::kill(pid, sig);
        }
    }
}

extern "C" fn forward_to_namespace(
    sig: libc::c_int,
    info: *mut libc::siginfo_t,
    _: *mut libc::c_void,
) {
    // SAFETY: `info` is the handler's own argument; kill(2) and alarm(2) are
    // async-signal-safe. kill(-1) from PID 1 reaches every process of its
    // PID namespace but itself: the command and everything it started,
    // not only the command (a shell waiting for its child ignores SIGINT
    // until the child ends, so the signal must reach the child too).
    unsafe {
        if !from_kernel(info) {
            libc::kill(-1, sig);
        }
        let secs = KILL_AFTER.swap(0, std::sync::atomic::Ordering::SeqCst);
        if secs > 0 {
            libc::alarm(secs);
        }
    }
}

extern "C" fn kill_namespace(_: libc::c_int) {
    // SAFETY: kill(2) is async-signal-safe; from PID 1, -1 is its namespace.
    unsafe {
        libc::kill(-1, libc::SIGKILL);
    }
}

fn install(signals: &[i32], handler: nix::sys::signal::SigHandler) -> io::Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigSet, Signal, sigaction};
    let action = SigAction::new(handler, SaFlags::SA_RESTART, SigSet::empty());
    for &sig in signals {
        let sig = Signal::try_from(sig).map_err(|e| io::Error::from_raw_os_error(e as i32))?;
        // SAFETY: the handlers only use atomics, kill(2) and alarm(2), all
        // async-signal-safe.
        unsafe { sigaction(sig, &action) }.map_err(|e| io::Error::from_raw_os_error(e as i32))?;
    }
    Ok(())
}

/// From now on, `signals` sent to this process are sent on to `pid`; one
/// from the kernel (a terminal's, which reached the whole foreground process
/// group already) is not sent twice.
pub fn forward_stop_signals_to(pid: i32, signals: &[i32]) -> io::Result<()> {
    FORWARD_TO.store(pid, std::sync::atomic::Ordering::SeqCst);
    install(
        signals,
        nix::sys::signal::SigHandler::SigAction(forward_to_pid),
    )
}

/// For PID 1 of a PID namespace: from now on, `signals` sent to it are sent
/// on to every other process of the namespace, and `grace` seconds after the
/// first one whatever still runs is killed, so a tree that ignores the
/// signal still ends.
pub fn forward_stop_signals_to_namespace(signals: &[i32], grace: u32) -> io::Result<()> {
    KILL_AFTER.store(grace.max(1), std::sync::atomic::Ordering::SeqCst);
    install(
        &[libc::SIGALRM],
        nix::sys::signal::SigHandler::Handler(kill_namespace),
    )?;
    install(
        signals,
        nix::sys::signal::SigHandler::SigAction(forward_to_namespace),
    )
}

/// Takes ownership of a file descriptor this process inherited by number
/// (the recorder passes the FUSE connection and the status pipe to the
/// sandbox helper that way). Call once per number.
pub fn own_inherited_fd(fd: i32) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: the number was handed to us on our command line by the parent
    // that opened it for us without O_CLOEXEC; nothing else in this process
    // owns it, and the caller takes it once.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}

/// Makes `command`'s child start with no signal blocked, whatever this
/// process blocks (the recorder blocks its stop signals for its signal thread).
pub fn unblock_signals_in_child(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only calls
    // sigemptyset and pthread_sigmask on a local set, both async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            let rc = libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            if rc == 0 {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(rc))
            }
        });
    }
}

/// Sends `fd` over the Unix socket `sock` (SCM_RIGHTS).
pub fn send_fd(
    sock: &std::os::unix::net::UnixStream,
    fd: std::os::fd::BorrowedFd<'_>,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fds = [fd.as_raw_fd()];
    let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
    let iov = [std::io::IoSlice::new(b"F")];
    nix::sys::socket::sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &cmsg,
        nix::sys::socket::MsgFlags::empty(),
        None,
    )
    .map(|_| ())
    .map_err(|e| io::Error::from_raw_os_error(e as i32))
}

/// Receives one file descriptor sent with `send_fd`.
pub fn receive_fd(sock: &std::os::unix::net::UnixStream) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = nix::sys::socket::recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
    for cmsg in msg
        .cmsgs()
        .map_err(|e| io::Error::from_raw_os_error(e as i32))?
    {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = cmsg
            && let Some(&fd) = fds.first()
        {
            // SAFETY: the kernel just installed this descriptor in our table
            // for this message; nothing else owns it.
            return Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
        }
    }
    Err(io::Error::other("no file descriptor received"))
}

/// Makes `command`'s child ask to be traced by its parent (PTRACE_TRACEME)
/// before it executes: it stops at its exec, where the parent takes over.
pub fn trace_me_in_child(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only
    // makes the ptrace(2) system call, which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            nix::sys::ptrace::traceme().map_err(|e| io::Error::from_raw_os_error(e as i32))
        });
    }
}

/// For a descriptor number of this process: whether it is close-on-exec and
/// its access mode (O_RDONLY, O_WRONLY or O_RDWR); `None` if it is not open.
pub fn fd_flags(fd: i32) -> Option<(bool, i32)> {
    // SAFETY: fcntl with F_GETFD/F_GETFL only reads the descriptor's flags;
    // an fd number that is not open gives -1 (EBADF), nothing else happens.
    let (fd_flags, fl_flags) = unsafe {
        (
            libc::fcntl(fd, libc::F_GETFD),
            libc::fcntl(fd, libc::F_GETFL),
        )
    };
    if fd_flags < 0 || fl_flags < 0 {
        return None;
    }
    Some((fd_flags & libc::FD_CLOEXEC != 0, fl_flags & libc::O_ACCMODE))
}

/// Makes `dest` share `src`'s data blocks (the FICLONE ioctl: a reflink on
/// btrfs, xfs, bcachefs...). Fails with EOPNOTSUPP, EXDEV or EINVAL where the
/// filesystem cannot; the caller then copies.
pub fn reflink(src: &std::fs::File, dest: &std::fs::File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // _IOW(0x94, 9, int)
    const FICLONE: libc::c_ulong = 0x4004_9409;
    // SAFETY: FICLONE takes the source descriptor as its integer argument and
    // touches no memory of ours; both descriptors are open files we borrow.
    let rc = unsafe { libc::ioctl(dest.as_raw_fd(), FICLONE as _, src.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The full status flags (`F_GETFL`) of a descriptor number of this
/// process, O_PATH included; `None` if it is not open.
pub fn fd_status_flags(fd: i32) -> Option<i32> {
    // SAFETY: fcntl with F_GETFL only reads the descriptor's flags; an fd
    // number that is not open gives -1 (EBADF), nothing else happens.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    (flags >= 0).then_some(flags)
}

/// dup2(2): makes descriptor number `to` refer to `from`'s open file
/// description (closing what `to` referred to).
pub fn dup2(from: std::os::fd::BorrowedFd<'_>, to: i32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: dup2 takes two integers; `from` is open (borrowed), and
    // replacing `to` is the caller's stated intent (a descriptor number it
    // owns by inheritance or has handed over).
    let rc = unsafe { libc::dup2(from.as_raw_fd(), to) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(target_arch = "x86_64")]
mod arch {
    pub const AUDIT_ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
    pub const NR_CLONE: u32 = 56;
    pub const NR_CLONE3: u32 = 435;
    /// System call numbers with this bit set are the x32 ABI.
    pub const X32_BIT: Option<u32> = Some(0x4000_0000);
}

#[cfg(target_arch = "aarch64")]
mod arch {
    pub const AUDIT_ARCH: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64
    pub const NR_CLONE: u32 = 220;
    pub const NR_CLONE3: u32 = 435;
    pub const X32_BIT: Option<u32> = None;
}

/// The seccomp filter of the recorded tree (docs/threat-model.md), as
/// classic BPF: a foreign architecture or the x32 ABI kills the process
/// (its system call numbers mean other calls); clone3 fails with ENOSYS (its
/// flags are in memory the filter cannot read; libc falls back to clone);
/// clone with CLONE_UNTRACED fails with EPERM (it would hide the child
/// from the tracer); everything else is allowed.
fn tree_filter() -> Vec<libc::sock_filter> {
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
    const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
    const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    const KILL: u32 = 0x8000_0000; // SECCOMP_RET_KILL_PROCESS
    const ALLOW: u32 = 0x7fff_0000; // SECCOMP_RET_ALLOW
    const ERRNO: u32 = 0x0005_0000; // SECCOMP_RET_ERRNO
    // offsetof(struct seccomp_data, ...): nr 0, arch 4, args[0] 16 (low
    // half on little-endian machines).
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let mut prog = vec![
        op(LD_W_ABS, 0, 0, 4),
        op(JEQ, 1, 0, arch::AUDIT_ARCH),
        op(RET, 0, 0, KILL),
        op(LD_W_ABS, 0, 0, 0),
    ];
    if let Some(bit) = arch::X32_BIT {
        prog.push(op(JGE, 0, 1, bit));
        prog.push(op(RET, 0, 0, KILL));
    }
    prog.extend([
        op(JEQ, 0, 1, arch::NR_CLONE3),
        op(RET, 0, 0, ERRNO | libc::ENOSYS as u32),
        op(JEQ, 0, 3, arch::NR_CLONE),
        op(LD_W_ABS, 0, 0, 16),
        op(JSET, 0, 1, libc::CLONE_UNTRACED as u32),
        op(RET, 0, 0, ERRNO | libc::EPERM as u32),
        op(RET, 0, 0, ALLOW),
    ]);
    prog
}

/// Installs the tree's seccomp filter on the calling thread (the command's
/// process, before it executes). The caller must hold CAP_SYS_ADMIN in its
/// user namespace (the command's own namespace gives it that) or have set
/// no_new_privs.
pub fn install_tree_filter() -> io::Result<()> {
    let filter = tree_filter();
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `filter`, which outlives the call; the kernel
    // copies the program and keeps no pointer to our memory.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Brings the loopback interface of the current network namespace up.
pub fn loopback_up() -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
    // SAFETY: ifreq is plain data; we fill the name and flags and pass it to
    // ioctls that read and write only inside it.
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

extern "C" fn do_nothing(_: libc::c_int) {}

/// Makes `sig` interrupt blocking system calls of whichever thread receives
/// it (a handler that does nothing, without SA_RESTART).
pub fn interrupt_with(sig: i32) -> io::Result<()> {
    let sig = nix::sys::signal::Signal::try_from(sig)
        .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
    let action = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::Handler(do_nothing),
        nix::sys::signal::SaFlags::empty(),
        nix::sys::signal::SigSet::empty(),
    );
    // SAFETY: the handler does nothing at all, which is async-signal-safe.
    unsafe { nix::sys::signal::sigaction(sig, &action) }
        .map(drop)
        .map_err(|e| io::Error::from_raw_os_error(e as i32))
}

/// Sends `sig` to thread `tid` of this process (tgkill).
pub fn signal_thread(tid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: tgkill takes integers only.
    let rc = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, sig) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The file offset of descriptor number `fd` (inherited by number).
pub fn offset_of(fd: i32) -> io::Result<i64> {
    // SAFETY: lseek takes integers; an fd number that is not open or not
    // seekable gives -1 and nothing else happens.
    let off = unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) };
    if off < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(off)
    }
}

/// Sets the file offset of descriptor number `fd` (inherited by number).
pub fn set_offset(fd: i32, offset: i64) -> io::Result<()> {
    // SAFETY: lseek takes integers; see `offset_of`.
    let off = unsafe { libc::lseek(fd, offset, libc::SEEK_SET) };
    if off < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
