//! `migrate`'s copy and verify on real btrfs (loop devices): a tree with everything a
//! Podman volume or graphroot can hold is copied into a NOCOW subvolume (data rewritten,
//! every file NOCOW, no shared extents) and into a copy-on-write one (reflinked, next to no
//! space used), verified, and the faults a live copy meets: a corrupted byte, a source
//! that changes, a full target, a copy cancelled and resumed.

mod common;

use common::*;
use podfs::btrfs;
use podfs::migrate::copy::{CopyError, CopyOptions, CopyStats, Progress, Reflink, copy_tree, measure};
use podfs::migrate::tree;
use podfs::migrate::verify::{Difference, VerifyError, verify_tree};
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

const MIB: u64 = 1 << 20;

/// Deterministic pseudo-random bytes (xorshift), so the data does not compress or dedupe.
struct Noise(u64);

impl Noise {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            chunk.copy_from_slice(&self.0.to_le_bytes()[..chunk.len()]);
        }
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        self.fill(&mut v);
        v
    }
}

fn write_random(path: &Path, size: u64, noise: &mut Noise) {
    let mut f = fs::File::create(path).unwrap();
    let mut buf = vec![0u8; MIB as usize];
    let mut left = size;
    while left > 0 {
        let n = left.min(MIB) as usize;
        noise.fill(&mut buf[..n]);
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
}

fn set_times(path: &Path, atime: (i64, i64), mtime: (i64, i64)) {
    let ts = Timestamps {
        last_access: Timespec { tv_sec: atime.0, tv_nsec: atime.1 },
        last_modification: Timespec { tv_sec: mtime.0, tv_nsec: mtime.1 },
    };
    rfs::utimensat(rfs::CWD, path, &ts, AtFlags::SYMLINK_NOFOLLOW).unwrap();
}

/// A POSIX ACL as the kernel stores it in `system.posix_acl_*`: version 2, then (tag,
/// permissions, id) entries in tag order. user::rw-, user:1234:r--, group::r--, mask::r--, other::---.
fn acl(perm_user: u16) -> Vec<u8> {
    let mut v = 2u32.to_le_bytes().to_vec();
    let undefined = u32::MAX;
    for (tag, perm, id) in [
        (0x01u16, 6u16, undefined),
        (0x02, perm_user, 1234),
        (0x04, 4, undefined),
        (0x10, 4, undefined),
        (0x20, 0, undefined),
    ] {
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&perm.to_le_bytes());
        v.extend_from_slice(&id.to_le_bytes());
    }
    v
}

fn odd(dir: &Path, name: &[u8]) -> PathBuf {
    dir.join(OsStr::from_bytes(name))
}

/// What the source holds, for the assertions.
struct Source {
    root: PathBuf,
    /// 1 GiB apparent, 1 MiB of data.
    sparse: PathBuf,
    big: Vec<PathBuf>,
}

