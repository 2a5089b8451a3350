-- Schema version 3: the build cache.

-- One row per build step: the state an image build reached after one
-- Dockerfile instruction. `key` is the step's cache key (a digest of the
-- state before the step and the instruction, see strata-build); `config`
-- the digest of the image config blob of the state after it; `layer` the
-- chain ID of that state's top layer, which keeps it and the layers under
-- it stored (NULL for a state without layers, FROM scratch).
CREATE TABLE build_cache (
    key       TEXT PRIMARY KEY,
    config    TEXT NOT NULL,
    layer     TEXT REFERENCES layers (chain_id),
    created   TEXT NOT NULL,
    last_used TEXT NOT NULL
);
CREATE INDEX build_cache_layer ON build_cache (layer);
