#!/usr/bin/env python3
"""Deterministically generate the test images for the `strata load` benchmark.

Usage: gen_image.py OUTDIR [--only small-files|one-big-file] [--seed N]

For each image NAME this writes into OUTDIR:
  NAME.layer.tar   the uncompressed layer (input of the `tar -xf` floor)
  NAME.docker.tar  classic docker-archive (manifest.json + config + gzip layer),
                   as accepted by `docker load` 20.10 and `podman load`
  NAME.oci.tar     OCI image layout archive (oci-layout, index.json, blobs/)

Images:
  small-files   one layer: ~300 dirs, 20,000 regular files, 1 GiB in total
                (log-normal sizes: median ~8 KiB, mean 52.4 KiB, max ~16 MiB)
  one-big-file  one layer: a single 1 GiB file

File content alternates 2 KiB of seeded pseudo-random bytes with 2 KiB of
repeated text, so gzip gets ~1.9x, roughly like real image layers.  Everything
is streamed in 1 MiB pieces: no layer is ever held in memory.  The layer tars
are byte-for-byte reproducible; the gzip blobs are too, given the same zlib.
"""

import argparse
import hashlib
import io
import json
import math
import os
import random
import tarfile
import zlib

GIB = 1 << 30
CHUNK = 1 << 20
MTIME = 1704067200  # 2024-01-01T00:00:00Z: fixed so the tars are reproducible
CREATED = "2024-01-01T00:00:00Z"
IMAGES = ("small-files", "one-big-file")


