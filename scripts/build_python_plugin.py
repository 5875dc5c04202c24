#!/usr/bin/env python3
"""Build a Python plugin into a WebAssembly component with componentize-py.

    build_python_plugin.py PLUGIN_DIR OUT_DIR

PLUGIN_DIR holds `app.py` (the module whose `Tools` or `Nodes` class implements the
export) and `manifest.json`; the component is written to OUT_DIR/<manifest name>.wasm.
The world follows the manifest's `kind`: `tool-plugin` or `node-plugin` from `wit/`.

componentize-py comes from AGENTHOST_PYCLIENTS_DIR (default .agenthost/pyclients,
installed by `make pyclients`). Its wheel carries CPython and the standard library
compiled for WASI, so a build reads nothing from the network. A component newer than
every input (the plugin's .py files, the manifest, wit/) is left alone, so running this
again is cheap. Prints the component's path.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORLDS = {"tool": "tool-plugin", "node": "node-plugin"}


def newest_input(plugin_dir: Path) -> float:
    inputs = [*plugin_dir.rglob("*.py"), plugin_dir / "manifest.json",
              *(ROOT / "wit").rglob("*.wit"), Path(__file__)]
    return max(p.stat().st_mtime for p in inputs if "__pycache__" not in p.parts)


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    plugin_dir, out_dir = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    manifest = json.loads((plugin_dir / "manifest.json").read_text())
    world = WORLDS.get(manifest.get("kind", "tool"))
    if world is None:
        sys.exit(f"{plugin_dir}/manifest.json: kind must be tool or node")
    out = out_dir / f"{manifest['name']}.wasm"
    if out.exists() and out.stat().st_mtime >= newest_input(plugin_dir):
        print(out)
        return

    pyclients = Path(os.environ.get("AGENTHOST_PYCLIENTS_DIR") or ROOT / ".agenthost/pyclients")
    tool = pyclients / "bin" / "componentize-py"
    if not tool.exists():
        sys.exit(f"{tool} is missing: run `make pyclients` (or set AGENTHOST_PYCLIENTS_DIR)")
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".wasm.partial")
    env = {**os.environ, "PYTHONPATH": str(pyclients)}
    command = [sys.executable, str(tool), "--wit-path", str(ROOT / "wit"), "--world", world,
               "componentize", "--python-path", str(plugin_dir), "app", "--output", str(partial)]
    print("+", " ".join(command), file=sys.stderr, flush=True)
    result = subprocess.run(command, env=env, stdout=subprocess.DEVNULL)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        sys.exit(f"componentize-py failed for {plugin_dir} (exit {result.returncode})")
    partial.replace(out)
    print(out)


if __name__ == "__main__":
    main()
