use strata_snapshot::select;

use crate::Env;

#[test]
fn picks_overlay_where_it_mounts_and_records_it() {
    let env = Env::default();
    let s = select::open(env.root(), env.root(), env.db.clone(), None).unwrap();
    assert_eq!(s.driver(), "overlay");
    assert_eq!(
        select::recorded(&env.db).unwrap().as_deref(),
        Some("overlay")
    );
    assert!(select::overlay_works(env.root()).is_ok());
}

#[test]
fn a_store_keeps_its_driver() {
    let env = Env::default();
    let s = select::open(env.root(), env.root(), env.db.clone(), Some("vfs")).unwrap();
    assert_eq!(s.driver(), "vfs");
    // Asked for nothing: the recorded one.
    let s = select::open(env.root(), env.root(), env.db.clone(), None).unwrap();
    assert_eq!(s.driver(), "vfs");
    let err = select::open(env.root(), env.root(), env.db.clone(), Some("overlay"))
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("was made with the 'vfs' storage driver and cannot be opened with 'overlay'"),
        "{msg}"
    );
    assert!(msg.contains("use --storage-driver vfs"), "{msg}");
}

#[test]
fn unknown_drivers_are_named() {
    let env = Env::default();
    let err = select::open(env.root(), env.root(), env.db.clone(), Some("aufs"))
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "unknown storage driver 'aufs' (choose overlay or vfs)"
    );
    assert_eq!(select::recorded(&env.db).unwrap(), None, "nothing recorded");
}

#[test]
fn overlay_on_overlay_is_detected() {
    // An overlay upper directory cannot live on overlayfs itself.
    let env = Env::default();
    let lower = env.root().join("l");
    let up = env.root().join("u");
    let work = env.root().join("w");
    let merged = env.root().join("m");
    for d in [&lower, &up, &work, &merged] {
        std::fs::create_dir(d).unwrap();
    }
    let m = strata_snapshot::mount::mount(
        &[strata_snapshot::Mount::Overlay {
            lowers: vec![lower.clone()],
            upper: Some(up.clone()),
            work: Some(work.clone()),
        }],
        &merged,
    )
    .unwrap();
    let err = select::overlay_works(&merged).unwrap_err();
    assert!(err.contains("overlay"), "{err}");
    drop(m);
}
