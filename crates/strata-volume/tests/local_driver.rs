//! The local driver against real folders and real mounts (root): plain
//! volumes, sized volumes on an ext4/xfs image, tmpfs and bind mounts with
//! the service's mount protocol, reconcile after a crash, bad options.

mod local_support;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use local_support::{Env, assert_no_space, fill, mounted, sh};
use strata_volume::driver::{Scope, VolumeDriver};

#[test]
fn plain_volume_is_a_folder() {
    let env = Env::new();
    env.create("plain", &[]).unwrap();
    let data = env.hold("plain", "c1");
    assert_eq!(data, env.data("plain"));
    assert!(data.is_dir() && !mounted(&data));
    assert_eq!(
        std::fs::metadata(&data).unwrap().permissions().mode() & 0o7777,
        0o755
    );
    let got = env.driver.get("plain").unwrap().unwrap();
    assert_eq!(got.mountpoint.as_deref(), Some(data.as_path()));
    assert!(got.status.is_empty() && got.created_at.is_some());
    assert_eq!(env.driver.usage("plain").unwrap(), None);
    assert_eq!(env.driver.capabilities().unwrap(), Scope::Local);
    env.release("plain", "c1");
    env.driver.remove("plain").unwrap();
    assert!(!env.folder("plain").exists());
    env.driver.remove("plain").unwrap();
    assert_eq!(env.driver.get("plain").unwrap(), None);
}

#[test]
fn create_is_a_no_op_for_an_existing_volume() {
    let env = Env::new();
    env.create("vv", &[("size", "20M")]).unwrap();
    env.driver
        .create("vv", &[("type".into(), "tmpfs".into())].into())
        .unwrap();
    assert_eq!(env.driver.usage("vv").unwrap().unwrap().1, 20 << 20);
    let names: Vec<String> = env
        .driver
        .list()
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(names, ["vv"]);
    env.driver.remove("vv").unwrap();
}

#[test]
fn sized_volume_on_an_ext4_image() {
    let env = Env::new();
    env.create("sized", &[("size", "20M")]).unwrap();
    let image = env.folder("sized").join("disk.img");
    assert_eq!(std::fs::metadata(&image).unwrap().len(), 20 << 20);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&image), 0o600);
    assert_eq!(mode(&env.folder("sized").join("opts.json")), 0o600);
    assert!(!env.folder("sized").join("disk.img.tmp").exists());

    let data = env.hold("sized", "c1");
    assert!(mounted(&data));
    assert_eq!(
        sh("findmnt", &["-n", "-o", "FSTYPE", data.to_str().unwrap()]).trim(),
        "ext4"
    );
    let entries: Vec<_> = std::fs::read_dir(&data).unwrap().collect();
    assert!(entries.is_empty(), "a fresh volume is empty: {entries:?}");
    assert_eq!(
        std::fs::metadata(&data).unwrap().permissions().mode() & 0o7777,
        0o755
    );
    assert_no_space(fill(&data.join("big"), 30));
    let (used, limit) = env.driver.usage("sized").unwrap().unwrap();
    assert_eq!(limit, 20 << 20);
    assert!(used > 15 << 20 && used <= limit, "used {used}");
    let status = env.driver.get("sized").unwrap().unwrap().status;
    assert_eq!(status["size"], 20 << 20);

    env.release("sized", "c1");
    assert!(!mounted(&data));
    let (unmounted_used, _) = env.driver.usage("sized").unwrap().unwrap();
    assert!(
        unmounted_used > 15 << 20,
        "image holds the data: {unmounted_used}"
    );

    // Mounted again, the data is still there.
    let data = env.hold("sized", "c2");
    assert!(data.join("big").exists());
    env.release("sized", "c2");
    assert_eq!(sh("losetup", &["-j", image.to_str().unwrap()]), "");

    env.driver.remove("sized").unwrap();
    assert!(!env.folder("sized").exists());
}

#[test]
fn raw_volume_mounts_as_a_loop_device_until_the_last_caller() {
    let env = Env::new();
    env.create("raw", &[("size", "8M"), ("fs", "raw")]).unwrap();
    let image = env.folder("raw").join("disk.img");
    let device = env.hold("raw", "stage");
    assert!(
        device.to_string_lossy().starts_with("/dev/loop"),
        "{}",
        device.display()
    );
    assert_eq!(env.driver.path("raw").unwrap(), Some(device.clone()));
    assert_eq!(
        env.hold("raw", "publish"),
        device,
        "one device for all callers"
    );
    std::fs::write(&device, vec![7u8; 4096]).unwrap();
    env.release("raw", "publish");
    assert!(
        !sh("losetup", &["-j", image.to_str().unwrap()]).is_empty(),
        "still attached for the other caller"
    );
    env.release("raw", "stage");
    assert_eq!(sh("losetup", &["-j", image.to_str().unwrap()]), "");
    assert_eq!(&std::fs::read(&image).unwrap()[..4096], &[7u8; 4096][..]);
    env.driver.remove("raw").unwrap();
    assert!(!env.folder("raw").exists());
}