/// A tree with everything a volume or graphroot can hold: `small` files of 1–63 KiB and
/// `big` files of `big_size` of random data, a sparse file (1 GiB apparent, 1 MiB data), a
/// hardlink pair, symlinks (absolute, relative, dangling), user, trusted.overlay and ACL
/// attributes, a fifo, a socket, a character device, other owners and modes, odd names
/// and set times.
fn make_source(root: &Path, small: usize, big: usize, big_size: u64) -> Source {
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    fs::create_dir_all(root).unwrap();
    let data = root.join("data");
    fs::create_dir(&data).unwrap();
    for i in 0..small {
        let dir = data.join(format!("d{:02}", i % 40));
        fs::create_dir_all(&dir).unwrap();
        let size = 1024 * (1 + (i * 7919) % 63);
        fs::write(dir.join(format!("f{i:05}")), noise.bytes(size)).unwrap();
    }
    let mut bigs = Vec::new();
    for i in 0..big {
        let p = root.join(format!("big{i}"));
        write_random(&p, big_size, &mut noise);
        bigs.push(p);
    }
    let sparse = root.join("sparse.img");
    {
        let f = fs::File::create(&sparse).unwrap();
        f.set_len(1 << 30).unwrap();
        use std::os::unix::fs::FileExt;
        f.write_all_at(&noise.bytes(512 * 1024), 0).unwrap();
        f.write_all_at(&noise.bytes(512 * 1024), 512 * MIB).unwrap();
    }
    // A NOCOW file: the kernel refuses to clone it into a copy-on-write file. (On btrfs.)
    let on_btrfs = btrfs::is_btrfs(rustix::fd::AsFd::as_fd(&fs::File::open(root).unwrap()));
    if on_btrfs {
        let f = fs::File::create(root.join("nocow-file")).unwrap();
        btrfs::set_nocow(rustix::fd::AsFd::as_fd(&f)).unwrap();
        drop(f);
        write_random(&root.join("nocow-file"), MIB, &mut noise);
    }
    // Hardlinks, also across directories.
    fs::write(root.join("linked-a"), b"one inode, two names\n").unwrap();
    fs::hard_link(root.join("linked-a"), data.join("linked-b")).unwrap();
    // Symlinks: absolute, relative, dangling; owned by someone else.
    std::os::unix::fs::symlink("/etc/passwd", root.join("abs-link")).unwrap();
    std::os::unix::fs::symlink("../linked-a", data.join("rel-link")).unwrap();
    std::os::unix::fs::symlink("does/not/exist", root.join("dangling")).unwrap();
    rfs::chownat(
        rfs::CWD,
        root.join("dangling"),
        Some(rfs::Uid::from_raw(4321)),
        None,
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
    // Extended attributes and ACLs.
    fs::write(root.join("tagged"), b"x").unwrap();
    rfs::setxattr(root.join("tagged"), "user.comment", b"kept", XattrFlags::empty()).unwrap();
    let upper = root.join("overlay-upper");
    fs::create_dir(&upper).unwrap();
    rfs::setxattr(&upper, "trusted.overlay.opaque", b"y", XattrFlags::empty()).unwrap();
    // An SELinux label as container-selinux gives a volume's files (stored as a plain
    // security.* attribute on a kernel without SELinux).
    rfs::setxattr(
        root.join("tagged"),
        "security.selinux",
        b"system_u:object_r:container_file_t:s0:c1,c2\0",
        XattrFlags::empty(),
    )
    .unwrap();
    fs::write(root.join("acl-file"), b"acl").unwrap();
    rfs::setxattr(root.join("acl-file"), "system.posix_acl_access", &acl(4), XattrFlags::empty()).unwrap();
    rfs::setxattr(&upper, "system.posix_acl_default", &acl(5), XattrFlags::empty()).unwrap();
    // Special files.
    rfs::mknodat(rfs::CWD, root.join("fifo"), FileType::Fifo, Mode::from_raw_mode(0o640), 0).unwrap();
    rfs::mknodat(
        rfs::CWD,
        root.join("null"),
        FileType::CharacterDevice,
        Mode::from_raw_mode(0o666),
        rfs::makedev(1, 3),
    )
    .unwrap();
    drop(std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap());
    // An overlay whiteout: a character device 0:0.
    rfs::mknodat(rfs::CWD, upper.join("deleted"), FileType::CharacterDevice, Mode::empty(), 0).unwrap();
    // Owners and modes.
    fs::write(root.join("setuid"), b"#!/bin/sh\n").unwrap();
    rfs::chown(root.join("setuid"), Some(rfs::Uid::from_raw(1000)), Some(rfs::Gid::from_raw(1001))).unwrap();
    fs::set_permissions(root.join("setuid"), fs::Permissions::from_mode(0o4755)).unwrap();
    // A file capability (cap_net_bind_service+ep), which chown would clear.
    fs::write(root.join("capable"), b"bin").unwrap();
    rfs::chown(root.join("capable"), Some(rfs::Uid::from_raw(1000)), None).unwrap();
    let mut cap = 0x0200_0001u32.to_le_bytes().to_vec();
    for word in [1u32 << 10, 0, 0, 0] {
        cap.extend_from_slice(&word.to_le_bytes());
    }
    rfs::setxattr(root.join("capable"), "security.capability", &cap, XattrFlags::empty()).unwrap();

    let sticky = root.join("sticky");
    fs::create_dir(&sticky).unwrap();
    fs::set_permissions(&sticky, fs::Permissions::from_mode(0o1777)).unwrap();
    // A compression property of its own: the target's attributes win.
    if on_btrfs {
        rfs::setxattr(&sticky, "btrfs.compression", b"zstd", XattrFlags::empty()).unwrap();
    }
    rfs::chown(&data, Some(rfs::Uid::from_raw(999)), Some(rfs::Gid::from_raw(999))).unwrap();
    fs::set_permissions(&data, fs::Permissions::from_mode(0o2750)).unwrap();
    // Odd names.
    for name in [&b"\x80\xfe\xff bytes"[..], b"new\nline", b"-leading-dash", b" space "] {
        fs::write(odd(&sticky, name), name).unwrap();
    }
    fs::create_dir(odd(root, b"dir\xff")).unwrap();
    fs::write(odd(root, b"dir\xff").join("inner"), b"inner").unwrap();
    // Times with nanoseconds, set last (children first).
    set_times(&root.join("tagged"), (1_000_000_000, 123), (1_100_000_000, 456_789));
    set_times(&root.join("dangling"), (1_200_000_000, 1), (1_300_000_000, 999_999_999));
    set_times(&sticky, (1_400_000_000, 5), (1_500_000_000, 6));
    fs::set_permissions(root, fs::Permissions::from_mode(0o751)).unwrap();
    Source { root: root.to_path_buf(), sparse, big: bigs }
}

/// Everything the test can see of a tree, by relative path: type and metadata (no atime
/// of files, which reading changes), xattrs, symlink target and a content fingerprint.
/// A file's link count stands for the hardlinks.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let m = fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().to_path_buf();
        let mut xattrs: Vec<String> = Vec::new();
        let mut names = vec![0u8; 4096];
        if let Ok(n) = rfs::llistxattr(&p, &mut names[..]) {
            for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty() && !n.starts_with(b"btrfs.")) {
                let mut value = vec![0u8; 4096];
                let len = rfs::lgetxattr(&p, name, &mut value[..]).unwrap();
                xattrs.push(format!("{}={:?}", String::from_utf8_lossy(name), &value[..len]));
            }
        }
        xattrs.sort();
        let content = if m.is_file() {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            fs::read(&p).unwrap().hash(&mut h);
            format!("{:x}", h.finish())
        } else if m.file_type().is_symlink() {
            format!("{:?}", fs::read_link(&p).unwrap())
        } else {
            String::new()
        };
        out.insert(
            rel,
            format!(
                "mode={:o} uid={} gid={} size={} mtime={}.{} rdev={} nlink={} xattrs={xattrs:?} {content}",
                m.mode(),
                m.uid(),
                m.gid(),
                if m.is_dir() { 0 } else { m.size() },
                m.mtime(),
                m.mtime_nsec(),
                m.rdev(),
                // btrfs counts a directory's links as 1, ext4 as 2 + subdirectories.
                if m.is_dir() { 0 } else { m.nlink() },
            ),
        );
        if m.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                todo.push(e.unwrap().path());
            }
        }
    }
    out
}

