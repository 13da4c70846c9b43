//! The new root: planned in the parent as data (a list of operations with
//! every string pre-built), carried out in the child inside its own mount
//! namespace.
//!
//! Why this shape: the sources are cloned with open_tree(2) *before* anything
//! is mounted, so the staging tmpfs can sit anywhere without hiding a source,
//! and a recursive mount_setattr(2) makes every submount of a bind read-only,
//! which a classic remount of the top mount does not.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, mkdir, symlinkat};

use crate::error::{At, ChildError, SpawnError, Step};
use crate::spec::RootSpec;
use crate::sys;
use crate::trace::ChildMarks;

/// Device nodes bound from the host into /dev.
pub(crate) const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Symlinks created in /dev.
const DEV_LINKS: [(&str, &str); 5] = [
    ("/proc/self/fd", "dev/fd"),
    ("/proc/self/fd/0", "dev/stdin"),
    ("/proc/self/fd/1", "dev/stdout"),
    ("/proc/self/fd/2", "dev/stderr"),
    ("/tmp", "dev/shm"),
];

/// What a bind is for: it decides the mount flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BindKind {
    /// Read-only, nosuid, nodev (host paths and /fn).
    ReadOnly,
    /// Read-write, nosuid, nodev (the policy's writable host paths).
    ReadWrite,
    /// A device node: nosuid, noexec (devices must stay usable, so not nodev).
    Device,
}

/// One step of building the root, relative to the staging directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RootOp {
    Bind {
        src: CString,
        dst: CString,
        /// Every directory to create first (parents first).
        parents: Vec<CString>,
        is_dir: bool,
        kind: BindKind,
    },
    Symlink {
        target: CString,
        dst: CString,
        parents: Vec<CString>,
    },
}

/// The whole root, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RootPlan {
    pub ops: Vec<RootOp>,
    pub tmp_opts: CString,
    pub work: Option<WorkPlan>,
    /// Paths (inside the sandbox) landlock lets the payload read and execute.
    pub read_paths: Vec<PathBuf>,
    /// Paths (inside the sandbox) landlock lets the payload also write: the
    /// writable binds that are directories or files (not recreated symlinks).
    pub write_paths: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WorkPlan {
    pub opts: CString,
    pub files: Vec<(CString, Vec<u8>)>,
}

fn cstr(p: &Path) -> Result<CString, SpawnError> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| SpawnError::InvalidSpec(format!("NUL byte in path {}", p.display())))
}

/// "/a/b/c" → "a/b/c", refusing anything that is not absolute and plain.
fn relative(p: &Path) -> Result<PathBuf, SpawnError> {
    if !p.is_absolute() {
        return Err(SpawnError::InvalidSpec(format!(
            "path {} is not absolute",
            p.display()
        )));
    }
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(n) => out.push(n),
            _ => {
                return Err(SpawnError::InvalidSpec(format!(
                    "path {} is not normalised",
                    p.display()
                )))
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(SpawnError::InvalidSpec(
            "the host root cannot be bound".into(),
        ));
    }
    Ok(out)
}

fn parents_of(rel: &Path, include_self: bool) -> Result<Vec<CString>, SpawnError> {
    let mut v = Vec::new();
    let mut acc = PathBuf::new();
    let comps: Vec<_> = rel.components().collect();
    let n = if include_self {
        comps.len()
    } else {
        comps.len() - 1
    };
    for c in &comps[..n] {
        acc.push(c);
        v.push(cstr(&acc)?);
    }
    Ok(v)
}

fn bind_op(src: &Path, dst_rel: &Path, kind: BindKind) -> Result<RootOp, SpawnError> {
    let meta = std::fs::symlink_metadata(src)
        .map_err(|e| SpawnError::InvalidSpec(format!("cannot bind {}: {e}", src.display())))?;
    if meta.file_type().is_symlink() {
        // Debian's /lib -> usr/lib: recreate the link, it resolves inside.
        let target = std::fs::read_link(src).map_err(|e| {
            SpawnError::InvalidSpec(format!("cannot read link {}: {e}", src.display()))
        })?;
        return Ok(RootOp::Symlink {
            target: cstr(&target)?,
            dst: cstr(dst_rel)?,
            parents: parents_of(dst_rel, false)?,
        });
    }
    let is_dir = meta.is_dir();
    Ok(RootOp::Bind {
        src: cstr(src)?,
        dst: cstr(dst_rel)?,
        parents: parents_of(dst_rel, is_dir)?,
        is_dir,
        kind,
    })
}

