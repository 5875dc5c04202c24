#!/usr/bin/env python3
"""Refresh wit/deps/ (the standard WASI packages the plugin worlds import) from the
wasmtime-wasi-http crate the host is built with, so the WIT a plugin author generates
bindings from is exactly what the host links.

    update_wit_deps.py           copy the crate's wit/deps/*.wit over wit/deps/
    update_wit_deps.py --check   only compare; exit 1 when they differ

The crate is located with `cargo metadata --offline`, filtered to this machine's
target (whose crates are in cargo's registry cache once the host has been built);
nothing is downloaded. After a wasmtime upgrade that moves WASI to a new 0.2.x, also
bump the versions in wit/types.wit (world `imports`) and the SDK's `with:` list
(sdk/src/lib.rs).
"""
import filecmp
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEST = ROOT / "wit" / "deps"
CRATE = "wasmtime-wasi-http"


def host_triple() -> str:
    version = subprocess.run(["rustc", "-vV"], check=True, capture_output=True, text=True)
    return next(line.split(": ", 1)[1] for line in version.stdout.splitlines()
                if line.startswith("host: "))


def crate_deps_dir() -> Path:
    metadata = json.loads(subprocess.run(
        # Filtered to the host's platform: other platforms' crates may not be cached.
        ["cargo", "metadata", "--format-version", "1", "--offline", "--filter-platform",
         host_triple()],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout)
    packages = [p for p in metadata["packages"] if p["name"] == CRATE]
    if len(packages) != 1:
        sys.exit(f"expected one {CRATE} in the dependency graph, found {len(packages)}")
    print(f"{CRATE} {packages[0]['version']}", file=sys.stderr)
    return Path(packages[0]["manifest_path"]).parent / "wit" / "deps"


def main() -> None:
    check = sys.argv[1:] == ["--check"]
    source = crate_deps_dir()
    theirs = {p.name for p in source.glob("*.wit")}
    ours = {p.name for p in DEST.glob("*.wit")}
    changed = sorted(n for n in theirs & ours if not filecmp.cmp(source / n, DEST / n, shallow=False))
    added, removed = sorted(theirs - ours), sorted(ours - theirs)
    for label, names in (("changed", changed), ("new", added), ("gone", removed)):
        for name in names:
            print(f"{label}: wit/deps/{name}")
    if not (changed or added or removed):
        print("wit/deps is up to date")
        return
    if check:
        sys.exit(1)
    for name in changed + added:
        shutil.copyfile(source / name, DEST / name)
    for name in removed:
        (DEST / name).unlink()


if __name__ == "__main__":
    main()
