"""genseq/corpus.py and `genseq corpus list | fetch`: sources, chunked reading, the registry and
verified downloads (from a real HTTP server on 127.0.0.1, never the internet)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import json
import socket
import tempfile
import threading
from importlib.util import find_spec
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from genseq import corpus as corpus_mod
from genseq.background import Background
from genseq.corpus import (
    Document,
    RegistryEntry,
    SourceHashes,
    cache_root,
    cached_path,
    fetch,
    iter_chunks,
    load_registry,
    resolve_sources,
    sha256_file,
)
from genseq.errors import GenseqError, UsageError

SHARED_CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
TINYSHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
SERVED = "Wherefore art thou?\r\nÜber naïve café — 日本語 🎵\nlast line without newline".encode()


@pytest.fixture(autouse=True)
def own_cache(tmp_path_factory, monkeypatch) -> Path:
    """Nothing in this file reads or writes the real user cache."""
    cache = tmp_path_factory.mktemp("genseq-cache")
    monkeypatch.setenv("GENSEQ_CACHE_DIR", str(cache))
    return cache


def write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def chunks_of(path: Path, **kwargs) -> list[str]:
    return list(iter_chunks(Document(path.name, path), **kwargs))


# ---------------------------------------------------------------------------------------------
# resolve_sources


def test_single_file(tmp_path):
    path = write_bytes(tmp_path / "one.txt", b"hello\n")
    corpus = resolve_sources([str(path)])
    assert [d.path for d in corpus.documents] == [path]
    assert corpus.sources == [str(path)]
    assert corpus.single_stream is False


def test_directory_is_read_recursively_with_glob_and_hidden_skipped(tmp_path):
    root = tmp_path / "texts"
    for rel in [
        "a.txt",
        "sub/b.txt",
        "sub/deeper/c.txt",
        "notes.md",
        ".hidden.txt",
        ".git/config.txt",
        "sub/.cache/d.txt",
    ]:
        write_bytes(root / rel, f"{rel}\n".encode())

    txt = resolve_sources([str(root)], glob="*.txt")
    rel = [d.path.relative_to(root).as_posix() for d in txt.documents]
    assert rel == ["a.txt", "sub/b.txt", "sub/deeper/c.txt"]
    assert all(d.name == str(d.path) for d in txt.documents)

    everything = resolve_sources([str(root)])
    rel = sorted(d.path.relative_to(root).as_posix() for d in everything.documents)
    assert rel == ["a.txt", "notes.md", "sub/b.txt", "sub/deeper/c.txt"]


def test_bundled_registry_corpus_comes_from_music21():
    spec = find_spec("music21")
    if spec is None:
        pytest.skip("music21 is not installed")
    music21_root = Path(spec.origin).parent.resolve()
    corpus = resolve_sources(["folk-abc"])
    assert len(corpus.documents) > 1000
    for doc in corpus.documents:
        assert doc.path.is_file()
        assert doc.path.resolve().is_relative_to(music21_root / "corpus")
        assert doc.path.suffix == ".abc"
        assert doc.name.startswith("folk-abc:corpus/")
    assert len({d.path for d in corpus.documents}) == len(corpus.documents)
    assert corpus.single_stream is False


def test_unknown_name_points_to_corpus_list(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GenseqError, match="genseq corpus list") as info:
        resolve_sources(["no-such-corpus-or-file"])
    assert "no-such-corpus-or-file" in str(info.value)


@pytest.mark.parametrize("contents", [[], ["notes.md", ".hidden.txt"]])
def test_directory_without_matching_files_errors(tmp_path, contents):
    root = tmp_path / "empty"
    root.mkdir()
    for name in contents:
        write_bytes(root / name, b"x\n")
    with pytest.raises(GenseqError, match=r"no files matching '\*\.txt'"):
        resolve_sources([str(root)], glob="*.txt")


def test_no_sources_is_a_usage_error():
    with pytest.raises(UsageError):
        resolve_sources([])


# ---------------------------------------------------------------------------------------------
# iter_chunks


def test_chunks_round_trip_crlf_and_multibyte_across_boundaries(tmp_path):
    text = "abcdef€\r\nxy\r\nz🎵😀\r\n日本語テキスト\nno final newline ü"
    data = text.encode("utf-8")
    with pytest.raises(UnicodeDecodeError):  # the first 7-byte read ends inside the '€'
        data[:7].decode("utf-8")
    path = write_bytes(tmp_path / "mixed.txt", data)

    chunks = chunks_of(path, chunk_bytes=7)
    assert "".join(chunks) == text
    assert len(chunks) > 1
    assert all(c.endswith("\n") for c in chunks[:-1])
    assert chunks[-1] == "no final newline ü"
    assert "\r\n" in chunks[0]  # CRLF is kept, not translated


def test_chunks_default_size_single_chunk(tmp_path):
    text = "line 1\r\nline 2\n"
    path = write_bytes(tmp_path / "small.txt", text.encode())
    assert chunks_of(path) == [text]


def test_empty_file_yields_nothing(tmp_path):
    assert chunks_of(write_bytes(tmp_path / "empty.txt", b"")) == []


def test_utf8_bom_is_dropped(tmp_path):
    path = write_bytes(tmp_path / "bom.txt", b"\xef\xbb\xbfhi\n")
    assert "".join(chunks_of(path, chunk_bytes=2)) == "hi\n"


def test_binary_file_is_reported(tmp_path):
    path = write_bytes(tmp_path / "image.bin", b"PK\x03\x04\x00\x00abc\n")
    with pytest.raises(GenseqError, match="binary") as info:
        chunks_of(path)
    assert "image.bin" in str(info.value)


def test_invalid_utf8_is_reported_and_can_be_replaced(tmp_path):
    path = write_bytes(tmp_path / "latin1.txt", "hello\ncafé\n".encode("latin-1"))
    with pytest.raises(GenseqError, match="--encoding-errors") as info:
        chunks_of(path)
    assert "latin1.txt" in str(info.value)
    assert "0xe9" in str(info.value)

    text = "".join(chunks_of(path, encoding_errors="replace"))
    assert text == "hello\ncaf\ufffd\n"


def test_truncated_multibyte_at_end_of_file_is_reported(tmp_path):
    path = write_bytes(tmp_path / "truncated.txt", b"abc\n\xe2\x82")
    with pytest.raises(GenseqError, match="byte 0xe2 at offset 4"):
        chunks_of(path)


def test_bad_byte_across_a_read_boundary_names_the_right_offset(tmp_path):
    path = write_bytes(tmp_path / "straddle.txt", b"abcdef\xe2\x82\xffxyz\n")
    with pytest.raises(GenseqError, match="byte 0xe2 at offset 6"):
        chunks_of(path, chunk_bytes=7)


def test_bom_and_bad_byte_offsets_count_the_bom(tmp_path):
    path = write_bytes(tmp_path / "bom-bad.txt", b"\xef\xbb\xbfab\n\xffz\n")
    with pytest.raises(GenseqError, match="byte 0xff at offset 6"):
        chunks_of(path, chunk_bytes=4)
    path = write_bytes(tmp_path / "bom-bad-first.txt", b"\xef\xbb\xbfa\xff\n")
    with pytest.raises(GenseqError, match="byte 0xff at offset 4"):  # in the first read
        chunks_of(path)


def test_on_block_sees_every_byte_in_order(tmp_path):
    data = "ünïcode line\n".encode() * 50 + b"no newline at the end"
    path = write_bytes(tmp_path / "blocks.txt", data)
    blocks: list[bytes] = []
    chunks = list(iter_chunks(Document("blocks.txt", path), chunk_bytes=64, on_block=blocks.append))
    assert b"".join(blocks) == data
    assert "".join(chunks) == data.decode()


def test_source_hashes_rehash_a_file_not_read_to_its_end(tmp_path):
    """A hash is only taken from the blocks fed when they cover the whole file."""
    path = write_bytes(tmp_path / "doc.txt", b"0123456789" * 1000)
    whole = hashlib.sha256(path.read_bytes()).hexdigest()
    background = Background()
    hashes = SourceHashes(background)
    try:
        feed = hashes.feeder(path)
        feed(b"not the file's bytes")  # a short feed: wrong bytes, and too few of them
        assert hashes.sha256(path) == whole
        unread = write_bytes(tmp_path / "unread.txt", b"xyz")
        assert hashes.sha256(unread) == hashlib.sha256(b"xyz").hexdigest()
        other = write_bytes(tmp_path / "other.txt", b"abc\n")
        feed = hashes.feeder(other)
        for block in (b"ab", b"c\n"):
            feed(block)
        assert hashes.sha256(other) == hashlib.sha256(b"abc\n").hexdigest()
    finally:
        background.close()


def test_background_runs_jobs_in_order_and_raises_their_errors():
    background = Background(max_waiting=2)
    done: list[int] = []
    try:
        for i in range(20):
            background.submit(done.append, i)
        background.wait()
        assert done == list(range(20))

        def fail():
            raise OSError(28, "No space left on device")

        background.submit(fail)
        with pytest.raises(OSError, match="No space left"):
            background.wait()
    finally:
        background.close()


text_with_lines = st.text(
    alphabet=st.one_of(
        st.sampled_from("\n\r"),
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufeff"),
    ),
    max_size=300,
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=text_with_lines, chunk_bytes=st.integers(min_value=1, max_value=40))
def test_chunks_round_trip_property(text, chunk_bytes):
    with tempfile.TemporaryDirectory() as tmp:
        path = write_bytes(Path(tmp) / "doc.txt", text.encode("utf-8"))
        chunks = chunks_of(path, chunk_bytes=chunk_bytes)
    assert "".join(chunks) == text
    assert all(chunks)
    for chunk in chunks[:-1]:
        # a chunk ends at a line break, unless a line ran past the 16-read bound (in bytes,
        # less the up to 3 bytes of a character split by the cut and kept for the next chunk)
        size = len(chunk.encode("utf-8"))
        assert chunk.endswith("\n") or ("\n" not in chunk and size >= 16 * chunk_bytes - 3)


# ---------------------------------------------------------------------------------------------
# Downloads from a local HTTP server


class Server:
    def __init__(self, root: Path, httpd, requests: list[str]) -> None:
        self.root = root
        self.httpd = httpd
        self.requests = requests

    def url(self, name: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/{name}"


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "input.txt").write_bytes(SERVED)
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            requests.append(self.path)
            super().do_GET()

        def log_message(self, format, *args):  # noqa: A002
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(root, httpd, requests)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def download_entry(url: str, sha256: str | None = None) -> RegistryEntry:
    return RegistryEntry(
        name="localtext",
        kind="download",
        description="served from 127.0.0.1",
        documents="text",
        url=url,
        sha256=sha256 or hashlib.sha256(SERVED).hexdigest(),
        filename="input.txt",
        size=len(SERVED),
    )


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_fetch_downloads_verifies_and_caches(server, tmp_path):
    cache = tmp_path / "explicit-cache"
    entry = download_entry(server.url("input.txt"))
    path = fetch(entry, cache)
    assert path == cache / "corpora" / "localtext" / "input.txt"
    assert path.read_bytes() == SERVED
    assert server.requests == ["/input.txt"]
    assert [p.name for p in path.parent.iterdir()] == ["input.txt"]

    again = fetch(entry, cache)
    assert again == path
    assert server.requests == ["/input.txt"]  # served from the cache, no second request


def test_fetch_replaces_a_corrupted_cached_file(server, tmp_path):
    entry = download_entry(server.url("input.txt"))
    target = write_bytes(cached_path(entry, tmp_path), b"truncated")
    assert fetch(entry, tmp_path) == target
    assert target.read_bytes() == SERVED
    assert len(server.requests) == 1


def test_fetch_with_wrong_sha256_saves_nothing(server, tmp_path):
    entry = download_entry(server.url("input.txt"), sha256="0" * 64)
    with pytest.raises(GenseqError, match="SHA-256") as info:
        fetch(entry, tmp_path)
    assert "0" * 64 in str(info.value)
    target = cached_path(entry, tmp_path)
    assert not target.exists()
    leftovers = list(target.parent.iterdir()) if target.parent.exists() else []
    assert leftovers == []
    assert server.requests == ["/input.txt"]


def test_fetch_from_closed_port_says_to_pass_a_local_file(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/input.txt"
    entry = download_entry(url)
    with pytest.raises(GenseqError, match="pass the local file") as info:
        fetch(entry, tmp_path)
    assert url in str(info.value)
    assert not cached_path(entry, tmp_path).exists()


def test_fetch_missing_file_on_server_is_a_genseq_error(server, tmp_path):
    entry = download_entry(server.url("gone.txt"))
    with pytest.raises(GenseqError, match="local file"):
        fetch(entry, tmp_path)
    assert not cached_path(entry, tmp_path).exists()


def test_cache_root_precedence(tmp_path, monkeypatch, own_cache):
    from platformdirs import user_cache_path

    explicit = tmp_path / "explicit"
    assert cache_root(explicit) == explicit
    assert cache_root(str(explicit)) == explicit
    assert cache_root() == own_cache  # $GENSEQ_CACHE_DIR (set by the autouse fixture)
    monkeypatch.setenv("GENSEQ_CACHE_DIR", str(tmp_path / "from-env"))
    assert cache_root() == tmp_path / "from-env"
    assert cache_root(explicit) == explicit
    monkeypatch.delenv("GENSEQ_CACHE_DIR")
    default = user_cache_path("genseq", appauthor=False)
    assert cache_root() == default
    assert cache_root(explicit) == explicit


def test_fetch_without_cache_dir_uses_env(server, own_cache):
    path = fetch(download_entry(server.url("input.txt")))
    assert path == own_cache / "corpora" / "localtext" / "input.txt"
    assert path.read_bytes() == SERVED


def patch_tinyshakespeare(monkeypatch, server) -> RegistryEntry:
    registry = load_registry()
    local = dataclasses.replace(
        registry["tinyshakespeare"],
        url=server.url("input.txt"),
        sha256=hashlib.sha256(SERVED).hexdigest(),
        size=len(SERVED),
    )
    patched = {**registry, "tinyshakespeare": local}
    monkeypatch.setattr(corpus_mod, "load_registry", lambda: patched)
    return local


def test_download_corpus_as_source(server, monkeypatch, tmp_path):
    patch_tinyshakespeare(monkeypatch, server)
    corpus = resolve_sources(["tinyshakespeare"], cache_dir=tmp_path)
    assert [d.name for d in corpus.documents] == ["tinyshakespeare"]
    assert corpus.documents[0].path == tmp_path / "corpora" / "tinyshakespeare" / "input.txt"
    assert corpus.documents[0].path.read_bytes() == SERVED
    assert corpus.single_stream is True  # documents = "text"


# ---------------------------------------------------------------------------------------------
# The registry


def test_registry_entries():
    registry = load_registry()
    folk = registry["folk-abc"]
    assert folk.kind == "bundled"
    assert folk.package == "music21"
    assert folk.paths and folk.glob == "*.abc"
    shakespeare = registry["tinyshakespeare"]
    assert shakespeare.kind == "download"
    assert shakespeare.sha256 == TINYSHAKESPEARE_SHA256
    assert shakespeare.filename == "input.txt"
    assert shakespeare.url and shakespeare.url.startswith("https://")
    assert shakespeare.documents == "text"
    for name, entry in registry.items():
        assert entry.name == name
        assert entry.kind in {"bundled", "download"}
        assert entry.documents in {"file", "text", "abc"}
        if entry.kind == "download":
            assert entry.url and entry.filename
            assert entry.sha256 and len(entry.sha256) == 64
            int(entry.sha256, 16)
        else:
            assert entry.package and entry.paths


def test_shared_tinyshakespeare_matches_registry():
    path = SHARED_CORPORA / "tinyshakespeare" / "input.txt"
    if not path.is_file():
        pytest.skip(f"no shared copy of tinyshakespeare at {path}")
    entry = load_registry()["tinyshakespeare"]
    assert sha256_file(path) == entry.sha256
    assert path.stat().st_size == entry.size


# ---------------------------------------------------------------------------------------------
# The CLI


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def invoke(runner: CliRunner, *args: str):
    from genseq.commands.main import app

    return runner.invoke(app, [str(a) for a in args])


def test_corpus_list_json(runner):
    result = invoke(runner, "corpus", "list", "--json")
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(isinstance(row, dict) for row in rows)
    names = [row["name"] for row in rows]
    assert {"folk-abc", "tinyshakespeare"} <= set(names)
    assert names == list(load_registry())
    by_name = {row["name"]: row for row in rows}
    assert by_name["folk-abc"]["status"] == "bundled"
    assert by_name["tinyshakespeare"]["status"] == "download"  # the cache here is empty
    assert by_name["tinyshakespeare"]["sha256"] == TINYSHAKESPEARE_SHA256


def test_corpus_list_table_is_the_result_on_stdout(runner):
    result = invoke(runner, "corpus", "list")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert "folk-abc" in result.stdout
    assert "tinyshakespeare" in result.stdout


def test_corpus_fetch_prints_cached_path(runner, server, monkeypatch, tmp_path):
    patch_tinyshakespeare(monkeypatch, server)
    cache = tmp_path / "cli-cache"
    result = invoke(runner, "corpus", "fetch", "tinyshakespeare", "--cache-dir", cache)
    assert result.exit_code == 0, result.stderr
    expected = cache / "corpora" / "tinyshakespeare" / "input.txt"
    assert result.stdout == f"{expected}\n"
    assert expected.read_bytes() == SERVED
    assert "downloading tinyshakespeare" in result.stderr

    listed = invoke(runner, "corpus", "list", "--json", "--cache-dir", cache)
    row = next(
        json.loads(line)
        for line in listed.stdout.splitlines()
        if json.loads(line)["name"] == "tinyshakespeare"
    )
    assert row["status"] == "cached"
    assert row["detail"] == str(expected)


def test_corpus_fetch_unknown_name(runner):
    result = invoke(runner, "corpus", "fetch", "nosuchname")
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    assert "nosuchname" in lines[0]
    assert "Traceback" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