impl RootPlan {
    /// Turn a [`RootSpec`] into operations. Reads the host (lstat, readlink)
    /// but changes nothing.
    pub(crate) fn new(spec: &RootSpec) -> Result<RootPlan, SpawnError> {
        if let Some(p) = spec.writable.iter().find(|w| spec.read_only.contains(w)) {
            return Err(SpawnError::InvalidSpec(format!(
                "{} is both read-only and writable",
                p.display()
            )));
        }
        // (host, target, kind): same-path binds, writable ones and the extra
        // ones, parents first (a writable dir may sit beneath a read-only one).
        let mut binds: Vec<(PathBuf, PathBuf, BindKind)> = spec
            .read_only
            .iter()
            .map(|p| (p.clone(), p.clone(), BindKind::ReadOnly))
            .chain(
                spec.writable
                    .iter()
                    .map(|p| (p.clone(), p.clone(), BindKind::ReadWrite)),
            )
            .chain(
                spec.extra
                    .iter()
                    .map(|b| (b.host.clone(), b.target.clone(), BindKind::ReadOnly)),
            )
            .collect();
        binds.sort_by(|a, b| a.1.cmp(&b.1));
        binds.dedup();
        let mut ops = Vec::new();
        let mut read_paths = Vec::new();
        let mut write_paths = Vec::new();
        for (host, target, kind) in &binds {
            relative(host)?;
            let rel = relative(target)?;
            for reserved in ["fn", "proc", "dev", "tmp", "work"] {
                if rel.starts_with(reserved) {
                    return Err(SpawnError::InvalidSpec(format!(
                        "{} would hide the sandbox's own /{reserved}",
                        target.display()
                    )));
                }
            }
            let op = bind_op(host, &rel, *kind)?;
            if matches!(op, RootOp::Bind { .. }) {
                read_paths.push(target.clone());
                if *kind == BindKind::ReadWrite {
                    write_paths.push(target.clone());
                }
            }
            ops.push(op);
        }
        if let Some(f) = &spec.function_dir {
            relative(f)?;
            let op = bind_op(f, Path::new("fn"), BindKind::ReadOnly)?;
            if !matches!(op, RootOp::Bind { is_dir: true, .. }) {
                return Err(SpawnError::InvalidSpec(format!(
                    "function directory {} is not a directory",
                    f.display()
                )));
            }
            ops.push(op);
            read_paths.push(PathBuf::from("/fn"));
        }
        for d in DEVICES {
            ops.push(bind_op(
                &Path::new("/dev").join(d),
                &Path::new("dev").join(d),
                BindKind::Device,
            )?);
        }
        for (target, dst) in DEV_LINKS {
            ops.push(RootOp::Symlink {
                target: cstr(Path::new(target))?,
                dst: cstr(Path::new(dst))?,
                parents: parents_of(Path::new(dst), false)?,
            });
        }
        let work = match &spec.work {
            None => None,
            Some(w) => {
                let mut files = Vec::new();
                for (name, data) in &w.files {
                    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                        return Err(SpawnError::InvalidSpec(format!("work file name {name:?}")));
                    }
                    files.push((cstr(&Path::new("work").join(name))?, data.clone()));
                }
                Some(WorkPlan {
                    opts: tmpfs_opts(w.bytes, w.inodes, 0o755)?,
                    files,
                })
            }
        };
        Ok(RootPlan {
            ops,
            tmp_opts: tmpfs_opts(spec.tmp_bytes, spec.tmp_inodes, 0o1777)?,
            work,
            read_paths,
            write_paths,
        })
    }
}

fn tmpfs_opts(bytes: u64, inodes: u64, mode: u32) -> Result<CString, SpawnError> {
    if bytes == 0 || inodes == 0 {
        return Err(SpawnError::InvalidSpec(
            "tmpfs size and inodes must be > 0".into(),
        ));
    }
    Ok(CString::new(format!("size={bytes},nr_inodes={inodes},mode={mode:o}")).expect("no NUL"))
}