/// Makes subvolume `name` in `parent`, NOCOW or not, as `migrate` prepares a target.
fn target(parent: &Path, name: &str, nocow: bool) -> PathBuf {
    let dir = rfs::open(parent, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
    btrfs::create_subvolume(rustix::fd::AsFd::as_fd(&dir), name).unwrap();
    let at = parent.join(name);
    if nocow {
        let fd = rfs::open(&at, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        btrfs::set_nocow(rustix::fd::AsFd::as_fd(&fd)).unwrap();
    }
    at
}

/// Regular files below `root` and whether each is NOCOW (the flag `lsattr` shows as C).
fn nocow_flags(root: &Path) -> Vec<(PathBuf, bool)> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let m = fs::symlink_metadata(&p).unwrap();
        if m.is_dir() {
            todo.extend(fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if m.is_file() {
            let fd = rfs::open(&p, OFlags::RDONLY | OFlags::NOFOLLOW, Mode::empty()).unwrap();
            out.push((p, btrfs::nocow(rustix::fd::AsFd::as_fd(&fd)).unwrap()));
        }
    }
    out
}

/// (total, exclusive, shared) bytes from `btrfs filesystem du -s --raw`.
fn btrfs_du(path: &Path) -> (u64, u64, u64) {
    let out = ok(Command::new("btrfs").args(["filesystem", "du", "-s", "--raw"]).arg(path));
    let line = out.lines().nth(1).unwrap_or_else(|| panic!("btrfs filesystem du printed:\n{out}"));
    let n: Vec<u64> = line.split_whitespace().take(3).map(|f| f.parse().unwrap()).collect();
    (n[0], n[1], n[2])
}

fn used_bytes(path: &Path) -> u64 {
    ok(Command::new("sync").arg("-f").arg(path));
    let s = rfs::statvfs(path).unwrap();
    (s.f_blocks - s.f_bfree) * s.f_frsize
}

/// Access and modification times, to the nanosecond, and owners of a file, a symlink and a
/// directory: the copy's equal the source's, and the mtimes are what `make_source` set.
/// (Access times are compared before anything reads the copy; the copy itself reads the
/// source with O_NOATIME, so the source's stay as they were.)
fn assert_times_kept(src: &Path, dst: &Path) {
    let times = |p: &Path| {
        let m = fs::symlink_metadata(p).unwrap();
        ((m.atime(), m.atime_nsec()), (m.mtime(), m.mtime_nsec()), m.uid())
    };
    for (name, mtime) in [
        ("tagged", (1_100_000_000, 456_789)),
        ("dangling", (1_300_000_000, 999_999_999)),
        ("sticky", (1_500_000_000, 6)),
    ] {
        let (a, b) = (times(&src.join(name)), times(&dst.join(name)));
        assert_eq!(a, b, "{name}");
        assert_eq!(b.1, mtime, "{name}");
    }
    assert_eq!(times(&dst.join("dangling")).2, 4321);
}

fn assert_copy_matches(src: &Source, dst: &Path, stats: &CopyStats) {
    let report =
        verify_tree(&src.root, dst, &CopyOptions::default()).unwrap_or_else(|e| panic!("verify: {e}"));
    assert_eq!(report.files, stats.files);
    assert!(report.less_sparse.is_empty(), "holes filled: {:?}", report.less_sparse);
    // The test's own view, independent of the module: everything but the root's name.
    let (a, b) = (snapshot(&src.root), snapshot(dst));
    assert_eq!(a.len(), b.len());
    for (k, v) in &a {
        assert_eq!(Some(v), b.get(k), "{k:?}");
    }
    let sparse = fs::metadata(dst.join(src.sparse.strip_prefix(&src.root).unwrap())).unwrap();
    assert_eq!(sparse.len(), 1 << 30);
    assert!(sparse.blocks() * 512 <= 2 * MIB, "the sparse file allocates {} bytes", sparse.blocks() * 512);
}

#[test]
fn copies_everything_into_nocow_rewriting_the_data_and_into_cow_with_reflinks() {
    if !can_run("copies_everything_into_nocow", &["mkfs.btrfs", "losetup", "btrfs", "lsattr"], true) {
        return;
    }
    let mut fs_ = LoopBtrfs::new("2G");
    let mnt = fs_.mount("/", "");
    // 150 MB: 3000 small files (~96 MB) and 3 of 18 MiB.
    let src = make_source(&mnt.join("volumes/db/_data"), 3000, 3, 18 * MIB);
    let totals = measure(&src.root).unwrap();
    assert!(totals.bytes > 150_000_000 + (1 << 30), "{totals:?}");
    assert!(totals.allocated < 180 * MIB, "holes are not counted as allocated: {totals:?}");
    let before = snapshot(&src.root);

    // (a) NOCOW: every byte written anew, every file NOCOW, nothing shared.
    let nocow = target(&mnt, "db-nocow", true);
    let calls = AtomicU64::new(0);
    let last = std::sync::Mutex::new(Progress::default());
    let progress = |p: &Progress| {
        calls.fetch_add(1, Ordering::Relaxed);
        *last.lock().unwrap() = *p;
    };
    let mut opts = CopyOptions::new(&progress);
    opts.reflink = Reflink::Auto;
    let started = Instant::now();
    let stats = copy_tree(&src.root, &nocow, &opts).unwrap_or_else(|e| panic!("copy: {e}"));
    let secs = started.elapsed().as_secs_f64();
    assert_times_kept(&src.root, &nocow);
    assert_eq!(stats.bytes_reflinked, 0, "{stats:?}");
    let holes = (1 << 30) - MIB;
    assert_eq!(stats.bytes_written, totals.bytes - holes, "every data byte written once, no hole: {stats:?}");
    assert_eq!(stats.hardlinks, 1);
    assert_eq!(stats.files, totals.files);
    let last = *last.lock().unwrap();
    assert_eq!((last.files, last.bytes), (totals.files, totals.bytes), "the last report is complete");
    assert!(calls.load(Ordering::Relaxed) <= 3 + (secs * 10.0) as u64 + 1, "at most ~10 reports a second");
    let flags = nocow_flags(&nocow);
    assert!(flags.len() > 3000);
    assert!(
        flags.iter().all(|(_, c)| *c),
        "not NOCOW: {:?}",
        flags.iter().filter(|f| !f.1).take(5).collect::<Vec<_>>()
    );
    assert!(!lsattr(&src.big[0]).contains('C'), "the source stays copy-on-write");
    let copied_big = nocow.join("big0");
    let attrs = ok(Command::new("lsattr").arg(&copied_big));
    assert!(attrs.split_whitespace().next().unwrap().contains('C'), "lsattr: {attrs}");
    let (_, _, shared) = btrfs_du(&nocow);
    assert_eq!(shared, 0, "a NOCOW copy shares no extents");
    assert_eq!(compression_property(&src.root.join("sticky")), "zstd");
    assert_eq!(
        compression_property(&nocow.join("sticky")),
        "",
        "the source's compression property is not copied"
    );
    assert_copy_matches(&src, &nocow, &stats);

    // (b) copy-on-write: reflinked, next to no space used.
    let cow = target(&mnt, "db-cow", false);
    let used_before = used_bytes(&mnt);
    let stats = copy_tree(&src.root, &cow, &CopyOptions::default()).unwrap_or_else(|e| panic!("copy: {e}"));
    assert_times_kept(&src.root, &cow);
    let extra = used_bytes(&mnt).saturating_sub(used_before);
    assert!(stats.bytes_reflinked >= totals.bytes - MIB, "{stats:?}");
    assert_eq!(
        stats.bytes_written, MIB,
        "only the NOCOW file, which cannot be cloned, is written: {stats:?}"
    );
    assert!(extra < 40 * MIB, "a reflinked copy of {} bytes used {extra} more bytes", totals.allocated);
    let (total, _, shared) = btrfs_du(&cow);
    assert!(shared * 10 >= total * 9, "reflinked data is shared: total {total}, shared {shared}");
    assert_copy_matches(&src, &cow, &stats);

    // Reflink::Never writes everything, also into a copy-on-write target.
    let never = target(&mnt, "db-never", false);
    let opts = CopyOptions { reflink: Reflink::Never, ..CopyOptions::default() };
    let stats = copy_tree(&src.root, &never, &opts).unwrap();
    assert_eq!(stats.bytes_reflinked, 0);
    assert_eq!(btrfs_du(&never).2, 0);

    assert_eq!(before, snapshot(&src.root), "the source is untouched");
}

#[test]
fn verify_names_a_corrupted_byte_and_a_missing_attribute() {
    if !can_run("verify_names_a_corrupted_byte", &["mkfs.btrfs", "losetup"], true) {
        return;
    }
    let mut fs_ = LoopBtrfs::new("1G");
    let mnt = fs_.mount("/", "");
    let src = make_source(&mnt.join("src"), 200, 1, 8 * MIB);
    let dst = target(&mnt, "copy", true);
    copy_tree(&src.root, &dst, &CopyOptions::default()).unwrap();
    verify_tree(&src.root, &dst, &CopyOptions::default()).unwrap();

    // One byte in the middle of a large file, its mtime put back so only content differs.
    let victim = dst.join("big0");
    let m = fs::metadata(&victim).unwrap();
    {
        use std::os::unix::fs::FileExt;
        let f = fs::OpenOptions::new().write(true).open(&victim).unwrap();
        let mut b = [0u8];
        f.read_exact_at(&mut b, 5 * MIB + 7).ok();
        f.write_all_at(&[b[0] ^ 0x5a], 5 * MIB + 7).unwrap();
    }
    set_times(&victim, (m.atime(), m.atime_nsec()), (m.mtime(), m.mtime_nsec()));
    match verify_tree(&src.root, &dst, &CopyOptions::default()) {
        Err(VerifyError::Mismatch(mm)) => {
            assert_eq!(mm.dst, victim);
            assert_eq!(mm.what, Difference::Content { offset: 5 * MIB + 7 });
            assert!(mm.to_string().contains("big0"), "{mm}");
        }
        other => panic!("expected a content mismatch, got {other:?}"),
    }
    // Copying again repairs nothing on its own (same size and mtime): verify is the check.
    // An attribute removed from the copy is named.
    ok(Command::new("cp").arg(src.root.join("big0")).arg(&victim));
    set_times(&victim, (m.atime(), m.atime_nsec()), (m.mtime(), m.mtime_nsec()));
    rfs::removexattr(dst.join("overlay-upper"), "trusted.overlay.opaque").unwrap();
    match verify_tree(&src.root, &dst, &CopyOptions::default()) {
        Err(VerifyError::Mismatch(mm)) => {
            assert_eq!(mm.dst, dst.join("overlay-upper"));
            assert!(
                matches!(&mm.what, Difference::Xattr { name, .. } if name == "trusted.overlay.opaque"),
                "{mm}"
            );
        }
        other => panic!("expected an xattr mismatch, got {other:?}"),
    }
}

#[test]
fn a_source_file_that_changes_during_the_copy_stops_it() {
    if !can_run("a_source_file_that_changes_during_the_copy_stops_it", &["mkfs.btrfs", "losetup"], true) {
        return;
    }
    let mut fs_ = LoopBtrfs::new("1G");
    let mnt = fs_.mount("/", "");
    let src = make_source(&mnt.join("src"), 50, 1, 200 * MIB);
    let growing = src.big[0].clone();
    let dst = target(&mnt, "copy", true);
    // A writer appends whenever progress is reported, i.e. while the large file is copied.
    let appends = AtomicU64::new(0);
    let progress = |_: &Progress| {
        let mut f = fs::OpenOptions::new().append(true).open(&growing).unwrap();
        f.write_all(b"more").unwrap();
        appends.fetch_add(1, Ordering::Relaxed);
    };
    match copy_tree(&src.root, &dst, &CopyOptions::new(&progress)) {
        Err(CopyError::SourceChanged { path }) => assert_eq!(path, growing),
        other => panic!("expected SourceChanged, got {other:?}"),
    }
    assert!(appends.load(Ordering::Relaxed) > 0);
}

#[test]
fn a_full_target_is_no_space_and_the_source_stays_as_it_was() {
    if !can_run("a_full_target_is_no_space", &["mkfs.btrfs", "losetup"], true) {
        return;
    }
    let mut big = LoopBtrfs::new("1G");
    let src_mnt = big.mount("/", "");
    let src = make_source(&src_mnt.join("src"), 100, 3, 100 * MIB);
    let before = snapshot(&src.root);
    let totals = measure(&src.root).unwrap();
    let mut small = LoopBtrfs::new("256M");
    let dst = small.mount("/", "");
    match copy_tree(&src.root, &dst, &CopyOptions::default()) {
        Err(CopyError::NoSpace { path, needed }) => {
            assert!(path.starts_with(&dst), "{path:?}");
            // Some of the 300 MiB fit, and the rest is data, not the sparse file's holes.
            assert!(needed.is_some_and(|n| n > 44 * MIB && n < totals.allocated), "{needed:?} of {totals:?}");
        }
        other => panic!("expected NoSpace, got {other:?}"),
    }
    assert_eq!(before, snapshot(&src.root), "the source is untouched");
}

#[test]
fn a_cancelled_copy_resumes_to_a_complete_verified_copy() {
    if !can_run("a_cancelled_copy_resumes", &["mkfs.btrfs", "losetup"], true) {
        return;
    }
    let mut fs_ = LoopBtrfs::new("1G");
    let mnt = fs_.mount("/", "");
    let src = make_source(&mnt.join("src"), 1500, 2, 20 * MIB);
    let dst = target(&mnt, "copy", true);
    let cancel = AtomicBool::new(false);
    let cancelled_at = std::sync::Mutex::new(None);
    let progress = |p: &Progress| {
        if p.files * 2 > p.total_files && !cancel.swap(true, Ordering::Relaxed) {
            *cancelled_at.lock().unwrap() = Some(Instant::now());
        }
    };
    let opts = CopyOptions { cancel: Some(&cancel), ..CopyOptions::new(&progress) };
    match copy_tree(&src.root, &dst, &opts) {
        Err(CopyError::Cancelled) => {}
        other => panic!("expected Cancelled, got {other:?}"),
    }
    let waited = cancelled_at.lock().unwrap().expect("the flag was set").elapsed();
    assert!(waited.as_millis() < 500, "cancelling took {waited:?}");
    assert!(verify_tree(&src.root, &dst, &CopyOptions::default()).is_err(), "a cancelled copy is incomplete");
    // What a killed run or a stranger leaves: a file cut short, entries the source lacks.
    fs::write(dst.join("not-in-source"), b"x").unwrap();
    fs::create_dir_all(dst.join("stale/dir")).unwrap();
    let partial = fs::read_dir(dst.join("data")).unwrap().next().unwrap().unwrap().path();
    let partial = fs::read_dir(partial).unwrap().next().unwrap().unwrap().path();
    let m = fs::metadata(&partial).unwrap();
    fs::OpenOptions::new().write(true).open(&partial).unwrap().set_len(m.len() / 2).unwrap();
    set_times(&partial, (m.atime(), m.atime_nsec()), (m.mtime(), m.mtime_nsec()));

    let stats = copy_tree(&src.root, &dst, &CopyOptions::default()).unwrap_or_else(|e| panic!("resume: {e}"));
    assert!(stats.skipped > 500, "entries copied before are kept: {stats:?}");
    assert!(stats.removed >= 2, "{stats:?}");
    verify_tree(&src.root, &dst, &CopyOptions::default()).unwrap_or_else(|e| panic!("verify: {e}"));
    assert!(flags_all_nocow(&dst));
}

fn flags_all_nocow(root: &Path) -> bool {
    nocow_flags(root).iter().all(|(_, c)| *c)
}

fn is_read_only(p: &Path) -> bool {
    let fd = rfs::open(p, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
    btrfs::is_read_only(rustix::fd::AsFd::as_fd(&fd)).unwrap()
}

fn set_read_only(p: &Path, read_only: bool) {
    let fd = rfs::open(p, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
    let fd = rustix::fd::AsFd::as_fd(&fd);
    if read_only { btrfs::set_read_only(fd).unwrap() } else { btrfs::set_writable(fd).unwrap() }
}

/// Subvolumes `btrfs subvolume list` names below `path` (paths relative to the top level `mnt`).
fn subvolumes_below(mnt: &Path, path: &Path) -> Vec<String> {
    let out = ok(Command::new("btrfs").args(["subvolume", "list"]).arg(mnt));
    let rel = path.strip_prefix(mnt).unwrap().display().to_string();
    out.lines()
        .filter_map(|l| l.split(" path ").nth(1))
        .filter(|p| p.starts_with(&format!("{rel}/")))
        .map(String::from)
        .collect()
}

/// Unmounts on drop, also when the test fails.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn nested_subvolumes_are_copied_as_subvolumes_and_a_mount_point_is_refused() {
    if !can_run(
        "nested_subvolumes_are_copied_as_subvolumes",
        &["mkfs.btrfs", "losetup", "btrfs", "mount"],
        true,
    ) {
        return;
    }
    let mut fs_ = LoopBtrfs::new("1G");
    let mnt = fs_.mount("/", "");
    // A graphroot as the btrfs storage driver keeps it: layers are subvolumes, one of them
    // read-only and holding a subvolume of its own; and a NOCOW volume subvolume.
    let src = make_source(&mnt.join("graphroot"), 10, 0, 0);
    let volumes = src.root.join("volumes");
    fs::create_dir(&volumes).unwrap();
    target(&volumes, "db", true);
    fs::write(volumes.join("db/PG_VERSION"), b"16").unwrap();
    let layers = src.root.join("btrfs/subvolumes");
    fs::create_dir_all(&layers).unwrap();
    let layer = target(&layers, "layer1", false);
    fs::create_dir(layer.join("etc")).unwrap();
    fs::write(layer.join("etc/os-release"), b"ID=busybox\n").unwrap();
    let inner = target(&layer, "inner", false);
    fs::write(inner.join("file"), b"inside a nested subvolume").unwrap();
    fs::set_permissions(&layer, fs::Permissions::from_mode(0o711)).unwrap();
    set_times(&layer, (1_000_000_000, 0), (1_200_000_000, 5));
    set_read_only(&layer, true);
    let before = snapshot(&src.root);

    let totals = measure(&src.root).unwrap();
    assert_eq!(totals.subvolumes, 3, "{totals:?}");
    let dst = target(&mnt, "copy", false);
    btrfs::set_compression(rustix::fd::AsFd::as_fd(&fs::File::open(&dst).unwrap()), "zstd").unwrap();
    let stats = copy_tree(&src.root, &dst, &CopyOptions::default()).unwrap_or_else(|e| panic!("copy: {e}"));
    assert_eq!(stats.subvolumes, 3, "{stats:?}");
    for rel in ["volumes/db", "btrfs/subvolumes/layer1", "btrfs/subvolumes/layer1/inner"] {
        assert_eq!(fs::metadata(dst.join(rel)).unwrap().ino(), 256, "{rel} is a subvolume");
        // The target's attributes: the compression property of the directory it was made in.
        assert_eq!(compression_property(&dst.join(rel)), "zstd", "{rel}");
    }
    assert!(is_read_only(&dst.join("btrfs/subvolumes/layer1")), "read-only as its source");
    assert!(!is_read_only(&dst.join("btrfs/subvolumes/layer1/inner")));
    assert!(!is_read_only(&dst.join("volumes/db")));
    assert!(stats.bytes_reflinked > 0, "reflinked: {stats:?}");
    assert_eq!(before, snapshot(&dst), "content and metadata, subvolume roots included");
    assert_eq!(before, snapshot(&src.root), "the source is untouched");
    assert_eq!(subvolumes_below(&mnt, &dst).len(), 3, "{:?}", subvolumes_below(&mnt, &dst));
    verify_tree(&src.root, &dst, &CopyOptions::default()).unwrap_or_else(|e| panic!("verify: {e}"));

    // A subvolume that became a plain directory (same content, owner, mode and times) is a mismatch.
    ok(Command::new("btrfs").args(["subvolume", "delete"]).arg(dst.join("volumes/db")));
    ok(Command::new("cp").args(["-a", "--reflink=auto"]).arg(volumes.join("db")).arg(dst.join("volumes/")));
    let mismatch = |dst: &Path| match verify_tree(&src.root, dst, &CopyOptions::default()) {
        Err(VerifyError::Mismatch(m)) => (m.dst.strip_prefix(dst).unwrap().to_path_buf(), m.what),
        other => panic!("expected a mismatch, got {other:?}"),
    };
    assert_eq!(
        mismatch(&dst),
        (
            PathBuf::from("volumes/db"),
            Difference::Subvolume { src: "subvolume".into(), dst: "plain directory".into() }
        )
    );
    // Copying again mends it, also through a read-only subvolume the first copy finished.
    copy_tree(&src.root, &dst, &CopyOptions::default()).unwrap_or_else(|e| panic!("copy again: {e}"));
    assert_eq!(fs::metadata(dst.join("volumes/db")).unwrap().ino(), 256, "a subvolume again");
    assert!(is_read_only(&dst.join("btrfs/subvolumes/layer1")), "read-only again");
    verify_tree(&src.root, &dst, &CopyOptions::default()).unwrap_or_else(|e| panic!("verify: {e}"));
    // A read-only subvolume that became writable is a mismatch too.
    set_read_only(&dst.join("btrfs/subvolumes/layer1"), false);
    assert_eq!(
        mismatch(&dst),
        (
            PathBuf::from("btrfs/subvolumes/layer1"),
            Difference::Subvolume { src: "read-only subvolume".into(), dst: "subvolume".into() }
        )
    );

    // After a migration a nested target is a subvolume where its old copy had a plain
    // directory: checking the live tree against the old copy leaves it out (it is checked
    // on its own), as it leaves out the read-only flags migrate set on the old copy.
    set_read_only(&dst.join("btrfs/subvolumes/layer1"), true);
    let old_tree = target(&mnt, "old-tree", false);
    copy_tree(&src.root, &old_tree, &CopyOptions::default()).unwrap();
    ok(Command::new("btrfs").args(["subvolume", "delete"]).arg(old_tree.join("volumes/db")));
    ok(Command::new("cp")
        .args(["-a", "--reflink=auto"])
        .arg(volumes.join("db"))
        .arg(old_tree.join("volumes/")));
    let m = fs::metadata(&volumes).unwrap();
    set_times(&old_tree.join("volumes"), (m.atime(), m.atime_nsec()), (m.mtime(), m.mtime_nsec()));
    set_read_only(&old_tree.join("btrfs/subvolumes/layer1/inner"), true);
    let cancel = AtomicBool::new(false);
    let nested = [PathBuf::from("volumes/db")];
    tree::verify_except(&old_tree, &dst, &nested, Some(u64::MAX), &cancel)
        .unwrap_or_else(|e| panic!("the nested target left out: {e}"));
    match tree::verify_except(&old_tree, &dst, &[], Some(u64::MAX), &cancel) {
        Err(VerifyError::Mismatch(m)) => assert_eq!(
            (m.dst.strip_prefix(&dst).unwrap().to_path_buf(), m.what),
            (
                PathBuf::from("volumes/db"),
                Difference::Subvolume { src: "plain directory".into(), dst: "subvolume".into() }
            )
        ),
        other => panic!("expected the nested target as a mismatch, got {other:?}"),
    }
    tree::delete(&old_tree).unwrap();
    set_read_only(&dst.join("btrfs/subvolumes/layer1"), false);

    // The old copy's subvolumes are made read-only, and writable again.
    let writable = tree::writable_subvolumes(&dst).unwrap();
    assert_eq!(writable.len(), 4, "the root and every nested subvolume: {writable:?}");
    tree::set_read_only(&writable, true).unwrap();
    assert!(writable.iter().all(|p| is_read_only(p)));
    assert!(tree::writable_subvolumes(&dst).unwrap().is_empty());
    tree::set_read_only(&writable, false).unwrap();
    assert!(writable.iter().all(|p| !is_read_only(p)));
    tree::set_read_only(&writable, true).unwrap();

    // A tree with read-only nested subvolumes is deleted whole, with the subvolume ioctl.
    tree::delete(&dst).unwrap_or_else(|e| panic!("delete: {e}"));
    assert!(!dst.exists());
    assert_eq!(subvolumes_below(&mnt, &mnt.join("copy")), Vec::<String>::new());
    assert_eq!(before, snapshot(&src.root));

    // Another filesystem mounted below the source stops the copy, naming it.
    let tmp = volumes.join("tmpfs");
    fs::create_dir(&tmp).unwrap();
    ok(Command::new("mount").args(["-t", "tmpfs", "tmpfs"]).arg(&tmp));
    let _mounted = Mounted(tmp.clone());
    let dst = target(&mnt, "copy2", false);
    match copy_tree(&src.root, &dst, &CopyOptions::default()) {
        Err(e @ CopyError::CrossesFilesystem { .. }) => {
            assert!(e.to_string().contains("mount point"), "{e}");
            assert!(matches!(&e, CopyError::CrossesFilesystem { path } if *path == tmp), "{e:?}");
        }
        other => panic!("expected CrossesFilesystem, got {other:?}"),
    }
    // Verifying refuses it too, where its walk reaches it (the source compared with
    // itself matches everywhere else).
    match verify_tree(&src.root, &src.root, &CopyOptions::default()) {
        Err(VerifyError::Copy(CopyError::CrossesFilesystem { path })) => assert_eq!(path, tmp),
        other => panic!("expected CrossesFilesystem from verify, got {other:?}"),
    }
    // A subvolume mounted below it is a mount point too.
    let sub = volumes.join("db-mounted");
    fs::create_dir(&sub).unwrap();
    ok(Command::new("mount").args(["--bind"]).arg(volumes.join("db")).arg(&sub));
    let _bound = Mounted(sub.clone());
    let exclude = [PathBuf::from("volumes/tmpfs")];
    let opts = CopyOptions { exclude: &exclude, ..CopyOptions::default() };
    match copy_tree(&src.root, &dst, &opts) {
        Err(CopyError::CrossesFilesystem { path }) => assert_eq!(path, sub),
        other => panic!("expected CrossesFilesystem, got {other:?}"),
    }
    match verify_tree(&src.root, &src.root, &opts) {
        Err(VerifyError::Copy(CopyError::CrossesFilesystem { path })) => assert_eq!(path, sub),
        other => panic!("expected CrossesFilesystem from verify, got {other:?}"),
    }
}

#[test]
fn a_directory_swapped_for_a_symlink_mid_copy_is_never_followed() {
    if !can_run("a_directory_swapped_for_a_symlink", &["mkfs.btrfs", "losetup"], true) {
        return;
    }
    let mut fs_ = LoopBtrfs::new("1G");
    let mnt = fs_.mount("/", "");
    let src = make_source(&mnt.join("src"), 3000, 0, 0);
    let outside = mnt.join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"not part of the source").unwrap();
    let dst = target(&mnt, "copy", true);
    // Once the copy is inside data/, every directory of data/ not yet copied becomes a
    // symlink to `outside`: a copy by path would walk into it.
    let swapped = AtomicU64::new(0);
    let progress = |_: &Progress| {
        if swapped.load(Ordering::Relaxed) > 0 || !dst.join("data/d00").exists() {
            return;
        }
        for e in fs::read_dir(src.root.join("data")).unwrap() {
            let p = e.unwrap().path();
            let fresh = p.extension().is_none() && !p.is_symlink();
            if fresh && !dst.join(p.strip_prefix(&src.root).unwrap()).exists() {
                let aside = p.with_extension("aside");
                fs::rename(&p, &aside).unwrap();
                std::os::unix::fs::symlink(&outside, &p).unwrap();
                swapped.fetch_add(1, Ordering::Relaxed);
            }
        }
    };
    let result = copy_tree(&src.root, &dst, &CopyOptions::new(&progress));
    assert!(swapped.load(Ordering::Relaxed) > 0, "the test swapped nothing");
    assert!(matches!(result, Err(CopyError::SourceChanged { .. })), "{result:?}");
    let copied = snapshot(&dst);
    assert!(
        !copied.values().any(|v| v.contains("not part of the source")),
        "content from outside was copied"
    );
    assert!(!copied.keys().any(|k| k.ends_with("secret")), "a file from outside was copied: {copied:?}");
}

#[test]
fn a_tree_on_ext4_moves_onto_a_new_btrfs_disk_keeping_everything() {
    if !can_run("a_tree_on_ext4_moves_onto_a_new_btrfs_disk", &["mkfs.btrfs", "mkfs.ext4", "losetup"], true) {
        return;
    }
    let mut old = LoopBtrfs::with_fs("1G", "ext4");
    let old_mnt = old.mount("/", "");
    let src = make_source(&old_mnt.join("volumes/db/_data"), 1000, 2, 20 * MIB);
    let totals = measure(&src.root).unwrap();
    let before = snapshot(&src.root);
    let mut new = LoopBtrfs::new("1G");
    let mnt = new.mount("/", "");
    let dst = target(&mnt, "db", true);
    let stats = copy_tree(&src.root, &dst, &CopyOptions::default()).unwrap_or_else(|e| panic!("copy: {e}"));
    assert_times_kept(&src.root, &dst);
    assert_eq!(stats.bytes_reflinked, 0, "no reflinks across filesystems: {stats:?}");
    assert_eq!(stats.bytes_written, totals.bytes - ((1 << 30) - MIB), "{stats:?}");
    assert_copy_matches(&src, &dst, &stats);
    assert!(flags_all_nocow(&dst));
    assert_eq!(before, snapshot(&src.root), "the source is untouched");
}

const KILL_SRC: &str = "PODFS_TEST_COPY_SRC";
const KILL_DST: &str = "PODFS_TEST_COPY_DST";

/// Not a test: the copy that `a_copy_killed_with_sigkill_resumes_to_a_verified_copy` runs
/// in a process of its own and kills. Prints each progress report.
#[test]
#[ignore]
fn helper_copy_to_be_killed() {
    let (Some(src), Some(dst)) = (std::env::var_os(KILL_SRC), std::env::var_os(KILL_DST)) else {
        return;
    };
    let progress = |p: &Progress| println!("progress {} {}", p.files, p.total_files);
    let result = copy_tree(Path::new(&src), Path::new(&dst), &CopyOptions::new(&progress));
    println!("finished {result:?}");
}

#[test]
fn a_copy_killed_with_sigkill_resumes_to_a_verified_copy() {
    if !can_run("a_copy_killed_with_sigkill_resumes", &["mkfs.btrfs", "losetup"], true) {
        return;
    }
    let mut fs_ = LoopBtrfs::new("1G");
    let mnt = fs_.mount("/", "");
    let src = make_source(&mnt.join("src"), 3000, 2, 40 * MIB);
    let dst = target(&mnt, "copy", true);
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "helper_copy_to_be_killed", "--nocapture", "--test-threads=1"])
            .env(KILL_SRC, &src.root)
            .env(KILL_DST, &dst)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = std::io::BufReader::new(child.0.stdout.take().unwrap());
    use std::io::BufRead;
    let mut killed_at = None;
    for line in stdout.lines() {
        let line = line.unwrap();
        assert!(!line.starts_with("finished"), "the copy ended before it was killed: {line}");
        let Some(rest) = line.strip_prefix("progress ") else { continue };
        let n: Vec<u64> = rest.split(' ').map(|f| f.parse().unwrap()).collect();
        if n[0] * 3 > n[1] {
            child.0.kill().unwrap();
            killed_at = Some(n[0]);
            break;
        }
    }
    let status = child.0.wait().unwrap();
    assert!(killed_at.is_some() && !status.success(), "{status:?}");
    assert!(verify_tree(&src.root, &dst, &CopyOptions::default()).is_err(), "a killed copy is incomplete");

    let stats = copy_tree(&src.root, &dst, &CopyOptions::default()).unwrap_or_else(|e| panic!("resume: {e}"));
    assert!(
        stats.skipped >= killed_at.unwrap() - 50,
        "entries copied before the kill are kept: {stats:?} {killed_at:?}"
    );
    verify_tree(&src.root, &dst, &CopyOptions::default()).unwrap_or_else(|e| panic!("verify: {e}"));
    assert!(flags_all_nocow(&dst));
}

