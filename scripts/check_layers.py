#!/usr/bin/env python3
"""Fails when a module of the host crate uses one of a higher layer (`make lint`).

The host is one crate today; docs/architecture.md names the layers it is to be split
along. Until the split, this check holds the layering the compiler will hold then: a
module may use modules of its own layer and the layers below, never above. The uses
still crossing upwards are listed in KNOWN, each with what removes it; the list may
only shrink (an entry that no longer occurs fails too, so it gets deleted).

A use is any `crate::<module>` path outside comments and the `#[cfg(test)]` module at
the end of a file.
"""

import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "host" / "src"

# Lowest first. Keep in step with docs/architecture.md.
LAYERS = {
    "core": ["error", "nul", "net", "config", "telemetry", "db", "audit", "events",
             "plugin_logs", "auth", "api_keys", "workspaces"],
    "models": ["llm", "embeddings", "vector"],
    "runtime": ["runtime", "capabilities", "registry"],
    "engine": ["workflows", "automation", "agents", "data", "support"],
    "surfaces": ["state", "http", "mcp", "cli", "server"],
}

# (from, to): why it still crosses, and what removes it.
KNOWN = {
    ("auth", "state"): "the request extractors (WorkspaceCaller...) read AppState; they move "
                       "to the surfaces crate with http",
    ("capabilities", "workflows"): "the workflows host interface calls the engine; it is to "
                                   "reach it through a trait it defines, as `automation` does",
}

USE = re.compile(r"crate::(?:\{([^}]*)\}|([a-z_]+))")


def layer_of():
    order = {}
    for rank, (name, modules) in enumerate(LAYERS.items()):
        for module in modules:
            order[module] = (rank, name)
    return order


def top_modules():
    names = {p.stem for p in SRC.glob("*.rs")} | {p.name for p in SRC.iterdir() if p.is_dir()}
    return names - {"lib", "main"}


def code_of(text):
    """The file without comments and without its trailing test module."""
    cut = re.search(r"^#\[cfg\(test\)\]\s*\n\s*mod \w+", text, re.M)
    if cut:
        text = text[: cut.start()]
    return re.sub(r"//.*", "", text)


def uses(path):
    code = code_of(path.read_text())
    for found in USE.finditer(code):  # a `{...}` group may span lines
        number = code.count("\n", 0, found.start()) + 1
        group, single = found.groups()
        # In a group, only the first segment of each path names a module.
        names = re.findall(r"(?:^|,)\s*([a-z_]+)", group) if group else [single]
        for name in names:
            yield number, name


def main():
    order = layer_of()
    modules = top_modules()
    unplaced = sorted(modules - set(order))
    if unplaced:
        print(f"check_layers: modules in no layer (add them to LAYERS): {', '.join(unplaced)}")
        return 1
    found = {}
    for path in sorted(SRC.rglob("*.rs")):
        top = path.relative_to(SRC).parts[0].removesuffix(".rs")
        if top not in order:
            continue
        for number, name in uses(path):
            if name in modules and name != top and order[name][0] > order[top][0]:
                found.setdefault((top, name), []).append(f"{path.relative_to(SRC.parent.parent)}:{number}")
    failures = []
    for (top, name), places in sorted(found.items()):
        if (top, name) not in KNOWN:
            failures.append(
                f"{top} ({order[top][1]}) uses {name} ({order[name][1]}), a higher layer: "
                + ", ".join(places[:5])
            )
    for edge in sorted(set(KNOWN) - set(found)):
        failures.append(f"{edge[0]} no longer uses {edge[1]}: delete the entry from KNOWN")
    if failures:
        print("check_layers: the host's layers (docs/architecture.md) are crossed:")
        for failure in failures:
            print("  " + failure)
        return 1
    print(f"check_layers: {len(modules)} modules in {len(LAYERS)} layers; "
          f"{len(KNOWN)} known upward uses left (scripts/check_layers.py)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
