-- Schema version 2: volumes and containers.

-- Volumes, by name. Anonymous volumes have a random 64-hex name and carry
-- `anonymous = 1` (Docker marks them with the label
-- com.docker.volume.anonymous, which `inspect` shows too).
CREATE TABLE volumes (
    name      TEXT PRIMARY KEY,
    driver    TEXT NOT NULL,
    labels    TEXT NOT NULL DEFAULT '{}',
    options   TEXT NOT NULL DEFAULT '{}',
    anonymous INTEGER NOT NULL DEFAULT 0,
    created   TEXT NOT NULL
);

-- Containers. `image` is the image ID the container was made from; it is
-- not a foreign key because `rmi --force` may remove the image record while
-- the container's snapshot keeps its layers. `config` is the container's
-- whole configuration as JSON (command, env, mounts, ...); what changes at
-- run time (pid, exit code) lives in the container's state file, written by
-- its monitor.
CREATE TABLE containers (
    id       TEXT PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    image    TEXT NOT NULL,
    snapshot TEXT NOT NULL UNIQUE,
    config   TEXT NOT NULL,
    created  TEXT NOT NULL
);
CREATE INDEX containers_image ON containers (image);

-- Which containers use which volumes: a volume in this table cannot be
-- removed (the foreign key refuses it).
CREATE TABLE container_volumes (
    container TEXT NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    volume    TEXT NOT NULL REFERENCES volumes (name),
    PRIMARY KEY (container, volume)
);
CREATE INDEX container_volumes_volume ON container_volumes (volume);
