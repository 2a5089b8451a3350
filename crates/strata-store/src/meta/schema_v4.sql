-- Schema version 4: who has each volume mounted.

-- One row per (volume, caller) that holds a mount of the volume: a
-- container ID for Strata's own containers, the caller's ID for a client
-- of `strata plugin serve` (Docker sends one per container start). The
-- volume service adds the row after the driver's Mount succeeded and
-- deletes it before calling Unmount, so the local driver can tell the
-- last unmount (no rows left) from the others. `plugin` is 1 for callers
-- that came through the plugin socket: reconcile leaves those alone (their
-- daemon owns them) and releases container callers that are not running.
CREATE TABLE volume_mounts (
    volume  TEXT NOT NULL REFERENCES volumes (name),
    caller  TEXT NOT NULL,
    plugin  INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL,
    PRIMARY KEY (volume, caller)
);
