"""The built wheel matches the source tree (`commands/` ships as `genseq.commands`, `corpora/` as
`genseq.corpora`, the shipped models in `checkpoints/` as `genseq.checkpoints`, without the runs
users train beside them), heavy libraries stay out of CLI start-up, and the console script lists
the commands."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BUILD_TIMEOUT_S = 300
# Never copied into the build tree: local state that setuptools must not see (or that is big).
NOT_SOURCE = shutil.ignore_patterns(
    ".venv",
    ".git",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "checkpoints",  # copied apart: the shipped models only, and a user's run planted beside them
    "data",
    "runs",
    ".whl",
    ".gl",
)


SHIPPED = tomllib.loads((REPO / "checkpoints" / "models.toml").read_text("utf-8"))
# What genseq.checkpoints holds in the wheel: the registry and each registered model's files.
SHIPPED_FILES = {"__init__.py", "models.toml"} | {
    f"{name}/{filename}" for name, spec in SHIPPED.items() for filename in spec["sha256"]
}
# Runs a user trained into checkpoints/ before building: never package data. One sits inside a
# shipped model's directory too, and a stray file beside the registry.
USER_RUN = (
    "folk-abc/best/config.json",
    "folk-abc/best/model.safetensors",
    "folk-abc/best/tokenizer.json",
    "folk-abc/last/train_state.pt",
    "folk-abc/log.jsonl",
    "folk-tunes/last/model.safetensors",
    "folk-tunes/train_state.pt",
    "notes.toml",
)


def _copy_checkpoints(source: Path) -> None:
    """The repository's shipped models (never its local runs, which may be big) and a planted
    user run."""
    target = source / "checkpoints"
    for rel in [*SHIPPED_FILES, "README.md"]:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / "checkpoints" / rel, target / rel)
    for rel in USER_RUN:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).write_text("{}\n", encoding="utf-8")


def _build(source: Path, outdir: Path, isolated: bool) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(outdir)]
    if not isolated:
        cmd.append("--no-isolation")
    return subprocess.run(
        cmd, cwd=source, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build the sdist and the wheel from a copy of the source tree, so the build's `build/` and
    `*.egg-info` never land in the working tree. Isolated first; without the index, from the
    venv."""
    source = tmp_path_factory.mktemp("src") / "genseq"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    _copy_checkpoints(source)
    outdir = tmp_path_factory.mktemp("wheel")
    result = _build(source, outdir, isolated=True)
    if result.returncode != 0:
        shutil.rmtree(source / "build", ignore_errors=True)
        fallback = _build(source, outdir, isolated=False)
        assert fallback.returncode == 0, (
            f"isolated build failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}\n"
            f"--no-isolation build failed:\n{fallback.stdout[-3000:]}{fallback.stderr[-3000:]}"
        )
    wheels = list(outdir.glob("genseq-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def sdist(wheel) -> Path:
    sdists = list(wheel.parent.glob("genseq-*.tar.gz"))
    assert len(sdists) == 1, sdists
    return sdists[0]


@pytest.fixture(scope="module")
def names(wheel) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def _dist_info_file(names: set[str], filename: str) -> str:
    found = [n for n in names if re.fullmatch(rf"genseq-[^/]+\.dist-info/{filename}", n)]
    assert len(found) == 1, (filename, sorted(names))
    return found[0]


def _source_files(pattern: str) -> list[Path]:
    return sorted(p for p in REPO.glob(pattern) if "__pycache__" not in p.parts)


def test_wheel_has_every_genseq_package_and_module(names):
    inits = _source_files("genseq/**/__init__.py")
    assert REPO / "genseq" / "__init__.py" in inits
    missing = [p.relative_to(REPO).as_posix() for p in inits]
    missing = [n for n in missing if n not in names]
    assert missing == [], f"packages missing from the wheel (list them in pyproject): {missing}"
    modules = [p.relative_to(REPO).as_posix() for p in _source_files("genseq/**/*.py")]
    assert [m for m in modules if m not in names] == []


def test_wheel_ships_commands_as_genseq_commands(names):
    modules = _source_files("commands/*.py")
    assert {p.name for p in modules} >= {"__init__.py", "main.py", "corpus.py", "_common.py"}
    missing = [f"genseq/commands/{p.name}" for p in modules]
    missing = [n for n in missing if n not in names]
    assert missing == []


def test_wheel_ships_the_corpus_registry(names):
    assert "genseq/corpora/__init__.py" in names
    assert "genseq/corpora/registry.toml" in names
    for toml in _source_files("corpora/*.toml"):
        assert f"genseq/corpora/{toml.name}" in names


def test_wheel_ships_the_registered_models_and_no_user_run(names):
    shipped = {n.removeprefix("genseq/checkpoints/") for n in names if "checkpoints/" in n}
    assert "folk-tunes/model.safetensors" in shipped
    assert shipped == SHIPPED_FILES, "pyproject's package-data and models.toml disagree"


def test_sdist_ships_the_registered_models_and_no_user_run(sdist):
    with tarfile.open(sdist) as tf:
        members = [m.name.split("/", 1)[1] for m in tf.getmembers() if m.isfile()]
    shipped = {m.removeprefix("checkpoints/") for m in members if m.startswith("checkpoints/")}
    assert shipped == SHIPPED_FILES


def test_wheel_has_no_stray_top_level_packages(names):
    top = {n.split("/", 1)[0] for n in names}
    dist_info = {t for t in top if t.endswith(".dist-info")}
    assert len(dist_info) == 1
    assert top - dist_info == {"genseq"}, sorted(top)
    for stray in ("commands/", "corpora/", "checkpoints/", "tests/", "benchmarks/"):
        assert not any(n.startswith(stray) for n in names), stray
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_wheel_top_level_and_entry_point(wheel, names):
    with zipfile.ZipFile(wheel) as zf:
        top_level = zf.read(_dist_info_file(names, "top_level.txt")).decode().split()
        entry_points = zf.read(_dist_info_file(names, "entry_points.txt")).decode()
    assert top_level == ["genseq"]
    parser = configparser.ConfigParser()
    parser.read_string(entry_points)
    assert dict(parser["console_scripts"]) == {"genseq": "genseq.commands.main:main"}


def test_wheel_is_importable_on_its_own(wheel, tmp_path):
    """Unpacked alone (no repository on sys.path), the CLI module and the registry load."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    code = (
        "import genseq.commands.main as m, genseq.corpus as c; "
        "print(m.__file__); print(sorted(c.load_registry()))"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    module_file, registry = result.stdout.splitlines()
    assert Path(module_file).is_relative_to(site)
    assert "tinyshakespeare" in registry and "folk-abc" in registry


def test_wheel_alone_samples_the_shipped_model_by_name(wheel, tmp_path):
    """Unpacked alone and run from an unrelated directory, `genseq info folk-tunes` and
    `genseq sample folk-tunes` find the weights inside the package, their checksums good."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}

    def genseq(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "genseq", *args],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    info = genseq("info", "folk-tunes", "--json")
    assert info.returncode == 0, info.stderr
    assert Path(json.loads(info.stdout)["checkpoint"]) == site / "genseq/checkpoints/folk-tunes"
    sample = genseq("sample", "folk-tunes", "--seed", "1")
    assert sample.returncode == 0, sample.stderr
    assert sample.stdout.startswith("X:1\n")
    listed = json.loads(genseq("models", "list", "--json").stdout)
    assert listed["status"] == "ok" and listed["path"].startswith(str(site))


def test_cli_import_keeps_heavy_libraries_out(tmp_path):
    code = (
        "import genseq.commands.main, sys; "
        "heavy = [m for m in ('torch', 'music21') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _help_commands(help_text: str) -> list[str]:
    lines = help_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Commands:")
    commands = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        if re.match(r"^ {2}\S", line):
            commands.append(line.split()[0])
    return commands


def test_console_script_lists_exactly_the_commands(tmp_path):
    from genseq.commands.main import COMMANDS

    script = Path(sys.executable).parent / "genseq"
    assert script.is_file(), f"no console script at {script}"
    result = subprocess.run(
        [str(script), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    listed = _help_commands(result.stdout)
    expected = [*COMMANDS, "corpus", "models", "music"]
    assert sorted(listed) == sorted(expected)
    assert set(expected) == {
        "tokenize",
        "train",
        "sample",
        "eval",
        "info",
        "corpus",
        "models",
        "music",
    }
