//! Sized local volumes on xfs (root). With project quotas the driver gives
//! each volume its own project and limit, with no image; without them it
//! falls back to an image. The xfs filesystem is a loop-mounted file made
//! by the test; `xfs_io` and `xfs_quota` cross-check.
//!
//! The quota tests skip (saying so) on kernels built without xfs quota
//! support (`CONFIG_XFS_QUOTA`), where no xfs can be mounted with
//! `prjquota`.

mod local_support;

use std::path::Path;
use std::process::Command;

use local_support::{Env, assert_no_space, fill, sh};
use strata_volume::driver::VolumeDriver;

/// A driver whose volumes folder is on a fresh xfs, mounted with
/// `prjquota` when `quota` (None if this kernel cannot); unmounted when
/// the env drops, even after a failure.
fn xfs_env(quota: bool) -> Option<Env> {
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("xfs.img");
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    std::fs::File::create(&image)
        .unwrap()
        .set_len(300 << 20)
        .unwrap();
    sh("mkfs.xfs", &["-q", image.to_str().unwrap()]);
    let options = if quota { "loop,prjquota" } else { "loop" };
    let mount = Command::new("mount")
        .args(["-o", options])
        .arg(&image)
        .arg(&mnt)
        .output()
        .unwrap();
    if !mount.status.success() {
        let why = String::from_utf8_lossy(&mount.stderr);
        assert!(quota, "mounting a fresh xfs failed: {why}");
        eprintln!("skipped: this kernel cannot mount xfs with prjquota (CONFIG_XFS_QUOTA?): {why}");
        return None;
    }
    Some(Env::with_dir(tmp, mnt.join("volumes")))
}

fn mnt(env: &Env) -> &Path {
    env.driver.dir().parent().unwrap()
}

/// The project of `path`, as `xfs_io` reads it.
fn project(path: &Path) -> u32 {
    let out = sh("xfs_io", &["-c", "stat", path.to_str().unwrap()]);
    let line = out.lines().find(|l| l.contains("fsxattr.projid")).unwrap();
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// Project `id`'s block hard limit in KiB, as `xfs_quota` reports it.
fn hard_limit_kib(env: &Env, id: u32) -> Option<u64> {
    let report = sh(
        "xfs_quota",
        &["-x", "-c", "report -p -b -N -n", mnt(env).to_str().unwrap()],
    );
    report.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.first() == Some(&format!("#{id}").as_str()))
            .then(|| fields[3].parse().unwrap())
            .filter(|&kib| kib > 0)
    })
}

#[test]
fn sized_volume_gets_a_project_quota() {
    let Some(env) = xfs_env(true) else { return };
    env.create("quota", &[("size", "20M")]).unwrap();
    let folder = env.folder("quota");
    assert!(!folder.join("disk.img").exists(), "a quota needs no image");
    let record = std::fs::read_to_string(folder.join("opts.json")).unwrap();
    assert!(record.contains("\"kind\": \"quota\""), "{record}");
    let id = project(&folder);
    assert_ne!(id, 0);
    assert_eq!(hard_limit_kib(&env, id), Some(20 << 10));

    let data = env.hold("quota", "c1");
    assert_eq!(project(&data), id, "_data inherits the project");
    assert_no_space(fill(&data.join("big"), 30));
    let (used, limit) = env.driver.usage("quota").unwrap().unwrap();
    assert_eq!(limit, 20 << 20);
    assert!(used > 19 << 20 && used <= limit, "used {used}");
    env.release("quota", "c1");

    env.driver.remove("quota").unwrap();
    assert!(!folder.exists());
    assert_eq!(hard_limit_kib(&env, id), None, "removal drops the limit");
}

#[test]
fn each_volume_gets_its_own_project() {
    let Some(env) = xfs_env(true) else { return };
    env.create("one", &[("size", "10M")]).unwrap();
    env.create("two", &[("size", "10M")]).unwrap();
    let (one, two) = (project(&env.folder("one")), project(&env.folder("two")));
    assert_ne!(one, two);
    // A limit the filesystem already has for an ID is someone else's.
    let next = one.max(two) + 1;
    let limit = format!("limit -p bhard=1m {next}");
    sh(
        "xfs_quota",
        &["-x", "-c", &limit, mnt(&env).to_str().unwrap()],
    );
    env.create("three", &[("size", "10M")]).unwrap();
    assert_eq!(project(&env.folder("three")), next + 1);

    // Filling one volume does not eat the other's room.
    let data = env.hold("one", "c1");
    assert_no_space(fill(&data.join("big"), 20));
    let data = env.hold("two", "c1");
    fill(&data.join("small"), 5).unwrap();
    for name in ["one", "two"] {
        env.release(name, "c1");
    }
    for name in ["one", "two", "three"] {
        env.driver.remove(name).unwrap();
    }
}

#[test]
fn explicit_fs_uses_an_image_even_with_quotas() {
    let Some(env) = xfs_env(true) else { return };
    env.create("img", &[("size", "16M"), ("fs", "ext4")])
        .unwrap();
    assert!(env.folder("img").join("disk.img").exists());
    let data = env.hold("img", "c1");
    assert_no_space(fill(&data.join("big"), 20));
    env.release("img", "c1");
    env.driver.remove("img").unwrap();
}

#[test]
fn without_project_quotas_size_uses_an_image() {
    let env = xfs_env(false).unwrap();
    env.create("img", &[("size", "16M")]).unwrap();
    assert!(env.folder("img").join("disk.img").exists());
    assert_eq!(project(&env.folder("img")), 0);
    let data = env.hold("img", "c1");
    assert_no_space(fill(&data.join("big"), 20));
    env.release("img", "c1");
    env.driver.remove("img").unwrap();
    assert!(!env.folder("img").exists());
}