class Content:
    """Endless deterministic byte stream: 2 KiB random, 2 KiB text, repeat."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        lines = [b"%05d INFO strata.bench worker=%d msg=\"layer entry written\" "
                 b"path=/usr/lib/pkg%03d/module.py ok\n" % (i, i % 7, i % 113)
                 for i in range(120)]
        # ~11 KiB of text: it repeats well inside deflate's 32 KiB window.
        self.text = b"".join(lines)
        self.text2 = self.text * 2  # so a 2 KiB slice can wrap around
        self.text_pos = 0
        self.buf = b""
        self.pos = 0

    def _refill(self):
        rnd = self.rng.randbytes(CHUNK // 2)
        out = bytearray()
        for i in range(0, CHUNK // 2, 2048):
            out += rnd[i:i + 2048]
            t = self.text_pos
            seg = self.text2[t:t + 2048]
            self.text_pos = (t + 2048) % len(self.text)
            out += seg
        self.buf, self.pos = bytes(out), 0

    def read(self, n):
        parts = []
        while n > 0:
            if self.pos == len(self.buf):
                self._refill()
            piece = self.buf[self.pos:self.pos + n]
            self.pos += len(piece)
            n -= len(piece)
            parts.append(piece)
        return b"".join(parts)


class Sized:
    """File-like view of the next `size` bytes of a Content stream."""

    def __init__(self, content, size):
        self.content, self.left = content, size

    def read(self, n=-1):
        n = self.left if n is None or n < 0 else min(n, self.left)
        self.left -= n
        return self.content.read(n)


class LayerWriter:
    """Tees the tar stream into NAME.layer.tar and a gzip blob, hashing both
    (diff_id = sha256 of the tar, blob digest = sha256 of the gzip)."""

    def __init__(self, tar_path, blob_path):
        self.tar_f = open(tar_path, "wb")
        self.blob_f = open(blob_path, "wb")
        self.diff = hashlib.sha256()
        self.blob = hashlib.sha256()
        self.blob_size = 0
        # wbits=31: gzip framing with mtime 0 and no file name (deterministic);
        # level 6 is the default of Go's compress/gzip used by docker/buildkit.
        self.z = zlib.compressobj(6, zlib.DEFLATED, 31)

    def _blob(self, data):
        if data:
            self.blob_f.write(data)
            self.blob.update(data)
            self.blob_size += len(data)

    def write(self, data):
        self.tar_f.write(data)
        self.diff.update(data)
        self._blob(self.z.compress(data))
        return len(data)

    def close(self):
        self._blob(self.z.flush())
        self.tar_f.close()
        self.blob_f.close()


def small_files_tree(rng):
    """~300 directories and 20,000 files summing to exactly 1 GiB."""
    words = ["lib", "share", "bin", "include", "doc", "locale", "python3",
             "site-packages", "node_modules", "src", "data", "assets", "config",
             "plugins", "modules", "static", "templates", "tests", "vendor",
             "i18n", "icons", "fonts", "schemas", "migrations", "handlers"]
    dirs = ["usr", "opt", "var", "etc", "srv", "app"]
    while len(dirs) < 300:
        parent = rng.choice(dirs)
        if parent.count("/") >= 5:
            continue
        name = f"{parent}/{rng.choice(words)}{rng.randrange(100)}"
        if name not in dirs:
            dirs.append(name)
    # Log-normal sizes (median 8 KiB, long tail, capped at 16 MiB), then scaled
    # so the total is exactly 1 GiB (mean 53,687 bytes = 52.4 KiB).
    raw = [min(rng.lognormvariate(math.log(8192), 1.93), 16 << 20)
           for _ in range(20000)]
    scale = GIB / sum(raw)
    sizes = [int(s * scale) for s in raw]
    sizes[-1] += GIB - sum(sizes)
    exts = [".py", ".so", ".js", ".json", ".txt", ".png", ".mo", ".h", ".dat"]
    files = {}
    for i, size in enumerate(sizes):
        path = f"{rng.choice(dirs)}/f{i:05d}{rng.choice(exts)}"
        files[path] = size
    return dirs, files


def write_layer(name, out, seed):
    """Write NAME.layer.tar and the gzip blob; return (diff_id, blob digest, blob size)."""
    rng = random.Random(f"{seed}:{name}:tree")
    if name == "small-files":
        dirs, files = small_files_tree(rng)
    else:
        dirs, files = ["data"], {"data/big.bin": GIB}
    entries = sorted([(d, None) for d in dirs] + list(files.items()))  # parents first
    content = Content(f"{seed}:{name}:content")
    w = LayerWriter(f"{out}/{name}.layer.tar.tmp", f"{out}/{name}.blob.tmp")
    with tarfile.open(fileobj=w, mode="w|", bufsize=CHUNK, copybufsize=CHUNK,
                      format=tarfile.PAX_FORMAT) as tar:
        for path, size in entries:
            ti = tarfile.TarInfo(path)
            ti.mtime, ti.uname, ti.gname = MTIME, "root", "root"
            if size is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(ti)
            else:
                ti.size = size
                ti.mode = 0o755 if path.endswith(".so") else 0o644
                tar.addfile(ti, Sized(content, size))
    w.close()
    os.rename(f"{out}/{name}.layer.tar.tmp", f"{out}/{name}.layer.tar")
    return "sha256:" + w.diff.hexdigest(), "sha256:" + w.blob.hexdigest(), w.blob_size


def add_bytes(tar, path, data):
    ti = tarfile.TarInfo(path)
    ti.size, ti.mtime, ti.mode = len(data), MTIME, 0o644
    tar.addfile(ti, io.BytesIO(data))


def add_file(tar, path, src):
    ti = tarfile.TarInfo(path)
    ti.size, ti.mtime, ti.mode = os.path.getsize(src), MTIME, 0o644
    with open(src, "rb") as f:
        tar.addfile(ti, f)  # tarfile copies in copybufsize pieces: streamed


def canon(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def make_image(name, out, seed):
    diff_id, blob_digest, blob_size = write_layer(name, out, seed)
    blob = f"{out}/{name}.blob.tmp"
    config = canon({
        "architecture": "amd64", "os": "linux", "created": CREATED,
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": CREATED,
                     "created_by": f"strata bench/gen_image.py {name} seed={seed}"}],
    })
    config_hex = hashlib.sha256(config).hexdigest()
    blob_hex = blob_digest.split(":")[1]
    tag = f"strata-bench/{name}:latest"

    # Classic docker-archive: manifest.json names the config and the layer
    # file; the layer file may be gzip (docker load and podman load sniff it).
    tmp = f"{out}/{name}.docker.tar.tmp"
    with tarfile.open(tmp, "w", copybufsize=CHUNK, format=tarfile.PAX_FORMAT) as tar:
        add_bytes(tar, "manifest.json", canon([{
            "Config": f"{config_hex}.json", "RepoTags": [tag],
            "Layers": [f"{blob_hex}.tar.gz"]}]))
        add_bytes(tar, f"{config_hex}.json", config)
        add_file(tar, f"{blob_hex}.tar.gz", blob)
    os.rename(tmp, f"{out}/{name}.docker.tar")

    # OCI image layout archive.
    manifest = canon({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": f"sha256:{config_hex}", "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": blob_digest, "size": blob_size}],
    })
    index = canon({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": "sha256:" + hashlib.sha256(manifest).hexdigest(),
                       "size": len(manifest),
                       "annotations": {"org.opencontainers.image.ref.name": tag}}],
    })
    tmp = f"{out}/{name}.oci.tar.tmp"
    with tarfile.open(tmp, "w", copybufsize=CHUNK, format=tarfile.PAX_FORMAT) as tar:
        add_bytes(tar, "oci-layout", canon({"imageLayoutVersion": "1.0.0"}))
        add_bytes(tar, "index.json", index)
        add_bytes(tar, f"blobs/sha256/{hashlib.sha256(manifest).hexdigest()}", manifest)
        add_bytes(tar, f"blobs/sha256/{config_hex}", config)
        add_file(tar, f"blobs/sha256/{blob_hex}", blob)
    os.rename(tmp, f"{out}/{name}.oci.tar")
    os.remove(blob)
    print(f"{name}: diff_id {diff_id}, gzip layer {blob_digest} "
          f"({blob_size / 2**20:.0f} MiB, 1 GiB of content / gzip = {GIB / blob_size:.2f})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    ap.add_argument("--only", choices=IMAGES, action="append")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    for name in args.only or IMAGES:
        make_image(name, args.outdir, args.seed)


if __name__ == "__main__":
    main()