/// Not run by default: `contrib/bench/migrate-copy.sh` runs it (release build, root) and
/// prints time, rate and extra space for copying 1 GB into a NOCOW subvolume and into a
/// copy-on-write one with reflinks, and for verifying each.
#[test]
#[ignore]
fn bench_copy_1gb() {
    if !can_run("bench_copy_1gb", &["mkfs.btrfs", "losetup"], true) {
        return;
    }
    let mut fs_ = LoopBtrfs::new("4G");
    let mut mnt = fs_.mount("/", "");
    // 1 GB: 5 files of 180 MiB and 4000 files of 1–63 KiB (~128 MB) and the sparse file.
    let src = make_source(&mnt.join("src"), 4000, 5, 180 * MIB);
    let totals = measure(&src.root).unwrap();
    let data_mb = totals.allocated as f64 / 1e6;
    println!(
        "source: {} entries, {:.0} MB of data ({:.0} MB apparent, with a sparse 1 GiB file)",
        totals.files,
        data_mb,
        totals.bytes as f64 / 1e6
    );
    println!("{:<50} {:>8} {:>9} {:>9}", "", "seconds", "MB/s", "extra MB");
    for (label, nocow, reflink) in [
        ("NOCOW subvolume (rewrite)", true, Reflink::Auto),
        ("copy-on-write subvolume, reflinks", false, Reflink::Auto),
        ("copy-on-write subvolume, no reflinks", false, Reflink::Never),
    ] {
        let name = format!("t{}", label.len());
        target(&mnt, &name, nocow);
        // A cold source, as a migration of data written long ago meets it: mounting the
        // filesystem anew drops its cached pages (and only its own).
        mnt = remount(&mut fs_, &mnt);
        let (src_root, dst) = (mnt.join("src"), mnt.join(&name));
        let used = used_bytes(&mnt);
        let started = Instant::now();
        let stats = copy_tree(&src_root, &dst, &CopyOptions { reflink, ..CopyOptions::default() }).unwrap();
        let secs = started.elapsed().as_secs_f64();
        let extra = used_bytes(&mnt).saturating_sub(used) as f64 / 1e6;
        println!("{:<50} {secs:>8.2} {:>9.0} {extra:>9.0}", format!("copy into {label}"), data_mb / secs);
        assert_eq!(stats.files, totals.files);
        mnt = remount(&mut fs_, &mnt);
        let (src_root, dst) = (mnt.join("src"), mnt.join(&name));
        let started = Instant::now();
        verify_tree(&src_root, &dst, &CopyOptions::default()).unwrap();
        let secs = started.elapsed().as_secs_f64();
        println!("{:<50} {secs:>8.2} {:>9.0} {:>9}", format!("verify {label}"), 2.0 * data_mb / secs, "-");
    }
}

