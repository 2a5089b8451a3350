-- Schema version 1. Timestamps are RFC 3339 text; digests are 'sha256:<hex>'.

-- Store-wide settings: 'driver' (the storage driver the store was made with).
CREATE TABLE store (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Snapshots of the storage driver (containerd's model). `key` is the name of
-- a committed snapshot or the key of an active one; they share one namespace.
-- `transient` marks scratch snapshots (layer extraction) that reconcile may
-- remove when no process holds the store lock.
CREATE TABLE snapshots (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    key       TEXT NOT NULL UNIQUE,
    parent    INTEGER REFERENCES snapshots (id),
    kind      TEXT NOT NULL CHECK (kind IN ('active', 'view', 'committed')),
    transient INTEGER NOT NULL DEFAULT 0,
    labels    TEXT NOT NULL DEFAULT '{}',
    created   TEXT NOT NULL,
    updated   TEXT NOT NULL,
    -- recorded when committed, so usage never walks the tree
    size      INTEGER,
    inodes    INTEGER
);
CREATE INDEX snapshots_parent ON snapshots (parent);

-- Image layers, by chain ID. The layer's files live in the committed snapshot
-- of the same name; `tar_index` is the blob that regenerates the exact layer
-- tar (and so its diff ID) from those files.
CREATE TABLE layers (
    chain_id  TEXT PRIMARY KEY,
    diff_id   TEXT NOT NULL,
    parent    TEXT REFERENCES layers (chain_id),
    size      INTEGER NOT NULL,  -- bytes of file content in the layer
    tar_size  INTEGER NOT NULL,  -- bytes of the uncompressed layer tar
    tar_index TEXT NOT NULL,
    created   TEXT NOT NULL
);
CREATE INDEX layers_parent ON layers (parent);

-- Images, by ID (the digest of their config blob).
CREATE TABLE images (
    id       TEXT PRIMARY KEY,
    manifest TEXT NOT NULL,  -- digest of the manifest blob Strata keeps for it
    size     INTEGER NOT NULL,
    created  TEXT,           -- from the image config
    added    TEXT NOT NULL
);

CREATE TABLE image_layers (
    image    TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    layer    TEXT NOT NULL REFERENCES layers (chain_id),
    PRIMARY KEY (image, position)
);
CREATE INDEX image_layers_layer ON image_layers (layer);

-- Tags: normalized references ('docker.io/library/busybox:latest') to images.
CREATE TABLE tags (
    name  TEXT PRIMARY KEY,
    image TEXT NOT NULL REFERENCES images (id)
);
CREATE INDEX tags_image ON tags (image);
