//! Image commands end to end: import, load, save, list, history, tag, rmi,
//! prune, df, on real storage drivers.

mod common;

use common::Strata;
use common::archive::busybox_rootfs;

fn import_busybox(s: &Strata, name: &str) -> String {
    let tar = s.path("rootfs.tar");
    std::fs::write(&tar, busybox_rootfs()).unwrap();
    s.ok(&["image", "import", tar.to_str().unwrap(), name, "-c", "CMD [\"sh\"]"])
        .trim()
        .to_owned()
}

#[test]
fn import_save_load_round_trip() {
    let s = Strata::new();
    let id = import_busybox(&s, "busybox");
    assert!(id.starts_with("sha256:"), "{id}");
    let before = s.image_tree("busybox");
    assert!(before.has_file("bin/busybox"));
    for format in ["docker-archive", "oci-archive", "oci-dir"] {
        let out = s.path(&format!("saved-{format}"));
        s.ok(&["save", "--format", format, "-o", out.to_str().unwrap(), "busybox"]);
        s.ok(&["rmi", "busybox"]);
        assert_eq!(s.ok(&["images", "-q"]), "");
        let loaded = s.ok(&["load", "-i", out.to_str().unwrap()]);
        assert_eq!(loaded, "Loaded image: busybox:latest\n", "{format}");
        assert_eq!(s.inspect("busybox")["Id"], id, "{format}");
        assert_eq!(s.image_tree("busybox"), before, "{format}");
    }
}