/// Mounts the filesystem anew and drops the image file's pages from the page cache, so
/// what is read next comes from the disk (this filesystem's caches only).
fn remount(fs_: &mut LoopBtrfs, at: &Path) -> PathBuf {
    fs_.umount(at);
    let image = fs::File::open(fs_.dir.path().join("fs.img")).unwrap();
    image.sync_all().unwrap();
    rfs::fadvise(&image, 0, None, rfs::Advice::DontNeed).unwrap();
    fs_.mount("/", "")
}

/// migrate's preflight reads btrfs quota status from the quota tree of the filesystem a
/// directory lies on, whatever device it is on.
#[test]
fn quota_status_follows_btrfs_quota_enable_and_disable() {
    if !can_run("quota_status_follows_btrfs_quota_enable", &["mkfs.btrfs", "losetup", "btrfs"], true) {
        return;
    }
    let mut fs_ = LoopBtrfs::new("1G");
    let mnt = fs_.mount("/", "");
    fs::create_dir(mnt.join("dir")).unwrap();
    let status = || {
        let dir = fs::File::open(mnt.join("dir")).unwrap();
        btrfs::quota_status(std::os::fd::AsFd::as_fd(&dir)).unwrap()
    };
    assert_eq!(status(), btrfs::QuotaStatus::Off, "never turned on: no quota tree");
    ok(Command::new("btrfs").args(["quota", "enable"]).arg(&mnt));
    ok(Command::new("btrfs").args(["quota", "rescan", "-w"]).arg(&mnt));
    assert_eq!(status(), btrfs::QuotaStatus::On);
    ok(Command::new("btrfs").args(["quota", "disable"]).arg(&mnt));
    assert_eq!(status(), btrfs::QuotaStatus::Off, "turned off again");
}
