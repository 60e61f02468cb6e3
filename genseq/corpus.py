"""Corpus sources: files, directories, standard input and registry names, read as documents.

Everything downstream reads text through ``iter_chunks``, which streams a document in
line-aligned chunks of about a megabyte, so memory stays bounded whatever the corpus size.
Registry corpora are either bundled inside an installed package (no download) or fetched once
into the cache directory and verified against their SHA-256.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from importlib.util import find_spec
from pathlib import Path

from genseq.background import Background
from genseq.errors import GenseqError, UsageError
from genseq.fileio import atomic_file

CHUNK_BYTES = 1 << 20
DOWNLOAD_TIMEOUT_S = 30


# ---------------------------------------------------------------------------------------------
# The registry


@dataclass(frozen=True)
class RegistryEntry:
    """One named corpus from ``corpora/registry.toml``."""

    name: str
    kind: str  # "bundled" | "download"
    description: str
    documents: str = "file"  # "file" | "text"
    license: str = ""
    package: str | None = None
    paths: tuple[str, ...] = ()
    glob: str = "*"
    url: str | None = None
    filename: str | None = None
    sha256: str | None = None
    size: int | None = None


def load_registry() -> dict[str, RegistryEntry]:
    import tomllib

    text = resources.files("genseq.corpora").joinpath("registry.toml").read_text("utf-8")
    raw = tomllib.loads(text)
    entries = {}
    for name, spec in raw.items():
        spec = dict(spec)
        spec["paths"] = tuple(spec.get("paths", ()))
        entries[name] = RegistryEntry(name=name, **spec)
    return entries


def package_root(package: str) -> Path | None:
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def bundled_files(entry: RegistryEntry) -> list[Path]:
    root = package_root(entry.package or "")
    if root is None:
        raise GenseqError(
            f"corpus {entry.name!r} is bundled with the {entry.package!r} package, "
            "which is not installed"
        )
    files: list[Path] = []
    for rel in entry.paths:
        files.extend(sorted(p for p in (root / rel).rglob(entry.glob) if p.is_file()))
    if not files:
        raise GenseqError(f"corpus {entry.name!r}: no {entry.glob} files under {root}")
    return files


def cache_root(cache_dir: Path | str | None = None) -> Path:
    """``--cache-dir``, else ``$GENSEQ_CACHE_DIR``, else the platform's user cache directory."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    env = os.environ.get("GENSEQ_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_path

    return user_cache_path("genseq", appauthor=False)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class _FedDigest:
    """A running sha256 and how many bytes it has been given."""

    digest: hashlib._Hash = field(default_factory=hashlib.sha256)
    fed: int = 0


class SourceHashes:
    """The sha256 of each source file, taken from the blocks a first pass reads anyway.

    The hashing runs on the ``background`` thread (see genseq.background), so no file is read
    a further time only to be hashed, and on a second core the hash costs no wall time. A file
    the pass did not read to its end is hashed by reading it again.
    """

    def __init__(self, background: Background) -> None:
        self._background = background
        self._digests: dict[Path, _FedDigest] = {}

    def feeder(self, path: Path) -> Callable[[bytes], None]:
        """A function to call with each block of ``path``, in order, from its start."""
        entry = self._digests[Path(path)] = _FedDigest()

        def feed(block: bytes) -> None:
            entry.fed += len(block)
            self._background.submit(entry.digest.update, block)

        return feed

    def sha256(self, path: Path) -> str:
        self._background.wait()
        entry = self._digests.get(Path(path))
        if entry is not None and entry.fed == Path(path).stat().st_size:
            return entry.digest.hexdigest()
        return sha256_file(path)


def cached_path(entry: RegistryEntry, cache_dir: Path | str | None = None) -> Path:
    return cache_root(cache_dir) / "corpora" / entry.name / (entry.filename or "data")


def fetch(
    entry: RegistryEntry, cache_dir: Path | str | None = None, url: str | None = None
) -> Path:
    """Return the verified cached file of a download corpus, fetching it on first use.

    The download goes to a temporary file beside the target and is moved into place only once
    its SHA-256 matches, so an interrupted or tampered download never poisons the cache.
    """
    target = cached_path(entry, cache_dir)
    if target.is_file() and sha256_file(target) == entry.sha256:
        return target
    url = url or entry.url
    assert url and entry.sha256
    print(f"downloading {entry.name} from {url}", file=sys.stderr)
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:  # noqa: S310
            with atomic_file(target, "wb") as out:
                for block in iter(lambda: response.read(CHUNK_BYTES), b""):
                    digest.update(block)
                    out.write(block)
                if digest.hexdigest() != entry.sha256:
                    raise GenseqError(
                        f"download of {entry.name} from {url} has SHA-256 {digest.hexdigest()}, "
                        f"expected {entry.sha256}; nothing was saved"
                    )
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise GenseqError(
            f"could not download {entry.name} from {url} ({reason}); "
            f"download it yourself and pass the local file instead"
        ) from None
    return target


# ---------------------------------------------------------------------------------------------
# Sources and documents


@dataclass(frozen=True)
class Document:
    """One source file of a corpus (or standard input, spooled to a file).

    ``tunebook`` files (``.abc``, or a registry corpus of ABC) hold many tunes; tokenizing
    makes each tune a document of its own. ``midi`` files (``.mid``, ``.midi``) are binary:
    the MIDI levels read each as one document, whole; the text levels refuse them.
    """

    name: str
    path: Path
    tunebook: bool = False

    @property
    def midi(self) -> bool:
        return is_midi(self.path)