/// mkdir, tolerating what already exists.
fn mkdir_all(dirs: &[CString]) -> Result<(), nix::errno::Errno> {
    for d in dirs {
        match mkdir(d.as_c_str(), Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

const STAGING: &std::ffi::CStr = c"/tmp";

/// In the child: build the root and pivot into it. Returns the /work
/// directory fd when a work dir was asked for.
pub(crate) fn build_root(
    plan: &RootPlan,
    t: &mut ChildMarks,
) -> Result<Option<OwnedFd>, ChildError> {
    // Nothing we mount may propagate back to the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .at(Step::Propagation)?;
    t.mark(Step::Propagation);

    // Clone every source first, while the host tree is still in view.
    let mut trees: Vec<Option<OwnedFd>> = Vec::with_capacity(plan.ops.len());
    for op in &plan.ops {
        trees.push(match op {
            RootOp::Bind { src, kind, .. } => {
                let fd = sys::open_tree_clone(src).at(Step::OpenBinds)?;
                let set = match kind {
                    BindKind::ReadOnly => {
                        sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV
                    }
                    BindKind::ReadWrite => sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV,
                    BindKind::Device => sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NOEXEC,
                };
                sys::mount_setattr(Some(fd.as_fd()), c"", set, true).at(Step::OpenBinds)?;
                Some(fd)
            }
            RootOp::Symlink { .. } => None,
        });
    }

    t.mark(Step::OpenBinds);
    mount(
        Some("tmpfs"),
        STAGING,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("size=1m,nr_inodes=4096,mode=755"),
    )
    .at(Step::BuildRoot)?;
    chdir(STAGING).at(Step::BuildRoot)?;

    for (op, tree) in plan.ops.iter().zip(trees.iter()) {
        match op {
            RootOp::Bind {
                dst,
                parents,
                is_dir,
                ..
            } => {
                mkdir_all(parents).at(Step::BuildRoot)?;
                if !is_dir {
                    // O_EXCL: a file that already exists (inside an earlier
                    // bind) is the mount point as it is, never opened for
                    // writing (EROFS in a read-only bind, a host file in a
                    // writable one).
                    match open(
                        dst.as_c_str(),
                        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                        Mode::from_bits_truncate(0o644),
                    ) {
                        Ok(_) | Err(nix::errno::Errno::EEXIST) => {}
                        Err(e) => {
                            return Err(ChildError {
                                step: Step::BuildRoot,
                                errno: e,
                            })
                        }
                    }
                }
                let fd = tree.as_ref().expect("bind has a tree");
                sys::move_mount(fd.as_fd(), dst).at(Step::BuildRoot)?;
            }
            RootOp::Symlink {
                target,
                dst,
                parents,
            } => {
                mkdir_all(parents).at(Step::BuildRoot)?;
                symlinkat(target.as_c_str(), nix::fcntl::AT_FDCWD, dst.as_c_str())
                    .at(Step::BuildRoot)?;
            }
        }
    }
    drop(trees);
    t.mark(Step::BuildRoot);

    // A fresh procfs of our pid namespace, read-only, showing only processes:
    // no /proc/sys, /proc/kcore, /proc/sysrq-trigger, /proc/keys at all.
    mkdir_all(&[c"proc".into()]).at(Step::Proc)?;
    mount(
        Some("proc"),
        "proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY,
        Some("subset=pid"),
    )
    .at(Step::Proc)?;
    t.mark(Step::Proc);

    mkdir_all(&[c"tmp".into()]).at(Step::Tmp)?;
    mount(
        Some("tmpfs"),
        "tmp",
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(plan.tmp_opts.as_c_str()),
    )
    .at(Step::Tmp)?;

    t.mark(Step::Tmp);
    let work = match &plan.work {
        None => None,
        Some(w) => Some(build_work(w)?),
    };

    // pivot_root(".", ".") stacks the old root on top of the new one; the
    // lazy unmount then drops the whole host tree from this namespace.
    sys::pivot_root(c".", c".").at(Step::PivotRoot)?;
    umount2(".", MntFlags::MNT_DETACH).at(Step::PivotRoot)?;
    chdir("/").at(Step::PivotRoot)?;
    t.mark(Step::PivotRoot);
    // The root itself is read-only from now on; /tmp and /work stay writable.
    sys::mount_setattr(
        None,
        c"/",
        sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV,
        false,
    )
    .at(Step::ReadOnlyRoot)?;
    t.mark(Step::ReadOnlyRoot);
    Ok(work)
}

fn build_work(w: &WorkPlan) -> Result<OwnedFd, ChildError> {
    mkdir_all(&[c"work".into()]).at(Step::WorkDir)?;
    mount(
        Some("tmpfs"),
        "work",
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(w.opts.as_c_str()),
    )
    .at(Step::WorkDir)?;
    for (name, data) in &w.files {
        let fd = open(
            name.as_c_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .at(Step::WorkDir)?;
        let mut rest: &[u8] = data;
        while !rest.is_empty() {
            let n = nix::unistd::write(&fd, rest).at(Step::WorkDir)?;
            rest = &rest[n..];
        }
    }
    open(
        "work",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .at(Step::WorkDir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::WorkSpec;

    fn spec(ro: &[&str]) -> RootSpec {
        RootSpec {
            read_only: ro.iter().map(PathBuf::from).collect(),
            writable: Vec::new(),
            function_dir: None,
            extra: Vec::new(),
            tmp_bytes: 1 << 20,
            tmp_inodes: 100,
            work: None,
        }
    }

    fn binds(plan: &RootPlan) -> Vec<String> {
        plan.ops
            .iter()
            .map(|op| match op {
                RootOp::Bind { dst, .. } => format!("bind {}", dst.to_str().unwrap()),
                RootOp::Symlink { target, dst, .. } => format!(
                    "link {} -> {}",
                    dst.to_str().unwrap(),
                    target.to_str().unwrap()
                ),
            })
            .collect()
    }

    #[test]
    fn plan_binds_sorted_parents_first_with_devices_and_links() {
        let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
        let a = tmp.path().join("a");
        std::fs::create_dir_all(a.join("b")).unwrap();
        let p =
            RootPlan::new(&spec(&[a.join("b").to_str().unwrap(), a.to_str().unwrap()])).unwrap();
        let b = binds(&p);
        let rel_a = a.strip_prefix("/").unwrap().to_str().unwrap().to_owned();
        assert_eq!(b[0], format!("bind {rel_a}"));
        assert_eq!(b[1], format!("bind {rel_a}/b"));
        assert!(b.contains(&"bind dev/null".to_string()));
        assert!(b.contains(&"link dev/fd -> /proc/self/fd".to_string()));
        assert!(!b
            .iter()
            .any(|x| x.contains("dev/mem") || x.contains("dev/kmsg")));
        // Parents are created outermost first.
        let RootOp::Bind { parents, .. } = &p.ops[1] else {
            panic!()
        };
        assert!(parents
            .windows(2)
            .all(|w| w[0].as_bytes().len() < w[1].as_bytes().len()));
        assert_eq!(
            p.tmp_opts.to_str().unwrap(),
            "size=1048576,nr_inodes=100,mode=1777"
        );
    }

    #[test]
    fn plan_host_symlink_is_recreated_not_followed() {
        let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
        std::fs::create_dir(tmp.path().join("real")).unwrap();
        std::os::unix::fs::symlink("real", tmp.path().join("link")).unwrap();
        let p = RootPlan::new(&spec(&[tmp.path().join("link").to_str().unwrap()])).unwrap();
        assert!(
            matches!(&p.ops[0], RootOp::Symlink { target, .. } if target.to_str() == Ok("real"))
        );
        assert!(p.read_paths.is_empty(), "a symlink grants no landlock rule");
    }

    #[test]
    fn plan_relative_or_dotdot_or_root_path_is_rejected() {
        for bad in ["usr", "/usr/../etc", "/"] {
            assert!(
                matches!(
                    RootPlan::new(&spec(&[bad])),
                    Err(SpawnError::InvalidSpec(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn plan_path_hiding_sandbox_mounts_is_rejected() {
        assert!(RootPlan::new(&spec(&["/tmp"])).is_err());
        assert!(matches!(
            RootPlan::new(&spec(&["/proc"])),
            Err(SpawnError::InvalidSpec(m)) if m.contains("/proc")
        ));
        assert!(RootPlan::new(&spec(&["/dev"])).is_err());
    }

    #[test]
    fn plan_extra_bind_lands_at_its_target() {
        let mut s = spec(&[]);
        s.extra.push(crate::spec::ExtraBind {
            host: PathBuf::from("/bin/sh"),
            target: PathBuf::from("/run/paddock/runner"),
        });
        let p = RootPlan::new(&s).unwrap();
        assert!(binds(&p)
            .iter()
            .any(|b| b == "bind run/paddock/runner" || b.starts_with("link run/paddock/runner")));
        s.extra[0].target = PathBuf::from("/tmp/x");
        assert!(RootPlan::new(&s).is_err());
    }

    #[test]
    fn plan_missing_source_is_rejected() {
        assert!(RootPlan::new(&spec(&["/does/not/exist"])).is_err());
    }

    #[test]
    fn plan_function_dir_must_be_a_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("file");
        std::fs::write(&f, "x").unwrap();
        let mut s = spec(&[]);
        s.function_dir = Some(f);
        assert!(RootPlan::new(&s).is_err());
        s.function_dir = Some(tmp.path().to_path_buf());
        let p = RootPlan::new(&s).unwrap();
        assert!(p.read_paths.contains(&PathBuf::from("/fn")));
    }

    #[test]
    fn plan_writable_path_is_a_read_write_bind_beneath_a_read_only_one() {
        let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let mut s = spec(&[tmp.path().to_str().unwrap()]);
        s.writable.push(data.clone());
        let p = RootPlan::new(&s).unwrap();
        let kinds: Vec<(String, BindKind)> = p
            .ops
            .iter()
            .filter_map(|op| match op {
                RootOp::Bind { dst, kind, .. } => Some((dst.to_str().unwrap().to_owned(), *kind)),
                RootOp::Symlink { .. } => None,
            })
            .take(2)
            .collect();
        let rel = |q: &Path| q.strip_prefix("/").unwrap().to_str().unwrap().to_owned();
        // Parents first: the read-only dir, then the writable one on top of it.
        assert_eq!(
            kinds,
            vec![
                (rel(tmp.path()), BindKind::ReadOnly),
                (rel(&data), BindKind::ReadWrite)
            ]
        );
        assert_eq!(p.write_paths, vec![data.clone()]);
        assert!(p.read_paths.contains(&data));
    }

    #[test]
    fn plan_writable_host_symlink_is_recreated_and_grants_no_write_rule() {
        let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
        std::fs::create_dir(tmp.path().join("real")).unwrap();
        std::os::unix::fs::symlink("real", tmp.path().join("link")).unwrap();
        let mut s = spec(&[]);
        s.writable.push(tmp.path().join("link"));
        let p = RootPlan::new(&s).unwrap();
        assert!(
            matches!(&p.ops[0], RootOp::Symlink { target, .. } if target.to_str() == Ok("real"))
        );
        assert!(
            p.write_paths.is_empty(),
            "a symlink grants no landlock rule"
        );
    }

    #[test]
    fn plan_path_both_read_only_and_writable_is_rejected() {
        let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
        let mut s = spec(&[tmp.path().to_str().unwrap()]);
        s.writable.push(tmp.path().to_path_buf());
        assert!(matches!(
            RootPlan::new(&s),
            Err(SpawnError::InvalidSpec(m)) if m.contains("both read-only and writable")
        ));
        // Writable paths obey the same reserved-target rule.
        let mut s = spec(&[]);
        s.writable.push(PathBuf::from("/tmp"));
        assert!(RootPlan::new(&s).is_err());
    }

    #[test]
    fn plan_work_file_names_must_be_plain() {
        let mut s = spec(&[]);
        for bad in ["", "../x", "a/b", ".."] {
            s.work = Some(WorkSpec {
                bytes: 1024,
                inodes: 10,
                files: vec![(bad.to_string(), vec![])],
            });
            assert!(RootPlan::new(&s).is_err(), "{bad:?}");
        }
        s.work = Some(WorkSpec {
            bytes: 1024,
            inodes: 10,
            files: vec![("input".into(), b"hi".to_vec())],
        });
        let p = RootPlan::new(&s).unwrap();
        assert_eq!(p.work.unwrap().files[0].0.to_str().unwrap(), "work/input");
    }
}
