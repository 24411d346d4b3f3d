//! A directory observer writes into, held open by a descriptor: every file and directory is made
//! relative to it, without following a link, so nothing written lands outside it; what it makes
//! gets the modes of its [`Access`]. An `--out` directory is claimed: locked, and refused when
//! something is in it already.
mod access;

use std::{
    ffi::CString,
    fs::File,
    io::{self, Write},
    os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd},
    path::{Path, PathBuf},
    sync::Arc,
};

pub use access::{Access, UnknownGroup};

/// An open directory, the path it was opened at (for messages and the summary), and the access
/// of what is made in it.
#[derive(Clone, Debug)]
pub struct OutDir {
    path: PathBuf,
    fd: Arc<OwnedFd>,
    access: Access,
}

fn c_name(name: &str) -> io::Result<CString> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{name:?} is not a plain file name")));
    }
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a file name holds a NUL byte"))
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path holds a NUL byte"))
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Opens a directory at `at`/`name` without following a final link (a link is refused).
fn open_dir_at(at: libc::c_int, name: &CString) -> io::Result<OwnedFd> {
    // SAFETY: a NUL-terminated name; the descriptor is owned from here on.
    let fd = check(unsafe {
        libc::openat(at, name.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
    })?;
    // SAFETY: a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `make(name)`, or `make("name.2")`, `make("name.3")`... while it fails with AlreadyExists.
pub fn first_free<T>(name: &str, mut make: impl FnMut(&str) -> io::Result<T>) -> io::Result<T> {
    for n in 1..=10_000u32 {
        let candidate = if n == 1 { name.to_string() } else { format!("{name}.{n}") };
        match make(&candidate) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            other => return other,
        }
    }
    Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{name}.2 to {name}.10000 exist too")))
}

/// Why a path cannot be an output directory, as a line that names the fix.
fn refused(path: &Path, e: io::Error) -> io::Error {
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if is_link {
        return io::Error::new(
            io::ErrorKind::InvalidInput,
            "is a symbolic link, and observer does not write through links: give the real directory (or a new path) instead",
        );
    }
    match e.raw_os_error() {
        Some(libc::ENOTDIR) => {
            io::Error::new(io::ErrorKind::InvalidInput, "is not a directory: give a directory, or a new path")
        }
        _ => e,
    }
}

impl OutDir {
    /// An existing directory; `path` itself must not be a symbolic link. What is made in it gets
    /// the access the directory grants already (see [`Access`]).
    pub fn open(path: &Path) -> io::Result<OutDir> {
        let fd = open_dir_at(libc::AT_FDCWD, &c_path(path)?).map_err(|e| refused(path, e))?;
        let access = Access::of_directory(fd.as_fd())?;
        Ok(OutDir { path: path.to_path_buf(), fd: Arc::new(fd), access })
    }

    /// `path`, created with `access` when missing (its missing parents as `mkdir -p` would); an
    /// existing `path` must be a directory, not a link, and keeps its mode. What observer makes in
    /// it gets `access`.
    pub fn open_or_create(path: &Path, access: Access) -> io::Result<OutDir> {
        let c = c_path(path)?;
        // SAFETY: a NUL-terminated path.
        let mut made = unsafe { libc::mkdir(c.as_ptr(), access.dir_mode()) } == 0;
        let mut error = io::Error::last_os_error();
        if !made && error.kind() == io::ErrorKind::NotFound {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            // SAFETY: as above.
            made = unsafe { libc::mkdir(c.as_ptr(), access.dir_mode()) } == 0;
            error = io::Error::last_os_error();
        }
        if !made && error.kind() != io::ErrorKind::AlreadyExists {
            return Err(refused(path, error));
        }
        let fd = open_dir_at(libc::AT_FDCWD, &c).map_err(|e| refused(path, e))?;
        if made {
            access.settle(fd.as_fd(), access.dir_mode())?;
        }
        Ok(OutDir { path: path.to_path_buf(), fd: Arc::new(fd), access })
    }

    /// `path` as the one output directory of this observer (`--out`): created when missing,
    /// locked for as long as any clone of it is open (a second observer given the same path is
    /// refused), and refused when it holds anything already — observer writes only into a
    /// directory it made, or one that was empty.
    pub fn claim(path: &Path, access: Access) -> io::Result<OutDir> {
        let dir = OutDir::open_or_create(path, access)?;
        // SAFETY: a descriptor we hold; the lock lives as long as the descriptor.
        if unsafe { libc::flock(dir.raw(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            return Err(if e.kind() == io::ErrorKind::WouldBlock {
                io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    "is being written by another observer: give another --out (or wait until it ends)",
                )
            } else {
                e
            });
        }
        if std::fs::read_dir(dir.fd_path())?.next().is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "is not empty, and observer writes only into a new or empty directory: give another --out",
            ));
        }
        Ok(dir)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` inside, for messages.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn raw(&self) -> libc::c_int {
        self.fd.as_raw_fd()
    }

    /// A new directory `name` inside (it must not exist).
    pub fn create_dir(&self, name: &str) -> io::Result<OutDir> {
        let c = c_name(name)?;
        // SAFETY: a NUL-terminated name relative to our descriptor.
        check(unsafe { libc::mkdirat(self.raw(), c.as_ptr(), self.access.dir_mode()) })?;
        let fd = open_dir_at(self.raw(), &c)?;
        self.access.settle(fd.as_fd(), self.access.dir_mode())?;
        Ok(OutDir { path: self.join(name), fd: Arc::new(fd), access: self.access })
    }

    /// A new directory `name`, or `name.2`, `name.3`... when taken (by another run at the same time).
    pub fn create_unique_dir(&self, name: &str) -> io::Result<OutDir> {
        first_free(name, |candidate| self.create_dir(candidate))
    }

    fn open_file(&self, name: &str, flags: libc::c_int) -> io::Result<File> {
        let c = c_name(name)?;
        // SAFETY: a NUL-terminated name relative to our descriptor; the descriptor is owned from here on.
        let mode = self.access.file_mode();
        let fd = check(unsafe {
            libc::openat(self.raw(), c.as_ptr(), flags | libc::O_NOFOLLOW | libc::O_CLOEXEC, mode as libc::c_uint)
        })?;
        // SAFETY: a fresh descriptor.
        let file = unsafe { File::from_raw_fd(fd) };
        if flags & libc::O_CREAT != 0 {
            self.access.settle(file.as_fd(), mode)?;
        }
        Ok(file)
    }

    /// A new file `name` for writing; fails when anything (a file, a link) has that name already.
    pub fn create(&self, name: &str) -> io::Result<File> {
        self.open_file(name, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL)
    }

    /// An existing regular file `name`, for appending.
    pub fn append(&self, name: &str) -> io::Result<File> {
        self.open_file(name, libc::O_WRONLY | libc::O_APPEND)
    }

    /// A file `name` for reading, not through a link.
    pub fn read(&self, name: &str) -> io::Result<File> {
        self.open_file(name, libc::O_RDONLY)
    }

    /// Writes `name` whole: into a fresh hidden file, then renamed over `name`, so a reader never
    /// sees half of it and a link named `name` is replaced, never written through.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> io::Result<()> {
        self.write_with(name, |out| out.write_all(contents.as_ref()))
    }

    /// Like [`OutDir::write`], with the contents streamed by `contents` through a buffer, so a
    /// large file is never held whole in memory.
    pub fn write_with(&self, name: &str, contents: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
        let temp = format!(".{name}.{}.tmp", std::process::id());
        let _ = self.remove_file(&temp);
        let written = self.create(&temp).and_then(|f| {
            let mut out = io::BufWriter::new(f);
            contents(&mut out)?;
            out.flush()
        });
        match written.and_then(|()| self.rename(&temp, self, name)) {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = self.remove_file(&temp);
                Err(e)
            }
        }
    }

    /// Renames `from` (inside) to `to` inside `dest`, replacing what `to` names.
    pub fn rename(&self, from: &str, dest: &OutDir, to: &str) -> io::Result<()> {
        let (from, to) = (c_name(from)?, c_name(to)?);
        // SAFETY: NUL-terminated names relative to our descriptors.
        check(unsafe { libc::renameat(self.raw(), from.as_ptr(), dest.raw(), to.as_ptr()) }).map(drop)
    }

    /// Renames `from` (inside) to `to` inside `dest`, failing with AlreadyExists when `to` exists.
    pub fn rename_new(&self, from: &str, dest: &OutDir, to: &str) -> io::Result<()> {
        let (from, to) = (c_name(from)?, c_name(to)?);
        // SAFETY: NUL-terminated names relative to our descriptors.
        check(unsafe { libc::renameat2(self.raw(), from.as_ptr(), dest.raw(), to.as_ptr(), libc::RENAME_NOREPLACE) })
            .map(drop)
    }

    /// Removes the file or link `name` (never what a link points to).
    pub fn remove_file(&self, name: &str) -> io::Result<()> {
        let c = c_name(name)?;
        // SAFETY: a NUL-terminated name relative to our descriptor.
        check(unsafe { libc::unlinkat(self.raw(), c.as_ptr(), 0) }).map(drop)
    }

    /// Removes the directory `name` inside with everything in it (links removed, not followed).
    pub fn remove_dir_all(&self, name: &str) -> io::Result<()> {
        c_name(name)?;
        // std removes a tree without following links inside it; the name is checked to be plain.
        std::fs::remove_dir_all(self.fd_path().join(name))
    }

    /// Makes `name` a symbolic link to `target`, replacing a link (or file) of that name at once.
    pub fn replace_link(&self, name: &str, target: &str) -> io::Result<()> {
        let temp = format!(".{name}.{}.tmp", std::process::id());
        let (c_temp, c_target) = (c_name(&temp)?, CString::new(target).map_err(io::Error::other)?);
        let _ = self.remove_file(&temp);
        // SAFETY: NUL-terminated strings; the link is made relative to our descriptor.
        check(unsafe { libc::symlinkat(c_target.as_ptr(), self.raw(), c_temp.as_ptr()) })?;
        self.rename(&temp, self, name).inspect_err(|_| {
            let _ = self.remove_file(&temp);
        })
    }

    /// This directory as the kernel resolves our descriptor (immune to renames and links on the way).
    fn fd_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.raw()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_a_link_instead_of_writing_through_it() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        let dir = OutDir::open_or_create(&tmp.path().join("run"), Access::OWNER).unwrap();
        std::os::unix::fs::symlink(&target, dir.join("report.txt")).unwrap();
        std::os::unix::fs::symlink(&target, dir.join("stdout.txt")).unwrap();
        dir.write("report.txt", "report").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(dir.join("report.txt")).unwrap(), "report");
        assert!(dir.create("stdout.txt").is_err(), "an existing name is never opened for writing");
        assert!(dir.append("stdout.txt").is_err(), "nor appended to through a link");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }

    #[test]
    fn a_link_is_refused_as_a_directory_and_names_stay_inside() {
        let tmp = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(tmp.path(), tmp.path().join("link")).unwrap();
        assert!(OutDir::open(&tmp.path().join("link")).is_err());
        let dir = OutDir::open(tmp.path()).unwrap();
        assert!(dir.create("../x").is_err());
        assert!(dir.create_dir("..").is_err());
    }

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_claimed_directory_is_locked_new_or_empty_and_made_private() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("a/b/out");
        let dir = OutDir::claim(&out, Access::OWNER).unwrap();
        let err = OutDir::claim(&out, Access::OWNER).unwrap_err();
        assert!(err.to_string().contains("another observer"), "{err}");
        dir.write("x.txt", "x").unwrap();
        dir.create_dir("sub").unwrap().create("y").unwrap();
        assert_eq!((mode(&out), mode(&out.join("x.txt"))), (0o700, 0o600));
        assert_eq!((mode(&out.join("sub")), mode(&out.join("sub/y"))), (0o700, 0o600));
        drop(dir);
        let err = OutDir::claim(&out, Access::OWNER).unwrap_err();
        assert!(err.to_string().contains("is not empty"), "{err}");

        std::fs::create_dir(tmp.path().join("empty")).unwrap();
        assert!(OutDir::claim(&tmp.path().join("empty"), Access::OWNER).is_ok());
        std::os::unix::fs::symlink(tmp.path().join("empty"), tmp.path().join("link")).unwrap();
        let err = OutDir::claim(&tmp.path().join("link"), Access::OWNER).unwrap_err();
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
        std::fs::write(tmp.path().join("file"), "").unwrap();
        let err = OutDir::claim(&tmp.path().join("file"), Access::OWNER).unwrap_err();
        assert!(err.to_string().contains("is not a directory"), "{err}");
    }

    #[test]
    fn group_access_gives_the_group_read_and_an_existing_directory_keeps_its_group() {
        let tmp = tempfile::tempdir().unwrap();
        // SAFETY: getegid has no preconditions; our own group is one we may give files to.
        let gid = unsafe { libc::getegid() };
        let out = tmp.path().join("out");
        let dir = OutDir::claim(&out, Access::with_group(gid)).unwrap();
        dir.write("x.txt", "x").unwrap();
        assert_eq!((mode(&out), mode(&out.join("x.txt"))), (0o750, 0o640));
        drop(dir);
        let again = OutDir::open(&out).unwrap();
        again.write("report.txt", "r").unwrap();
        assert_eq!(mode(&out.join("report.txt")), 0o640, "analyze writes as the run did");
    }

    #[test]
    fn unique_directories_take_the_next_free_suffix() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = OutDir::open(tmp.path()).unwrap();
        assert_eq!(dir.create_unique_dir("a").unwrap().path(), tmp.path().join("a"));
        assert_eq!(dir.create_unique_dir("a").unwrap().path(), tmp.path().join("a.2"));
        dir.replace_link("latest", "a.2").unwrap();
        dir.replace_link("latest", "a").unwrap();
        assert_eq!(std::fs::read_link(tmp.path().join("latest")).unwrap(), Path::new("a"));
    }
}