@dataclass
class Corpus:
    """The documents named by a tokenize command's SOURCE arguments, in a stable order."""

    documents: list[Document]
    sources: list[str]
    single_stream: bool = False  # documents = "text": split by position even if several files
    _spooled: list[Path] = field(default_factory=list)

    def close(self) -> None:
        for path in self._spooled:
            path.unlink(missing_ok=True)


def _spool_stdin(encoding_errors: str) -> Path:
    """Copy standard input to a temporary file: tokenizing reads the text twice."""
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError("SOURCE '-' reads standard input, but nothing is piped in")
    fd, name = tempfile.mkstemp(prefix="genseq-stdin-", suffix=".txt")
    stream = getattr(sys.stdin, "buffer", None)
    with os.fdopen(fd, "wb") as out:
        if stream is not None:
            for block in iter(lambda: stream.read(CHUNK_BYTES), b""):
                out.write(block)
        else:  # a text-only stdin (test runners)
            out.write(sys.stdin.read().encode("utf-8"))
    return Path(name)


def resolve_sources(
    sources: list[str],
    glob: str = "*",
    cache_dir: Path | str | None = None,
    encoding_errors: str = "strict",
) -> Corpus:
    """Turn SOURCE arguments into documents: ``-``, files, directories or registry names."""
    if not sources:
        raise UsageError("no SOURCE given: pass files, directories, corpus names or '-'")
    registry = load_registry()
    documents: list[Document] = []
    spooled: list[Path] = []
    single_stream = False
    for source in sources:
        path = Path(source).expanduser()
        if source == "-":
            tmp = _spool_stdin(encoding_errors)
            spooled.append(tmp)
            documents.append(Document("<stdin>", tmp))
        elif path.is_file():
            documents.append(Document(str(path), path, is_tunebook(path)))
        elif path.is_dir():
            found = sorted(p for p in path.rglob(glob) if p.is_file() and not _hidden(p, path))
            if not found:
                raise GenseqError(f"{path}: no files matching {glob!r} in this directory")
            documents.extend(Document(str(p), p, is_tunebook(p)) for p in found)
        elif source in registry:
            entry = registry[source]
            if entry.kind == "bundled":
                root = package_root(entry.package or "")
                for p in bundled_files(entry):
                    rel = p.relative_to(root) if root else p.name
                    documents.append(Document(f"{source}:{rel}", p, entry.documents == "abc"))
            else:
                documents.append(Document(source, fetch(entry, cache_dir)))
                single_stream = single_stream or entry.documents == "text"
        else:
            raise GenseqError(missing_source_message(source))
    return Corpus(documents, list(sources), single_stream=single_stream, _spooled=spooled)


def missing_source_message(source: str) -> str:
    """Why a SOURCE names nothing genseq can read: a special file, a symbolic link that leads
    nowhere (a loop, or a target that is gone), or no file and no corpus of that name."""
    path = Path(source).expanduser()
    if path.is_symlink() and not path.exists():
        return f"{source}: a symbolic link that leads nowhere (a loop, or a missing target)"
    if path.exists():
        return f"{source}: not a regular file or directory"
    return f"{source}: no such file, directory or corpus name (see `genseq corpus list`)"


def is_tunebook(path: Path) -> bool:
    return path.suffix.lower() == ".abc"


def is_midi(path: Path) -> bool:
    return path.suffix.lower() in (".mid", ".midi")


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def iter_chunks(
    document: Document,
    encoding_errors: str = "strict",
    chunk_bytes: int = CHUNK_BYTES,
    on_block: Callable[[bytes], None] | None = None,
) -> Iterator[str]:
    """Yield a document's text in chunks that end at line breaks (bounded memory).

    Each read is cut after its last line break while still bytes (a ``\\n`` byte is never part
    of a multi-byte character) and only the part before the cut is decoded, so every
    character is decoded once and no decoded text is copied: joining and slicing it cost
    as much as decoding it. A line longer than 16 reads is cut anyway, keeping a character
    split across the cut for the next chunk. ``on_block`` sees every block of bytes read (the
    first pass hashes the sources with it). Binary files and invalid UTF-8 are reported with
    the file name instead of a traceback.
    """
    held = b""  # bytes read and not decoded yet: the part after the last line break
    start = 0  # the file offset of held[0]
    with open(document.path, "rb") as f:
        while True:
            block = f.read(chunk_bytes)
            if start == 0 and not held and b"\x00" in block[:8192]:
                raise GenseqError(
                    f"{document.name}: looks like a binary file (it contains NUL bytes), not text"
                )
            if on_block is not None and block:
                on_block(block)
            data = held + block if held else block
            cut = data.rfind(b"\n") + 1 if block else len(data)
            if cut == 0 and block:
                if len(data) < 16 * chunk_bytes:
                    held = data  # no line break yet: keep reading (bounded by 16 reads)
                    continue
                cut = len(data)
            skip = len(codecs.BOM_UTF8) if start == 0 and data.startswith(codecs.BOM_UTF8) else 0
            try:  # final only at the end of the file: a cut inside a character keeps it whole
                text, used = codecs.utf_8_decode(
                    memoryview(data)[skip:cut], encoding_errors, not block
                )
            except UnicodeDecodeError as exc:
                bad = skip + exc.start
                raise GenseqError(
                    f"{document.name}: not valid UTF-8 (byte {data[bad]:#04x} at offset "
                    f"{start + bad}); pass --encoding-errors replace to read it anyway"
                ) from None
            start += skip + used
            held = data[skip + used :]
            if text:
                yield text
            if not block:
                return


def iter_lines(chunks: Iterator[str]) -> Iterator[list[str]]:
    """Split each chunk into lines that keep their line breaks (for batch encoding)."""
    for chunk in chunks:
        yield chunk.splitlines(keepends=True)
