-- Schema version 3: the build cache.

-- One row per build step: the state an image build reached after one
-- Dockerfile instruction. `key` is the step's cache key (a digest of the
-- state before the step and the instruction, see strata-build); `parent`
-- the state before it and `config` the state after it (digests of image
-- config blobs: `history` walks them to name each step's state); `layer`
-- the chain ID of the top layer after it, which keeps it and the layers
-- under it stored (NULL for a state without layers, FROM scratch).
CREATE TABLE build_cache (
    key       TEXT PRIMARY KEY,
    parent    TEXT NOT NULL,
    config    TEXT NOT NULL,
    layer     TEXT REFERENCES layers (chain_id),
    created   TEXT NOT NULL,
    last_used TEXT NOT NULL
);
CREATE INDEX build_cache_layer ON build_cache (layer);
CREATE INDEX build_cache_config ON build_cache (config);
