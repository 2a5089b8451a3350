//! A node that rebooted: its mounts are gone, its records and mount rows
//! are not. Staging and publishing again must mount again, not answer
//! "already done" over an empty folder. Runs the real server in-process
//! over its socket, as root.

mod support;

use std::path::Path;

use strata_csi::client::CsiClient;
use support::{Paths, create, stage_and_publish, start, unpublish_and_delete};

fn is_mounted(path: &Path) -> bool {
    strata_snapshot::mount::is_mounted(path).unwrap()
}

/// What a reboot does to the node's mounts: all of them go.
fn lose_mounts(under: &Path) {
    let mut points = strata_snapshot::mount::mounts_under(under).unwrap();
    points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    for point in points {
        strata_snapshot::mount::unmount(&point).unwrap();
    }
}

#[test]
fn stage_and_publish_mount_again_after_the_mounts_are_lost() {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let root = dir.path().join("root");
    let server = start(&root, "n1");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let endpoint = format!("unix://{}", root.join("csi.sock").display());
    let mut client: CsiClient = runtime.block_on(CsiClient::connect(&endpoint)).unwrap();
    let at = Paths {
        staging: dir.path().join("staging"),
        target: dir.path().join("target"),
    };

    let id = runtime.block_on(async {
        let id = create(&mut client, "rebooted", "image", 16 << 20).await;
        stage_and_publish(&mut client, &id, &at).await;
        id
    });
    std::fs::write(at.target.join("kept"), b"before the reboot").unwrap();

    lose_mounts(dir.path());
    assert!(!is_mounted(&at.staging) && !is_mounted(&at.target));

    runtime.block_on(stage_and_publish(&mut client, &id, &at));
    assert!(is_mounted(&at.staging), "staged again");
    assert!(is_mounted(&at.target), "published again");
    assert_eq!(
        std::fs::read(at.target.join("kept")).unwrap(),
        b"before the reboot",
        "the volume's data, not an empty folder"
    );

    runtime.block_on(unpublish_and_delete(&mut client, &id, &at));
    // The client's connection lives on its runtime: close both first.
    drop(client);
    drop(runtime);
    server.stop().unwrap();
    lose_mounts(dir.path());
}
