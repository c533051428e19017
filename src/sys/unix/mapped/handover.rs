//! Passing a segment's descriptor to another process: over a Unix socket (`SCM_RIGHTS`)
//! or by inheritance to a child.

use super::*;

/// `MSG_NOSIGNAL` where there is one (Apple platforms have none: `send_fd` sets
/// `SO_NOSIGPIPE` on the socket there).
#[cfg(not(qshm_apple))]
const NO_SIGPIPE: SendFlags = SendFlags::NOSIGNAL;
#[cfg(qshm_apple)]
const NO_SIGPIPE: SendFlags = SendFlags::empty();

/// `MSG_CMSG_CLOEXEC` where there is one (see `recv_fd` for Apple platforms).
#[cfg(not(qshm_apple))]
const CLOEXEC_ON_RECEIPT: RecvFlags = RecvFlags::CMSG_CLOEXEC;
#[cfg(qshm_apple)]
const CLOEXEC_ON_RECEIPT: RecvFlags = RecvFlags::empty();

/// The payload sent with the descriptor: magic and data size.
pub(super) const WIRE_LEN: usize = 16;

/// Sends `fd` over `stream` with `SCM_RIGHTS`, with a 16-byte message (magic, data size).
pub(crate) fn send_fd(
    fd: BorrowedFd<'_>,
    data_size: usize,
    stream: &UnixStream,
    label: &str,
) -> Result<()> {
    let op = Operation::Send;
    // Apple platforms have no MSG_NOSIGNAL: the socket itself is told not to raise SIGPIPE.
    #[cfg(qshm_apple)]
    let _ = rustix::net::sockopt::set_socket_nosigpipe(stream, true);
    let mut msg = [0u8; WIRE_LEN];
    msg[..8].copy_from_slice(&MAGIC);
    msg[8..].copy_from_slice(&(data_size as u64).to_le_bytes());
    let fds = [fd];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(
            Error::new(ErrorKind::Unknown, op, label).with_detail("control buffer too small")
        );
    }
    let mut sent = loop {
        match rustix::net::sendmsg(stream, &[IoSlice::new(&msg)], &mut control, NO_SIGPIPE) {
            Err(Errno::INTR) => {}
            other => break other.map_err(|e| Ctx::label(op, label).errno(e))?,
        }
    };
    while sent < WIRE_LEN {
        match rustix::io::write(stream, &msg[sent..]) {
            Ok(n) => sent += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(Ctx::label(op, label).errno(e)),
        }
    }
    Ok(())
}

/// Descriptors received with a message. Those left when it is refused are closed, or, where
/// record locks count users, kept with the file of this process they refer to, if any
/// (closing one would drop the process's locks on it: `record_lock::LockedFile::release`).
struct Received(Vec<OwnedFd>);

impl Drop for Received {
    fn drop(&mut self) {
        #[cfg(qshm_posix_portable)]
        for fd in self.0.drain(..) {
            LockedFile::release(fd);
        }
    }
}

/// Receives one descriptor sent by `send_fd`; returns it with the announced data size.
pub(crate) fn recv_fd(stream: &UnixStream) -> Result<(OwnedFd, u64)> {
    let op = Operation::Receive;
    let label = "unix socket";
    let mut msg = [0u8; WIRE_LEN];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = loop {
        match rustix::net::recvmsg(
            stream,
            &mut [IoSliceMut::new(&mut msg)],
            &mut control,
            CLOEXEC_ON_RECEIPT,
        ) {
            Err(Errno::INTR) => {}
            other => break other.map_err(|e| Ctx::label(op, label).errno(e))?,
        }
    };
    let mut fds = Received(Vec::new());
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = m {
            fds.0.extend(rights);
        }
    }
    if cfg!(qshm_apple) {
        // No MSG_CMSG_CLOEXEC there: made close-on-exec now (a program that another
        // thread execs meanwhile inherits it).
        for fd in &fds.0 {
            let _ = rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC);
        }
    }
    if got.flags.contains(ReturnFlags::CTRUNC) {
        return Err(
            Error::new(ErrorKind::OutOfResources, op, label).with_detail(
                "control message truncated (too many descriptors sent, or out of descriptors)",
            ),
        );
    }
    if got.bytes == 0 {
        return Err(Error::new(ErrorKind::NotFound, op, label)
            .with_detail("the peer closed the connection"));
    }
    let mut have = got.bytes;
    while have < WIRE_LEN {
        match rustix::io::read(stream, &mut msg[have..]) {
            Ok(0) => {
                return Err(Error::new(ErrorKind::NotFound, op, label)
                    .with_detail("the peer closed the connection mid-message"))
            }
            Ok(n) => have += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(Ctx::label(op, label).errno(e)),
        }
    }
    if msg[..8] != MAGIC {
        return Err(Error::new(ErrorKind::KeyError, op, label)
            .with_detail("the message is not a qshm segment hand-over"));
    }
    if fds.0.len() != 1 {
        return Err(
            Error::new(ErrorKind::KeyError, op, label).with_detail(format!(
                "expected one descriptor with the message, got {}",
                fds.0.len()
            )),
        );
    }
    let size = u64::from_le_bytes(msg[8..].try_into().expect("8 bytes"));
    let Some(fd) = fds.0.pop() else {
        return Err(Error::new(ErrorKind::KeyError, op, label).with_detail("no descriptor"));
    };
    Ok((fd, size))
}