#[test]
fn removing_a_raw_volume_detaches_its_device() {
    let env = Env::new();
    env.create("raw", &[("size", "4M"), ("fs", "raw")]).unwrap();
    let image = env.folder("raw").join("disk.img");
    env.hold("raw", "c1");
    env.forget("raw", "c1");
    env.driver.remove("raw").unwrap();
    assert_eq!(sh("losetup", &["-j", image.to_str().unwrap()]), "");
}

#[test]
fn xfs_volume_grows_online() {
    let env = Env::new();
    env.create("growing", &[("size", "300M"), ("fs", "xfs")])
        .unwrap();
    let data = env.hold("growing", "c1");
    fill(&data.join("kept"), 4).unwrap();
    let before = fs_size(&data);
    assert_eq!(
        env.driver.grow("growing", 8 << 20).unwrap(),
        300 << 20,
        "never shrinks"
    );
    assert_eq!(env.driver.grow("growing", 400 << 20).unwrap(), 400 << 20);
    env.driver.grow_fs("growing").unwrap();
    let after = fs_size(&data);
    assert!(after > before + (90 << 20), "{before} -> {after}");
    assert_eq!(std::fs::metadata(data.join("kept")).unwrap().len(), 4 << 20);
    assert_eq!(env.driver.usage("growing").unwrap().unwrap().1, 400 << 20);
    env.release("growing", "c1");
    let err = env.driver.grow_fs("growing").unwrap_err();
    assert!(err.to_string().contains("only while mounted"), "{err}");
    env.driver.remove("growing").unwrap();
}

#[test]
fn ext4_volume_grows_offline() {
    let env = Env::new();
    env.create("growing", &[("size", "16M")]).unwrap();
    let data = env.hold("growing", "c1");
    fill(&data.join("kept"), 4).unwrap();
    let before = fs_size(&data);
    env.release("growing", "c1");
    assert_eq!(env.driver.grow("growing", 48 << 20).unwrap(), 48 << 20);
    env.driver.grow_fs("growing").unwrap();
    let data = env.hold("growing", "c2");
    let after = fs_size(&data);
    assert!(after > before + (24 << 20), "{before} -> {after}");
    assert_eq!(std::fs::metadata(data.join("kept")).unwrap().len(), 4 << 20);
    fill(&data.join("more"), 30).expect("the new space is usable");
    assert!(
        !data.join("lost+found").exists(),
        "the check's lost+found is gone"
    );
    env.release("growing", "c2");
    env.driver.remove("growing").unwrap();
}

/// The size of the filesystem at `path`.
fn fs_size(path: &std::path::Path) -> u64 {
    let st = rustix::fs::statvfs(path).unwrap();
    st.f_blocks * st.f_frsize
}

#[test]
fn only_sized_volumes_grow() {
    let env = Env::new();
    env.create("plain", &[]).unwrap();
    let err = env.driver.grow("plain", 1 << 30).unwrap_err();
    assert!(err.to_string().contains("only sized volumes"), "{err}");
}

#[test]
fn sized_volume_on_an_xfs_image() {
    let env = Env::new();
    env.create("xv", &[("size", "300M"), ("fs", "xfs")])
        .unwrap();
    let data = env.hold("xv", "c1");
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 0);
    let mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o755);
    assert_eq!(
        sh("findmnt", &["-n", "-o", "FSTYPE", data.to_str().unwrap()]).trim(),
        "xfs"
    );
    env.release("xv", "c1");
    env.driver.remove("xv").unwrap();

    // Too small for mkfs.xfs: its reason, and nothing left behind.
    let err = env
        .create("small", &[("size", "20M"), ("fs", "xfs")])
        .unwrap_err();
    assert!(err.to_string().contains("mkfs.xfs"), "{err}");
    assert!(!env.folder("small").exists());
}

