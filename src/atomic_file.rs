//! Reading and replacing files on the controller when the folder may be writable by someone
//! else: a group-writable `host_vars/`, a shared checkout, a shared history folder.
//!
//! *Why*: switchyard often runs as root. Writing `NAME.tmp` then renaming it lets anyone
//! who can write the folder plant `NAME.tmp -> /root/.ssh/authorized_keys` (root then
//! writes their line there), and reading or replacing `NAME` when it is a planted link to
//! a 0600 file copies that file's secrets into a new, readable one. So:
//!
//! - a name that is a symbolic link, or not a regular file, is refused, never followed
//!   (`O_NOFOLLOW` on every open, `lstat` before replacing; a FIFO is never waited on);
//! - the new content goes to a temp file with a random name in the same folder, created
//!   exclusively (`O_CREAT|O_EXCL`, so a planted name fails instead of being followed),
//!   synced, then renamed over the target (rename replaces a name, it never follows one),
//!   and the folder is synced;
//! - the replaced file keeps its mode and, when switchyard may (as root), its owner and
//!   group; if its group cannot be kept the group's permissions are dropped rather than
//!   handed to another group. A new file is created [`NEW_FILE_MODE`].
//!
//! What remains: between the check and the rename someone may swap the name again; the
//! rename then replaces whatever is there with our file and its intended mode, and never
//! writes through a link.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of a file switchyard creates on the controller.
/// *Decision*: 0600 for every new file, host_vars and retry files included. The files
/// switchyard writes are read by the user who runs it; a host_vars file is shared by
/// committing it (git records no read bits), and a rule with no exception cannot be wrong
/// about which file holds a secret.
pub const NEW_FILE_MODE: u32 = 0o600;

/// The largest file [`read`] accepts: the same bound as every YAML input.
pub const MAX_READ_BYTES: u64 = crate::inputs::source::MAX_INPUT_BYTES;

/// The file at a name, as [`read`] or [`existing`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Existing {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    dev: u64,
    ino: u64,
    /// The inode's change time: a file removed and another created in its place can get the
    /// same inode number at once (ext4 and tmpfs reuse freed inodes), and a file rewritten
    /// in place keeps it; either changes this.
    ctime: (i64, i64),
}

