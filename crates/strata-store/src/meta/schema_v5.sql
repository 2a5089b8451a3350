-- Schema version 5: what `strata csi serve` knows beyond the volumes.

-- Volumes made through CSI: the orchestrator's name for each (its
-- idempotency key), the capacity it was given and the request it came
-- from, so a repeated CreateVolume can be told from a conflicting one.
-- No foreign key to `volumes`: a volume removed by `strata volume rm` is
-- gone for CSI too, which reads this table joined with `volumes`.
CREATE TABLE csi_volumes (
    volume   TEXT PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    capacity INTEGER NOT NULL,
    request  TEXT NOT NULL,
    created  TEXT NOT NULL
);

-- Point-in-time copies of CSI volumes, kept under <root>/csi/snapshots/<id>.
-- `ready` is 0 while the copy is being made: a row left at 0 by a crash is
-- removed with its folder on the next start.
CREATE TABLE csi_snapshots (
    id      TEXT PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    source  TEXT NOT NULL,
    size    INTEGER NOT NULL,
    ready   INTEGER NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX csi_snapshots_source ON csi_snapshots (source);

-- ControllerPublishVolume: which node each volume is attached to.
CREATE TABLE csi_publications (
    volume   TEXT NOT NULL,
    node     TEXT NOT NULL,
    readonly INTEGER NOT NULL,
    request  TEXT NOT NULL,
    PRIMARY KEY (volume, node)
);

-- CSI's node stages and publishes hold volume_mounts rows too (callers
-- `csi-stage:<path>` and `csi-publish:<path>`) with plugin = 1: like a
-- Docker daemon's, their orchestrator tracks them, so reconcile leaves
-- them alone.
