#!/usr/bin/env python3
"""Install the official Python clients the end-to-end tests drive our server with.

- `openai` (the OpenAI Python library) talks to `/v1/models` and `/v1/chat/completions`
  (tests/python/openai_client.py, run by tests/tests/e2e/openai_compat.rs).
- `mcp` (the official Model Context Protocol SDK) talks to `/mcp` in both the stateless
  2026-07-28 protocol and the 2025-11-25 session protocol.
- `schemathesis` checks the server's responses against `/openapi.json`.
- `openapi-spec-validator` checks that `/openapi.json` is a valid OpenAPI 3.1 document,
  as code generators need it to be (tests/tests/e2e/openapi.rs).
- `standardwebhooks` (the Standard Webhooks spec's own library) verifies the signatures
  of our outbound webhooks (tests/python/standardwebhooks_verify.py, run by
  tests/tests/e2e/outbound_webhooks.rs).
- `componentize-py` builds the Python example plugin into a component (`make plugins`);
  its wheel carries CPython for wasm, so nothing is downloaded at build time.

They go into one directory with `pip install --target`, imported with
PYTHONPATH=DEST; nothing is installed into the system's Python. The versions are
pinned so a test run is the same on every machine.

Idempotent: a finished install (the marker names the same packages) is left alone.
Usage: setup_pyclients.py [DEST]  (default .agenthost/pyclients)
"""
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGES = [
    "openai==3.51.0",
    "mcp==2.3.0",
    "schemathesis==4.32.5",
    "openapi-spec-validator==0.9.0",
    "componentize-py==0.25.1",
    "standardwebhooks==1.3.0",
]
MARKER = ".agenthost-pyclients"


def main():
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else ".agenthost/pyclients")
    wanted = "\n".join(PACKAGES) + "\n"
    marker = dest / MARKER
    if marker.exists() and marker.read_text() == wanted:
        print(f"pyclients: {dest} is ready")
        return
    # An older or half-finished install (it left one of our markers) is replaced whole:
    # pip --target won't replace a partial tree. Anything else there is not ours to delete.
    partial = dest / (MARKER + "-partial")
    if dest.exists() and any(dest.iterdir()):
        if not (marker.exists() or partial.exists()):
            sys.exit(f"pyclients: {dest} is not empty and is not an earlier install; "
                     "choose another PYCLIENTS_DIR")
        shutil.rmtree(dest)
    dest.mkdir(parents=True, exist_ok=True)
    partial.write_text(wanted)
    print(f"+ pip install --target {dest} {' '.join(PACKAGES)}", flush=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-warn-script-location", "--target", str(dest), *PACKAGES],
        check=True,
    )
    marker.write_text(wanted)
    partial.unlink()
    print(f"pyclients: installed into {dest}")


if __name__ == "__main__":
    main()