#[test]
fn tmpfs_stays_mounted_until_the_last_caller_unmounts() {
    let env = Env::new();
    env.create("tv", &[("type", "tmpfs"), ("o", "size=1m,mode=0700")])
        .unwrap();
    let data = env.data("tv");
    assert!(!mounted(&data), "mounted at first mount, not at create");
    assert_eq!(env.hold("tv", "a"), data);
    assert_eq!(env.hold("tv", "bv"), data);
    assert!(mounted(&data));
    assert_eq!(
        sh("findmnt", &["-n", "-o", "FSTYPE", data.to_str().unwrap()]).trim(),
        "tmpfs"
    );
    assert_no_space(fill(&data.join("big"), 2));

    env.release("tv", "a");
    assert!(mounted(&data), "b still holds it");
    env.release("tv", "bv");
    assert!(!mounted(&data));
    env.driver.remove("tv").unwrap();
}

#[test]
fn tmpfs_takes_size() {
    let env = Env::new();
    env.create(
        "tv",
        &[("type", "tmpfs"), ("device", "tmpfs"), ("size", "2M")],
    )
    .unwrap();
    let data = env.hold("tv", "a");
    let size = sh(
        "findmnt",
        &["-n", "-b", "-o", "SIZE", data.to_str().unwrap()],
    );
    assert_eq!(size.trim(), (2 << 20).to_string());
    env.release("tv", "a");
    env.driver.remove("tv").unwrap();
}

#[test]
fn bind_mounts_a_host_folder_and_leaves_it_on_remove() {
    let env = Env::new();
    let host = env.tmp.path().join("host");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("hello"), "hi").unwrap();
    let device = host.to_str().unwrap();
    env.create(
        "bv",
        &[("type", "none"), ("o", "bind,ro"), ("device", device)],
    )
    .unwrap();
    let data = env.hold("bv", "c1");
    assert_eq!(std::fs::read_to_string(data.join("hello")).unwrap(), "hi");
    let err = std::fs::write(data.join("new"), "xv").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "o=ro applies");

    let busy = env.driver.remove("bv").unwrap_err().to_string();
    assert!(busy.contains("still mounted for c1"), "{busy}");
    env.release("bv", "c1");
    env.driver.remove("bv").unwrap();
    assert_eq!(std::fs::read_to_string(host.join("hello")).unwrap(), "hi");
}

#[test]
fn bind_of_a_missing_path_is_refused() {
    let env = Env::new();
    let missing = env.tmp.path().join("nowhere");
    let err = env
        .create(
            "bv",
            &[
                ("type", "none"),
                ("o", "bind"),
                ("device", missing.to_str().unwrap()),
            ],
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("does not exist") && err.contains("nowhere"),
        "{err}"
    );
    assert!(!env.folder("bv").exists());
}

#[test]
fn reconcile_unmounts_what_nobody_holds() {
    let env = Env::new();
    env.create("tv", &[("type", "tmpfs")]).unwrap();
    env.create("img", &[("size", "16M")]).unwrap();
    env.create("kept", &[("type", "tmpfs")]).unwrap();
    env.hold("tv", "gone");
    env.hold("img", "gone");
    env.hold("kept", "alive");
    // A crash after the service dropped the rows, before it unmounted.
    env.forget("tv", "gone");
    env.forget("img", "gone");

    assert_eq!(env.driver.reconcile().unwrap(), ["img", "tv"]);
    assert!(!mounted(&env.data("tv")) && !mounted(&env.data("img")));
    assert!(mounted(&env.data("kept")));
    let image = env.folder("img").join("disk.img");
    assert_eq!(sh("losetup", &["-j", image.to_str().unwrap()]), "");
    assert!(env.driver.reconcile().unwrap().is_empty());
    env.release("kept", "alive");
}

#[test]
fn bad_options_leave_nothing() {
    let env = Env::new();
    let check = |opts: &[(&str, &str)], expected: &str| {
        let err = env.create("bad", opts).unwrap_err().to_string();
        assert!(err.contains(expected), "{opts:?}: {err}");
        assert!(
            err.starts_with("volume driver local: VolumeDriver.Create: "),
            "{err}"
        );
        assert!(!env.folder("bad").exists(), "{opts:?} left a folder");
    };
    check(
        &[("sise", "1G")],
        "unknown option 'sise'; the local driver takes type, device, o, size and fs",
    );
    check(&[("size", "0")], "invalid size '0'");
    check(&[("size", "-5M")], "invalid size '-5M'");
    check(&[("size", "lots")], "invalid size 'lots'");
    check(
        &[("size", "1G"), ("type", "ext4"), ("device", "/dev/null")],
        "only type=tmpfs",
    );
    check(&[("type", "ext4")], "needs device=");
    check(&[("device", "/dev/sda")], "needs type=");
    check(&[("fs", "xfs")], "add size=");
    check(&[("size", "1G"), ("fs", "zfs")], "fs=zfs is not supported");
    check(
        &[("type", "ext4"), ("device", "/dev/no-such-disk")],
        "does not exist",
    );
    check(&[("size", "4k")], "mkfs.ext4");
    let err = env.create("../escape", &[]).unwrap_err().to_string();
    assert!(err.contains("escape"), "{err}");
}

