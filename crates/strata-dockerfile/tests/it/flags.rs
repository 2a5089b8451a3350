//! RUN mounts, network and security; HEALTHCHECK options.

use std::time::Duration;

use strata_dockerfile::{Healthcheck, MountKind, RunMount, Step};

use crate::support::{check_expand_err, check_steps, exec, shell, strings};

fn mount(kind: MountKind, target: &str) -> RunMount {
    RunMount {
        kind,
        target: target.to_owned(),
        readonly: matches!(kind, MountKind::Bind | MountKind::Secret | MountKind::Ssh),
        ..RunMount::default()
    }
}

fn check_mounts(flags: &str, want: Vec<RunMount>) {
    let input = format!("RUN {flags} make");
    let step = Step::Run {
        command: shell("make"),
        mounts: want,
        network: None,
        security: None,
    };
    check_steps(&input, &[("V", "cache"), ("T", "/t")], vec![step]);
}

#[test]
fn mounts() {
    let with = |mut m: RunMount, f: fn(&mut RunMount)| {
        f(&mut m);
        m
    };
    for (flags, want) in [
        ("--mount=target=/src", vec![mount(MountKind::Bind, "/src")]),
        (
            "--mount=type=cache,target=/root/.cache,id=go,sharing=locked,mode=0755,uid=1000,gid=1000",
            vec![with(mount(MountKind::Cache, "/root/.cache"), |m| {
                m.id = Some("go".into());
                m.sharing = Some("locked".into());
                m.mode = Some(0o755);
                m.uid = Some(1000);
                m.gid = Some(1000);
            })],
        ),
        (
            "--mount=type=bind,from=build,source=/out,dst=/in,rw",
            vec![with(mount(MountKind::Bind, "/in"), |m| {
                m.from = Some("build".into());
                m.source = Some("/out".into());
                m.readonly = false;
            })],
        ),
        (
            "--mount=type=cache,destination=/c,ro=true --mount=TYPE=Tmpfs,target=/tmp,size=64m",
            vec![
                with(mount(MountKind::Cache, "/c"), |m| m.readonly = true),
                with(mount(MountKind::Tmpfs, "/tmp"), |m| m.size = Some(64 << 20)),
            ],
        ),
        (
            "--mount=type=secret,id=tok,required --mount=type=secret,target=/etc/key,env=KEY",
            vec![
                with(mount(MountKind::Secret, "/run/secrets/tok"), |m| {
                    m.id = Some("tok".into());
                    m.required = true;
                }),
                with(mount(MountKind::Secret, "/etc/key"), |m| {
                    m.id = Some("key".into());
                    m.env = Some("KEY".into());
                }),
            ],
        ),
        (
            "--mount=type=ssh --mount=type=ssh,id=gh,target=/s",
            vec![
                with(mount(MountKind::Ssh, "/run/buildkit/ssh_agent.0"), |m| {
                    m.id = Some("default".into())
                }),
                with(mount(MountKind::Ssh, "/s"), |m| m.id = Some("gh".into())),
            ],
        ),
        // Values are expanded; CSV quoting protects commas.
        (
            "--mount='type=$V,target=${T}x,\"id=a,b\"'",
            vec![with(mount(MountKind::Cache, "/tx"), |m| {
                m.id = Some("a,b".into())
            })],
        ),
    ] {
        check_mounts(flags, want);
    }
}

#[test]
fn network_and_security() {
    check_steps(
        "RUN --network=none --security=insecure [\"a\"]",
        &[],
        vec![Step::Run {
            command: exec(&["a"]),
            mounts: vec![],
            network: Some("none".into()),
            security: Some("insecure".into()),
        }],
    );
}

#[test]
fn mount_errors_found_at_expansion() {
    for (input, part) in [
        (
            "RUN --mount=type=$X,target=/a x",
            "unsupported mount type \"\"",
        ),
        (
            "RUN --mount=type=cache,target=$X x",
            "mount target is required",
        ),
        (
            "RUN --mount=type=cache,target=/a,mode=${M:?} x",
            "M: is not allowed to be unset",
        ),
    ] {
        check_expand_err(input, &[], 2, part);
    }
}

fn health(test: &[&str]) -> Healthcheck {
    Healthcheck {
        test: strings(test),
        interval: None,
        timeout: None,
        start_period: None,
        start_interval: None,
        retries: None,
    }
}

#[test]
fn healthcheck() {
    let secs = Duration::from_secs;
    for (input, want) in [
        ("HEALTHCHECK NONE", None),
        ("HEALTHCHECK none", None),
        (
            "HEALTHCHECK CMD curl -f http://x/ || exit 1",
            Some(health(&["CMD-SHELL", "curl -f http://x/ || exit 1"])),
        ),
        (
            "HEALTHCHECK cmd [\"/bin/check\", \"$A\"]",
            Some(health(&["CMD", "/bin/check", "$A"])),
        ),
        (
            "HEALTHCHECK --interval=1m30s --timeout=5s --start-period=0.5s --start-interval=250ms --retries=3 CMD true",
            Some(Healthcheck {
                interval: Some(secs(90)),
                timeout: Some(secs(5)),
                start_period: Some(Duration::from_millis(500)),
                start_interval: Some(Duration::from_millis(250)),
                retries: Some(3),
                ..health(&["CMD-SHELL", "true"])
            }),
        ),
        // Zero means "inherit", as in Docker.
        (
            "HEALTHCHECK --interval=0s --retries=0 CMD true",
            Some(health(&["CMD-SHELL", "true"])),
        ),
    ] {
        check_steps(input, &[], vec![Step::Healthcheck(want)]);
    }
}
