#!/usr/bin/env python3
"""Install the VADER lexicon, its ground truth and the reference implementation.

`agenthost-support` compiles the VADER sentiment lexicon in (its build.rs reads this
directory), and its tests compare our implementation with the reference one. Both come
from the PyPI package vaderSentiment 3.3.2 (C.J. Hutto, MIT licence; LICENSE.txt is kept
next to the data and README names it):

- the source distribution, fetched with `pip download --no-binary :all:` and checked
  against a pinned SHA-256, gives vader_lexicon.txt, emoji_utf8_lexicon.txt, LICENSE.txt
  and the four ground-truth sets of Hutto & Gilbert (ICWSM 2014) from
  additional_resources/hutto_ICWSM_2014.tar.gz (tweets, movie reviews, Amazon reviews,
  NYT editorials; lines `id<TAB>mean rating -4..4<TAB>text`), stored under ground_truth/;
- `pip install --target DEST/python` gives the reference implementation to import with
  PYTHONPATH=DEST/python (with its dependency, requests, which it imports).

Idempotent: a finished install is left alone.
Usage: setup_vader.py [DEST]  (default .agenthost/vader)
"""
import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "vaderSentiment==3.3.2"
SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
ROOT = "vaderSentiment-3.3.2"
FILES = {
    f"{ROOT}/vaderSentiment/vader_lexicon.txt": "vader_lexicon.txt",
    f"{ROOT}/vaderSentiment/emoji_utf8_lexicon.txt": "emoji_utf8_lexicon.txt",
    f"{ROOT}/LICENSE.txt": "LICENSE.txt",
}
GROUND_TRUTH_ARCHIVE = f"{ROOT}/additional_resources/hutto_ICWSM_2014.tar.gz"
GROUND_TRUTH = [
    "tweets_GroundTruth.txt",
    "movieReviewSnippets_GroundTruth.txt",
    "amazonReviewSnippets_GroundTruth.txt",
    "nytEditorialSnippets_GroundTruth.txt",
]
MARKER = ".agenthost-vader"
README = """\
VADER sentiment data, installed by scripts/setup_vader.py from the PyPI package
vaderSentiment 3.3.2 (C.J. Hutto; MIT licence, see LICENSE.txt).

  vader_lexicon.txt, emoji_utf8_lexicon.txt  compiled into agenthost-support (build.rs)
  ground_truth/*_GroundTruth.txt             Hutto & Gilbert (ICWSM 2014): id, mean rating, text
  python/                                    the reference implementation (PYTHONPATH=python)

Hutto, C.J. & Gilbert, E.E. (2014). VADER: A Parsimonious Rule-based Model for Sentiment
Analysis of Social Media Text. Eighth International Conference on Weblogs and Social
Media (ICWSM-14). Ann Arbor, MI, June 2014.
"""


def main():
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else ".agenthost/vader")
    marker = dest / MARKER
    if marker.exists() and marker.read_text() == PACKAGE + "\n":
        print(f"vader: {dest} is ready")
        return
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        print(f"+ pip download {PACKAGE} (sdist)", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--no-binary", ":all:", "--disable-pip-version-check", "-d", work, PACKAGE],
            check=True,
        )
        sdist = next(Path(work).glob("*.tar.gz"))
        digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
        if digest != SDIST_SHA256:
            sys.exit(f"{sdist.name}: sha256 {digest}, expected {SDIST_SHA256}")
        with tarfile.open(sdist) as archive:
            for member, name in FILES.items():
                (dest / name).write_bytes(read_member(archive, member))
            inner = read_member(archive, GROUND_TRUTH_ARCHIVE)
        truth = dest / "ground_truth"
        truth.mkdir(exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(inner)) as archive:
            for name in GROUND_TRUTH:
                data = read_member(archive, f"hutto_ICWSM_2014/{name}")
                (truth / name).write_bytes(data)

    python = dest / "python"
    # A half-finished earlier run may have left a partial tree; pip --target won't replace it.
    shutil.rmtree(python, ignore_errors=True)
    print(f"+ pip install --target {python} {PACKAGE}", flush=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-warn-script-location", "--target", str(python), PACKAGE],
        check=True,
    )
    (dest / "README").write_text(README)
    marker.write_text(PACKAGE + "\n")
    print(f"vader: installed into {dest}")


def read_member(archive, name):
    """The bytes of one regular file in a tar archive (no extraction to disk)."""
    member = archive.getmember(name)
    if not member.isfile():
        sys.exit(f"{name}: not a regular file in the archive")
    return archive.extractfile(member).read()


if __name__ == "__main__":
    main()