impl Existing {
    fn of(m: &std::fs::Metadata) -> Existing {
        Existing {
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            dev: m.dev(),
            ino: m.ino(),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

fn refused(why: &str) -> io::Error {
    io::Error::other(why.to_string())
}

const LINK_REFUSED: &str = "is a symbolic link: refused, never followed";
const NOT_REGULAR: &str = "is not a regular file: refused";

/// Read a regular file without following a link at its name: `Ok(None)` when there is
/// none. Bounded by [`MAX_READ_BYTES`].
pub fn read(path: &Path) -> io::Result<Option<(Vec<u8>, Existing)>> {
    let f = match OpenOptions::new()
        .read(true)
        // O_NONBLOCK: a planted FIFO is opened (and then refused) instead of waited on.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(refused(LINK_REFUSED)),
        Err(e) => return Err(e),
    };
    let m = f.metadata()?;
    if !m.is_file() {
        return Err(refused(NOT_REGULAR));
    }
    let data = crate::inputs::source::read_at_most(f, MAX_READ_BYTES).map_err(|e| match e {
        crate::inputs::source::FileRefusal::Io(e) => e,
        _ => refused(&format!("is larger than {MAX_READ_BYTES} bytes: refused")),
    })?;
    Ok(Some((data, Existing::of(&m))))
}

/// The regular file now at `path` (`lstat`), `None` when there is none; a link or any
/// other kind of file is refused.
pub fn existing(path: &Path) -> io::Result<Option<Existing>> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(refused(LINK_REFUSED)),
        Ok(m) if !m.is_file() => Err(refused(NOT_REGULAR)),
        Ok(m) => Ok(Some(Existing::of(&m))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replace (or create) `path` with `data`, keeping the mode and owner of what is there.
pub fn write(path: &Path, data: &[u8]) -> io::Result<()> {
    let was = existing(path)?;
    replace(path, data, was.as_ref())
}

/// Replace (or create) `path` with `data` readable by its writer alone (0600, owned by the
/// user running switchyard), whatever the file there was: for decrypted secrets and keys.
pub fn write_private(path: &Path, data: &[u8]) -> io::Result<()> {
    let was = existing(path)?;
    put(path, data, was.as_ref(), Some(0o600))
}

/// Replace `path`, which was `was` when its content was read, with `data`. Refused when the
/// name now holds another file (or a file appeared or went away): whatever `data` was made
/// from is no longer what is there. The new file gets `was`'s mode and owner.
pub fn replace(path: &Path, data: &[u8], was: Option<&Existing>) -> io::Result<()> {
    put(path, data, was, None)
}

/// [`replace`], with the new file's mode `forced` (and its owner the writer) if given.
fn put(path: &Path, data: &[u8], was: Option<&Existing>, forced: Option<u32>) -> io::Result<()> {
    let now = existing(path)?;
    let id = |e: Option<&Existing>| e.map(|e| (e.dev, e.ino, e.ctime));
    if id(now.as_ref()) != id(was) {
        return Err(refused(
            "changed while switchyard was writing it: nothing written, run again",
        ));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| refused("has no file name"))?
        .to_string_lossy()
        .into_owned();
    let (tmp, mut f) = create_temp(dir, &name)?;
    let done = fill(&mut f, data, was, forced)
        .and_then(|_| std::fs::rename(&tmp, path))
        .and_then(|_| File::open(dir)?.sync_all());
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// `.NAME.RANDOM.switchyard-tmp` in `dir`, created exclusively: a name someone planted
/// (even a dangling link) makes the create fail, and a new random name is tried.
fn create_temp(dir: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    let mut last = None;
    for _ in 0..8 {
        let tmp = dir.join(format!(".{name}.{}.switchyard-tmp", random_hex()?));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| refused("no free temp file name")))
}

/// Content, owner and mode of the temp file, then synced.
fn fill(f: &mut File, data: &[u8], was: Option<&Existing>, forced: Option<u32>) -> io::Result<()> {
    f.write_all(data)?;
    let mode = match (forced, was) {
        (Some(mode), _) => mode,
        (None, None) => NEW_FILE_MODE,
        (None, Some(w)) => {
            let mine = f.metadata()?;
            if (mine.uid(), mine.gid()) != (w.uid, w.gid) {
                // Root keeps both; anyone else keeps the group if a member of it.
                if std::os::unix::fs::fchown(&*f, Some(w.uid), Some(w.gid)).is_err() {
                    let _ = std::os::unix::fs::fchown(&*f, None, Some(w.gid));
                }
            }
            // Setuid and setgid bits are never carried over to a file we wrote.
            let mut mode = w.mode & 0o777;
            if f.metadata()?.gid() != w.gid {
                mode &= !0o070;
            }
            mode
        }
    };
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    f.sync_all()
}

pub(crate) fn random_hex() -> io::Result<String> {
    let mut b = [0u8; 8];
    File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn dir(tag: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("switchyard-atomic-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn a_planted_link_is_refused_and_its_target_untouched() {
        let d = dir("link");
        let victim = d.join("secrets.yml");
        std::fs::write(&victim, "root_password: hunter22\n").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
        let name = d.join("pbx.yml");
        symlink(&victim, &name).unwrap();
        for e in [
            read(&name).unwrap_err(),
            write(&name, b"x: 1\n").unwrap_err(),
        ] {
            assert!(e.to_string().contains("symbolic link"), "{e}");
        }
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "root_password: hunter22\n"
        );
        assert_eq!(mode(&victim), 0o600);
        assert!(std::fs::symlink_metadata(&name)
            .unwrap()
            .file_type()
            .is_symlink());
        // A FIFO is refused at once, not waited on.
        let fifo = d.join("fifo.yml");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        assert!(read(&fifo).unwrap_err().to_string().contains("regular"));
        assert!(write(&fifo, b"x")
            .unwrap_err()
            .to_string()
            .contains("regular"));
        // The old predictable temp name, planted, is never used.
        let keys = d.join("authorized_keys");
        std::fs::write(&keys, "").unwrap();
        symlink(&keys, d.join("new.yml.switchyard-tmp")).unwrap();
        write(&d.join("new.yml"), b"a: 1\n").unwrap();
        assert_eq!(std::fs::read_to_string(&keys).unwrap(), "");
        assert_eq!(
            std::fs::read_to_string(d.join("new.yml")).unwrap(),
            "a: 1\n"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn mode_and_owner_are_kept_and_new_files_are_private() {
        let d = dir("mode");
        let p = d.join("host.yml");
        write(&p, b"a: 1\n").unwrap();
        assert_eq!(mode(&p), NEW_FILE_MODE);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let (_, was) = read(&p).unwrap().unwrap();
        replace(&p, b"a: 2\n", Some(&was)).unwrap();
        assert_eq!(mode(&p), 0o640);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a: 2\n");
        // A file replaced since it was read: nothing written.
        std::fs::remove_file(&p).unwrap();
        std::fs::write(&p, "other\n").unwrap();
        assert!(replace(&p, b"a: 3\n", Some(&was))
            .unwrap_err()
            .to_string()
            .contains("changed"));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "other\n");
        // Owned by another user (tests run as root): owner and group kept.
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
            write(&p, b"b: 1\n").unwrap();
            let m = std::fs::metadata(&p).unwrap();
            assert_eq!((m.uid(), m.gid()), (65534, 65534));
        }
        // No temp file is left behind.
        let names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("host.yml")]);
        // Private: 0600 whatever the file was.
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&p, b"secret\n").unwrap();
        assert_eq!(mode(&p), 0o600);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
