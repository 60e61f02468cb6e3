"""A small GloVe-format vectors file for the word-level benchmark with --embeddings, offline.

    pip install gensim   # not a genseq dependency: this script only
    python benchmarks/make_word_vectors.py --shared ../shared -o wt2-w2v.100d.txt [--dim 100]
    python benchmarks/wikitext_word.py --budget 260 -- --embeddings wt2-w2v.100d.txt

No pretrained vectors can be fetched on these machines (gensim's downloader and the GloVe site
are network), so this trains word2vec (gensim's skip-gram) on the training text of the
WikiText-2 stand-in split only (``wikitext-2/valid.txt``, as benchmarks/wikitext_word.py
splits it): never on the validation or test text, which would leak them into the model. The
text is cut into genseq's own word tokens (the word tokenizer's pre-tokenizer), so every
vector's word is spelled as the vocabulary spells it. The file is GloVe text (no header).

What it measures is therefore the *initialisation* path (loaded rows, projection, freezing), not
the value of outside knowledge: the vectors know nothing the training text does not. A fair
test of that needs real pretrained vectors (glove.6B.100d.txt, 400,000 words) where a
machine can read them.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def sentences(path: Path) -> list[list[str]]:
    """The file's lines as lists of genseq word tokens (line breaks and blank lines dropped)."""
    from genseq.tokenization.word import _empty_hf

    split = _empty_hf(lowercase=False).pre_tokenizer.pre_tokenize_str
    lines = path.read_text(encoding="utf-8").splitlines()
    return [words for line in lines if (words := [w for w, _ in split(line) if w != "\n"])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    from gensim.models import Word2Vec

    train = args.shared / "corpora" / "wikitext-2" / "valid.txt"
    text = sentences(train)
    model = Word2Vec(
        text,
        vector_size=args.dim,
        window=5,
        min_count=1,
        sg=1,
        epochs=args.epochs,
        seed=args.seed,
        workers=2,
    )
    model.wv.save_word2vec_format(str(args.output), binary=False, write_header=False)
    print(f"{len(model.wv):,} words x {args.dim} from {train} -> {args.output}")


if __name__ == "__main__":
    main()
