"""genseq: train and sample recurrent language models for text and music.

The data path reads straight through the modules of this package:

    corpus (sources -> documents) -> tokenization (ids) -> data (token files, batches)
    -> model (RecurrentLM) -> train (the one loop) -> checkpoint (directories)
    -> sample (batched incremental decoding) -> text

The command-line interface lives in ``genseq.commands``; nothing here prints to stdout.
"""

__version__ = "0.1.0"
