//! Who may read what observer writes: the owner only (directories 0700, files 0600), or with
//! `--group` that group too (0750/0640, the files and directories given to the group).
use std::{
    ffi::CString,
    io,
    os::fd::{AsRawFd, BorrowedFd},
};

/// The access of everything observer creates in an output directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// The group that may read (`--group`), or `None` for the owner alone.
    group: Option<u32>,
}

/// A `--group` that names no group.
#[derive(Debug, thiserror::Error)]
#[error("--group {0}: no such group (give a group name from /etc/group or a numeric gid)")]
pub struct UnknownGroup(pub String);

impl Access {
    /// The owner alone: directories 0700, files 0600.
    pub const OWNER: Access = Access { group: None };

    /// The owner, and group `gid` for reading: directories 0750, files 0640.
    pub fn with_group(gid: u32) -> Access {
        Access { group: Some(gid) }
    }

    /// `--group NAME` or `--group GID`.
    pub fn for_group(name: &str) -> Result<Access, UnknownGroup> {
        if let Ok(gid) = name.parse::<u32>() {
            return Ok(Access::with_group(gid));
        }
        group_id(name).map(Access::with_group).ok_or_else(|| UnknownGroup(name.to_string()))
    }

    pub fn group(self) -> Option<u32> {
        self.group
    }

    pub fn dir_mode(self) -> libc::mode_t {
        if self.group.is_some() {
            0o750
        } else {
            0o700
        }
    }

    pub fn file_mode(self) -> libc::mode_t {
        if self.group.is_some() {
            0o640
        } else {
            0o600
        }
    }

    /// Gives a file or directory just created with `mode` its group, and `mode` again: the umask
    /// may have taken the group's bits away. Nothing to do for the owner alone (a umask only
    /// removes bits).
    pub(super) fn settle(self, fd: BorrowedFd<'_>, mode: libc::mode_t) -> io::Result<()> {
        let Some(gid) = self.group else { return Ok(()) };
        // SAFETY: plain syscalls on a descriptor we hold.
        unsafe {
            if libc::fchown(fd.as_raw_fd(), u32::MAX, gid) != 0 || libc::fchmod(fd.as_raw_fd(), mode) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// The access a directory that exists already grants its contents: its group's, when the
    /// group may read and enter it, else the owner's alone (`analyze` rewrites files as the run
    /// wrote them).
    pub(super) fn of_directory(fd: BorrowedFd<'_>) -> io::Result<Access> {
        // SAFETY: an all-zero stat is a valid value to be filled in.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: a descriptor we hold and a valid stat buffer.
        if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(if st.st_mode & 0o050 == 0o050 { Access::with_group(st.st_gid) } else { Access::OWNER })
    }
}

/// The gid of group `name`, from the group database.
fn group_id(name: &str) -> Option<u32> {
    let c_name = CString::new(name).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // SAFETY: an all-zero group is a valid value to be filled in.
        let mut group: libc::group = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::group = std::ptr::null_mut();
        // SAFETY: valid pointers to a name, a group, a buffer of the given length and a result.
        let err =
            unsafe { libc::getgrnam_r(c_name.as_ptr(), &mut group, buf.as_mut_ptr().cast(), buf.len(), &mut found) };
        if err == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        return (err == 0 && !found.is_null()).then_some(group.gr_gid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_named_or_numbered_and_unknown_ones_are_refused() {
        assert_eq!(Access::for_group("root").unwrap(), Access::with_group(0));
        assert_eq!(Access::for_group("4242").unwrap().group(), Some(4242));
        let err = Access::for_group("no-such-group-observer").unwrap_err();
        assert!(err.to_string().contains("no such group"), "{err}");
        assert_eq!((Access::OWNER.dir_mode(), Access::OWNER.file_mode()), (0o700, 0o600));
        assert_eq!((Access::with_group(0).dir_mode(), Access::with_group(0).file_mode()), (0o750, 0o640));
    }
}