/// Arranges for `fd` to be inherited by the child `cmd` spawns, and names it there in the
/// environment variable `var` as `<fd>:<data size>`, or `<fd>:<data size>:<path>` with the
/// path of a file the child is to take part in removing (where no `/proc` tells it).
pub(crate) fn pass_to_child(
    fd: &SegFd,
    data_size: usize,
    path: Option<&Path>,
    cmd: &mut Command,
    var: &str,
    label: &str,
) -> Result<()> {
    let op = Operation::Send;
    // A close-on-exec duplicate owned by the command: it stays open until the command is
    // dropped, and no other child spawned meanwhile by another thread inherits it.
    #[cfg(not(qshm_posix_portable))]
    let dup = rustix::io::fcntl_dupfd_cloexec(fd, 3).map_err(|e| Ctx::label(op, label).errno(e))?;
    // Where record locks count users, the process's one descriptor of the file itself (a
    // duplicate, once closed, would drop the process's locks on the file), kept open by the
    // command: close-on-exec here, and in the child until the hook clears the flag there.
    #[cfg(qshm_posix_portable)]
    let dup = {
        let _ = (op, label);
        fd.clone()
    };
    let mut value = std::ffi::OsString::from(format!("{}:{data_size}", dup.as_raw_fd()));
    if let Some(path) = path {
        value.push(":");
        value.push(path);
    }
    cmd.env(var, value);
    let hook = move || -> std::io::Result<()> {
        rustix::io::fcntl_setfd(&dup, rustix::io::FdFlags::empty()).map_err(std::io::Error::from)
    };
    // SAFETY: the hook runs in the child between fork and exec, where only async-signal-safe
    // operations are allowed: it makes one fcntl system call on a descriptor the hook owns
    // (inherited from the parent, so open in the child) and neither allocates nor takes locks.
    unsafe {
        cmd.pre_exec(hook);
    }
    Ok(())
}

/// Descriptors already adopted by `fd_from_env` in this process.
pub(super) static CLAIMED: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

/// Adopts the descriptor a parent named in `var` (`<fd>:<data size>[:<path>]`); returns it
/// with the announced data size and the path, if named.
pub(crate) fn fd_from_env(var: &str) -> Result<(OwnedFd, u64, Option<PathBuf>)> {
    let op = Operation::Receive;
    let label = format!("${var}");
    let value = std::env::var_os(var).ok_or_else(|| {
        Error::new(ErrorKind::NotFound, op, label.as_str())
            .with_detail(format!("the environment variable {var} is not set"))
    })?;
    let mut fields = value.as_bytes().splitn(3, |&b| b == b':');
    let number = |text: Option<&[u8]>| std::str::from_utf8(text?).ok()?.parse::<u64>().ok();
    let parsed = (|| {
        let fd = RawFd::try_from(number(fields.next())?).ok()?;
        Some((fd, number(fields.next())?))
    })();
    let path = fields
        .next()
        .map(|p| PathBuf::from(std::ffi::OsStr::from_bytes(p)));
    let value = value.to_string_lossy();
    let Some((raw, size)) = parsed else {
        return Err(Error::new(ErrorKind::KeyError, op, label.as_str())
            .with_detail(format!("malformed value {value:?} (expected <fd>:<size>)")));
    };
    if raw <= 2 {
        // Adopting a standard stream would close it when the segment is refused or dropped;
        // `pass_to_child` never hands one over.
        return Err(
            Error::new(ErrorKind::KeyError, op, label.as_str()).with_detail(format!(
                "descriptor {raw} is a standard stream, not a segment handed over by a parent"
            )),
        );
    }
    let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
    if claimed.contains(&raw) {
        return Err(
            Error::new(ErrorKind::AlreadyAttached, op, label.as_str()).with_detail(format!(
                "descriptor {raw} was already adopted by this process"
            )),
        );
    }
    // SAFETY: F_GETFD on any integer is harmless: it reads the descriptor's flags or fails
    // with EBADF.
    if super::super::cvt(unsafe { libc::fcntl(raw, libc::F_GETFD) }).is_err() {
        return Err(Error::new(ErrorKind::NotFound, op, label.as_str())
            .with_detail(format!("descriptor {raw} is not open (not inherited?)")));
    }
    claimed.push(raw);
    // SAFETY: the descriptor is open (checked above); the environment variable, set by the
    // parent for this process alone (`pass_to_child`), names it as handed to us, and CLAIMED
    // makes this the only adoption of it through qshm, so this OwnedFd is its only owner.
    // What remains assumed (documented on `from_env`): no other code of this process uses
    // that descriptor number.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // Do not leak it into our own children.
    let _ = rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC);
    Ok((fd, size, path))
}
