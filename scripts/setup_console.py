#!/usr/bin/env python3
"""Build the web console (console/) that agenthost serves at `/`, and install the
browser its tests drive.

1. `npm ci` in console/ (package-lock.json pins every package: Vite, React, React Flow,
   dagre, and for the tests playwright-core and axe-core). Skipped when the installed
   tree was made from the same lock file.
2. `vite build` into console/dist, then a gzip twin (`<file>.gz`, level 9, no time
   stamp, so builds are reproducible) of every text file: host/build.rs embeds both and
   the server sends the twin to clients that accept gzip. Skipped when nothing the
   build reads has changed.
3. Debian's `chromium`, which the browser tests launch through playwright-core
   (Playwright's own browser download is not reachable here). Installed with apt-get
   when missing; a machine that can't install it fails here, loudly, rather than
   skipping the browser tests later.

Usage: setup_console.py   (from the repository root or anywhere)
Environment: AGENTHOST_CHROMIUM, the browser to use (default /usr/bin/chromium).
"""
import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

CONSOLE = Path(__file__).resolve().parent.parent / "console"
DIST = CONSOLE / "dist"
INSTALLED = CONSOLE / "node_modules" / ".agenthost-lock"
BUILT = DIST / ".agenthost-build"
# What `vite build` reads besides node_modules.
INPUTS = ["index.html", "vite.config.js", "package-lock.json", "src"]
COMPRESSIBLE = {".js", ".css", ".html", ".svg", ".json", ".txt"}
MIN_NODE = (20, 19)


def run(command, **kwargs):
    print("+ " + " ".join(command), flush=True)
    subprocess.run(command, check=True, **kwargs)


def sha256_of(paths):
    digest = hashlib.sha256()
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(CONSOLE)).encode() + b"\0")
            digest.update(file.read_bytes())
    return digest.hexdigest() + "\n"


def check_node():
    if shutil.which("node") is None or shutil.which("npm") is None:
        sys.exit("console: node and npm are not on PATH (install Node.js 20.19 or newer)")
    version = subprocess.run(["node", "--version"], check=True, capture_output=True, text=True).stdout
    numbers = tuple(int(n) for n in version.strip().lstrip("v").split(".")[:2])
    if numbers < MIN_NODE:
        sys.exit(f"console: Vite 8 needs Node.js 20.19 or newer, this is {version.strip()}")


def install():
    wanted = hashlib.sha256((CONSOLE / "package-lock.json").read_bytes()).hexdigest() + "\n"
    if INSTALLED.exists() and INSTALLED.read_text() == wanted:
        print("console: node_modules is ready")
        return
    run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=CONSOLE)
    INSTALLED.write_text(wanted)


def build():
    wanted = sha256_of([CONSOLE / name for name in INPUTS])
    if BUILT.exists() and BUILT.read_text() == wanted and (DIST / "index.html").exists():
        print("console: dist is up to date")
        return
    started = time.monotonic()
    run(["npx", "--no-install", "vite", "build", "--logLevel", "warn"], cwd=CONSOLE)
    raw = packed = 0
    for file in sorted(DIST.rglob("*")):
        if not file.is_file() or file.suffix not in COMPRESSIBLE:
            continue
        data = file.read_bytes()
        twin = gzip.compress(data, compresslevel=9, mtime=0)
        raw += len(data)
        if len(twin) < len(data):
            Path(f"{file}.gz").write_bytes(twin)
            packed += len(twin)
        else:
            packed += len(data)
    BUILT.write_text(wanted)
    print(
        f"console: built dist in {time.monotonic() - started:.1f} s: "
        f"{raw / 1000:.1f} kB, {packed / 1000:.1f} kB gzipped"
    )


def chromium():
    browser = os.environ.get("AGENTHOST_CHROMIUM", "/usr/bin/chromium")
    if not Path(browser).is_file():
        print(f"{browser} not found: installing Debian's chromium for the browser tests", flush=True)
        sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        try:
            run(sudo + ["apt-get", "update", "-q"], env=env)
            run(sudo + ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"], env=env)
        except (subprocess.CalledProcessError, FileNotFoundError) as error:
            sys.exit(
                f"console: could not install chromium ({error}); the browser tests need it. "
                "Install Debian's `chromium` package, or set AGENTHOST_CHROMIUM to a Chromium binary."
            )
        if not Path(browser).is_file():
            sys.exit(f"console: chromium was installed but {browser} is not there; set AGENTHOST_CHROMIUM")
    version = subprocess.run([browser, "--version"], capture_output=True, text=True)
    print(f"{browser}: {version.stdout.strip() or version.stderr.strip()}")


def main():
    check_node()
    install()
    build()
    chromium()


if __name__ == "__main__":
    main()
