#!/usr/bin/env python3
"""Install the official JavaScript clients the end-to-end tests drive our server with.

- `ai` (Vercel AI SDK 6, the last major that runs on Node 20): its own UI message stream
  parser validates our chat stream, and its `DefaultChatTransport` sends the requests
  `useChat` sends.
- `@modelcontextprotocol/conformance`: the MCP conformance runner, pointed at `/mcp`.
- `jsdom`: runs the `/docs` page's own scripts (Swagger UI) to see every request the
  page makes (no browser is installed for one page).

tests/node/package.json and its lock file pin every version. They are copied into DEST
and installed there with `npm ci`, so the checkout stays clean and a CI cache directory
can hold the result. Test scripts are CommonJS and find the packages through
NODE_PATH=DEST/node_modules.

Idempotent: an install whose marker holds the same lock file is left alone.
Usage: setup_nodeclients.py [DEST]  (default .agenthost/nodeclients)
"""
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent / "tests" / "node"
MARKER = ".agenthost-nodeclients"


def main():
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else ".agenthost/nodeclients")
    lock = (SOURCE / "package-lock.json").read_bytes()
    wanted = hashlib.sha256(lock).hexdigest() + "\n"
    marker = dest / MARKER
    if marker.exists() and marker.read_text() == wanted:
        print(f"nodeclients: {dest} is ready")
        return
    if shutil.which("npm") is None:
        sys.exit("nodeclients: npm is not on PATH (install Node.js 20 or newer)")
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(SOURCE / name, dest / name)
    print(f"+ npm ci in {dest}", flush=True)
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=dest, check=True
    )
    marker.write_text(wanted)
    print(f"nodeclients: installed into {dest}")


if __name__ == "__main__":
    main()