#[test]
fn mount_helper_mounts_what_needs_user_space() {
    // `o=loop` is mount(8)'s, not the kernel's: the helper does it.
    let env = Env::new();
    let image = env.tmp.path().join("block.img");
    std::fs::File::create(&image)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    sh("mkfs.ext4", &["-q", image.to_str().unwrap()]);
    let device = image.to_str().unwrap();
    env.create("lp", &[("type", "ext4"), ("o", "loop"), ("device", device)])
        .unwrap();
    let data = env.hold("lp", "c1");
    assert!(
        data.join("lost+found").is_dir(),
        "the image's filesystem is mounted"
    );
    env.release("lp", "c1");
    assert!(!mounted(&data));
    assert_eq!(sh("losetup", &["-j", device]), "");
    env.driver.remove("lp").unwrap();
}

#[test]
fn mount_helper_failure_reports_its_stderr() {
    let env = Env::new();
    env.create(
        "nfs",
        &[
            ("type", "nfs"),
            ("o", "addr=127.0.0.1,rw"),
            ("device", ":/export"),
        ],
    )
    .unwrap();
    let err = env.driver.mount("nfs", "c1").unwrap_err().to_string();
    assert!(err.contains("VolumeDriver.Mount: mount failed"), "{err}");
    assert!(
        err.contains("mount.nfs") || err.contains("helper"),
        "stderr: {err}"
    );
    assert!(!mounted(&env.data("nfs")));
    env.driver.remove("nfs").unwrap();
}

#[test]
fn mount_failure_is_reported_and_leaves_no_mount() {
    let env = Env::new();
    env.create("mv", &[("type", "tmpfs"), ("o", "size=1m,nosuchoption")])
        .unwrap();
    let err = env.driver.mount("mv", "c1").unwrap_err().to_string();
    assert!(
        err.contains("VolumeDriver.Mount") && err.contains("tmpfs"),
        "{err}"
    );
    assert!(!mounted(&env.data("mv")));
    env.driver.remove("mv").unwrap();
}

#[test]
fn interrupted_create_is_not_a_volume() {
    let env = Env::new();
    let folder = env.folder("half");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("disk.img.tmp"), "").unwrap();
    assert_eq!(env.driver.get("half").unwrap(), None);
    assert!(env.driver.list().unwrap().is_empty());
    let err = env.driver.mount("half", "c1").unwrap_err().to_string();
    assert!(err.contains("not completely created"), "{err}");
    // Creating it again starts over.
    env.create("half", &[("size", "16M")]).unwrap();
    assert!(!folder.join("disk.img.tmp").exists());
    assert!(env.driver.get("half").unwrap().is_some());
    env.driver.remove("half").unwrap();
}

#[test]
fn mount_remakes_a_lost_folder() {
    // The service's record outlived the folder (a crash between the two):
    // the first mount makes a plain volume's folder again.
    let env = Env::new();
    let data = env.driver.mount("lost", "c1").unwrap();
    assert!(data.is_dir());
    env.driver.unmount("lost", "c1").unwrap();
    env.driver.remove("lost").unwrap();
}

/// Not an assertion: prints how long the driver takes for create + first
/// mount + last unmount + remove
/// (`cargo test --test local_driver cycle_timings -- --nocapture`).
#[test]
fn cycle_timings() {
    let env = Env::new();
    let cycles = 20;
    for (label, opts) in [
        ("plain", &[][..]),
        ("size=20M (ext4 image)", &[("size", "20M")][..]),
        ("size=50G (ext4 image)", &[("size", "50G")][..]),
        (
            "size=300M,fs=xfs (xfs image)",
            &[("size", "300M"), ("fs", "xfs")][..],
        ),
        ("type=tmpfs", &[("type", "tmpfs"), ("o", "size=1m")][..]),
    ] {
        let opts = opts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut total = Duration::ZERO;
        for i in 0..cycles {
            let name = format!("cycle{i}");
            let start = Instant::now();
            env.driver.create(&name, &opts).unwrap();
            env.driver.mount(&name, "c1").unwrap();
            env.driver.unmount(&name, "c1").unwrap();
            env.driver.remove(&name).unwrap();
            total += start.elapsed();
        }
        println!("{label}: {:?} per cycle", total / cycles);
    }
}
