//! The store copies cheaply where the filesystem can: on a btrfs filesystem
//! (a loop-mounted image made for the test) an object put into the store
//! shares its data blocks with the source (FICLONE), and so does a file
//! restored from it; `run --store` on that filesystem stores a precise
//! step's files the same way. On ext4 (the usual tmp) the store copies.
//!
//! Needs root, loop devices and mkfs.btrfs (scripts/test.sh installs
//! btrfs-progs): SKIP otherwise, FAIL under CI.

mod common;

use common::{output, show, tracelink};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use tracelink::store::Store;

/// A btrfs image mounted on a fresh directory; unmounted when dropped.
struct Btrfs {
    _dir: tempfile::TempDir,
    mnt: PathBuf,
}

impl Btrfs {
    fn mount(test: &str) -> Option<Btrfs> {
        if !nix::unistd::geteuid().is_root() {
            common::skip(test, "mounting a btrfs image needs root (not root)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fs.img");
        let mnt = dir.path().join("mnt");
        fs::create_dir(&mnt).unwrap();
        fs::File::create(&image)
            .unwrap()
            .set_len(256 << 20)
            .unwrap();
        match Command::new("mkfs.btrfs").arg("-q").arg(&image).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                common::skip(test, &format!("mkfs.btrfs failed: {}", show(&out)));
                return None;
            }
            Err(e) => {
                common::skip(test, &format!("mkfs.btrfs is not installed ({e})"));
                return None;
            }
        }
        let out = output(
            Command::new("mount")
                .arg("-o")
                .arg("loop")
                .arg(&image)
                .arg(&mnt),
        );
        if !out.status.success() {
            common::skip(
                test,
                &format!("cannot loop-mount a btrfs image: {}", show(&out)),
            );
            return None;
        }
        Some(Btrfs { _dir: dir, mnt })
    }
}

impl Drop for Btrfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mnt).status();
    }
}

/// Whether `filefrag -v` marks every extent of `path` as shared.
fn shared_extents(path: &Path) -> bool {
    let out = output(Command::new("filefrag").arg("-v").arg(path));
    let text = String::from_utf8_lossy(&out.stdout);
    let extents: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.trim_start()
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
        .collect();
    !extents.is_empty() && extents.iter().all(|l| l.contains("shared"))
}

fn big_file(path: &Path) {
    // Large enough not to be inlined in btrfs metadata.
    let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
    fs::write(path, data).unwrap();
}

#[test]
fn store_reflinks_on_btrfs_and_copies_elsewhere() {
    let Some(btrfs) = Btrfs::mount("store_reflinks_on_btrfs_and_copies_elsewhere") else {
        return;
    };
    let src = btrfs.mnt.join("input.bin");
    big_file(&src);
    let store = Store::open(&btrfs.mnt.join("store")).unwrap();
    let put = store.put_path(&src).unwrap();
    assert!(put.reflinked, "{put:?}");
    assert!(!put.existed);
    let object = store.object_path(&put.sha256);
    assert!(
        shared_extents(&object),
        "the object shares the source's blocks"
    );
    let restored = btrfs.mnt.join("restored.bin");
    store.restore(&put.sha256, &restored, 0o640).unwrap();
    assert_eq!(fs::read(&restored).unwrap(), fs::read(&src).unwrap());
    assert!(shared_extents(&restored));

    // Across filesystems (btrfs source, store in the usual tmp) it copies.
    let elsewhere = tempfile::tempdir().unwrap();
    let other = Store::open(elsewhere.path()).unwrap();
    let copied = other.put_path(&src).unwrap();
    assert!(!copied.reflinked, "{copied:?}");
    assert_eq!(copied.sha256, put.sha256);
}

#[test]
fn run_store_on_btrfs_reflinks_the_steps_files() {
    let test = "run_store_on_btrfs_reflinks_the_steps_files";
    if !Path::new("/dev/fuse").exists() {
        common::skip(test, "precise recording needs /dev/fuse (absent)");
        return;
    }
    let Some(btrfs) = Btrfs::mount(test) else {
        return;
    };
    let proj = btrfs.mnt.join("proj");
    fs::create_dir(&proj).unwrap();
    big_file(&proj.join("in.bin"));
    let key = btrfs.mnt.join("key.pem");
    let out = output(tracelink().arg("keygen").arg(&key));
    assert!(out.status.success(), "{}", show(&out));
    let out = output(
        tracelink()
            .current_dir(&proj)
            .args(["run", "-n", "copy", "-k"])
            .arg(&key)
            .arg("-d")
            .arg(&btrfs.mnt)
            .arg("--store")
            .arg(btrfs.mnt.join("store"))
            .args(["--", "sh", "-c", "cat in.bin > out.bin"]),
    );
    assert!(out.status.success(), "{}", show(&out));
    // in.bin (material) and out.bin (product) have the same content: one
    // object, sharing blocks with the material it was cloned from.
    let store = Store::open(&btrfs.mnt.join("store")).unwrap();
    let objects: Vec<PathBuf> = walk(&btrfs.mnt.join("store/sha256"));
    assert_eq!(objects.len(), 1, "{objects:?}");
    let sha = store.put_path(&proj.join("in.bin")).unwrap();
    assert!(sha.existed);
    assert!(shared_extents(&objects[0]));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
