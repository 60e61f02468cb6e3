"""The shipped models by name: the registry matches the files in the repository (and says how
to refresh it when not), a name resolves from any directory, a path that exists wins over a
name, an unknown name lists the shipped ones, a damaged install says so in one line, and
`genseq models list` shows the registry."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest
from testkit import one_error_line, run

from genseq import shipped
from genseq.checkpoint import resolve_checkpoint
from genseq.corpus import sha256_file
from genseq.errors import GenseqError

REPO = Path(__file__).resolve().parents[1]
REGISTRY = REPO / "checkpoints" / "models.toml"
TUNE = "X:1\nT:scale\nM:4/4\nL:1/8\nK:D\n|: DEFG ABcd | d2A2 F2D2 :|\n"


def _registry() -> dict:
    return tomllib.loads(REGISTRY.read_text("utf-8"))


# ---------------------------------------------------------------------------------------------
# The registry against the repository's files


def test_registry_checksums_and_sizes_match_the_files_in_the_repository():
    """A shipped model replaced without refreshing the registry fails here, saying how to fix."""
    fix = f"after replacing a shipped model, run `{shipped.REFRESH}` and commit models.toml"
    for name, spec in _registry().items():
        folder = REGISTRY.parent / name
        for filename, expected in spec["sha256"].items():
            assert (folder / filename).is_file(), f"{name}/{filename} is missing; {fix}"
            assert sha256_file(folder / filename) == expected, f"{name}/{filename}: {fix}"
        size = sum((folder / f).stat().st_size for f in spec["sha256"])
        assert spec["size"] == size, f"{name}: size {spec['size']} is not {size}; {fix}"
        config = json.loads((folder / "config.json").read_text("utf-8"))
        assert spec["level"] == config["tokenizer"]["level"], name


def test_registry_files_are_the_package_data_pyproject_ships():
    """pyproject names each shipped file (never a directory, which would sweep in user runs);
    a model added to the registry but not to pyproject would be missing from the wheel."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))
    package_data = pyproject["tool"]["setuptools"]["package-data"]["genseq.checkpoints"]
    registered = {f"{name}/{f}" for name, spec in _registry().items() for f in spec["sha256"]}
    assert set(package_data) == {"models.toml", *registered}
    assert "folk-tunes/model.safetensors" in registered


def test_refresh_rewrites_checksums_and_size_and_keeps_the_rest(tmp_path, capsys):
    root = _copy_shipped(tmp_path)
    before = (root / "models.toml").read_text("utf-8")
    tokenizer = root / "folk-tunes" / "tokenizer.json"
    tokenizer.write_text(tokenizer.read_text("utf-8") + "\n", encoding="utf-8")
    assert shipped.main([str(root / "models.toml")]) == 0
    assert capsys.readouterr().out.split() == [
        "folk-tunes:",
        "size",
        str(_registry()["folk-tunes"]["size"] + 1),
        "folk-tunes/tokenizer.json:",
        "sha256",
        sha256_file(tokenizer),
    ]
    after = (root / "models.toml").read_text("utf-8")
    changed = [a for a, b in zip(after.splitlines(), before.splitlines(), strict=True) if a != b]
    assert len(changed) == 2  # the size and the one checksum; comments and the rest kept
    model = _shipped_from(root)["folk-tunes"]
    assert model.problem() is None
    assert shipped.main([str(root / "models.toml")]) == 0
    assert "already matches" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# Name resolution


def test_a_shipped_name_resolves_to_the_installed_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = resolve_checkpoint("folk-tunes")
    assert path.is_absolute() and path == shipped.models_root() / "folk-tunes"
    assert (path / "model.safetensors").is_file()


def test_a_path_that_exists_wins_over_a_shipped_name(tmp_path, monkeypatch, tiny_run, cli):
    shutil.copytree(tiny_run, tmp_path / "folk-tunes")
    monkeypatch.chdir(tmp_path)
    assert resolve_checkpoint("folk-tunes") == Path("folk-tunes")
    result = cli("info", "folk-tunes", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["tokenizer"]["level"] == "char"  # the run, not the tunes


def test_an_unknown_name_lists_the_shipped_names(tmp_path, monkeypatch, cli):
    monkeypatch.chdir(tmp_path)
    for command in (["info"], ["sample"], ["eval"]):
        args = [*command, "folk-tune"] + (["-"] if command == ["eval"] else [])
        result = cli(*args)
        assert result.exit_code == 1
        assert one_error_line(result.stderr) == (
            "error: folk-tune: no such checkpoint, and no shipped model of that name "
            "(shipped: folk-tunes; see `genseq models list`)"
        )
        assert result.stdout == ""


def test_a_missing_path_is_a_path_not_a_name(tmp_path, monkeypatch, cli):
    monkeypatch.chdir(tmp_path)
    for arg in ("runs/folk-tunes", "./folk-tunes"):
        result = cli("info", arg)
        assert result.exit_code == 1
        assert one_error_line(result.stderr) == f"error: {Path(arg)}: no such checkpoint"


# ---------------------------------------------------------------------------------------------
# A damaged install


def _copy_shipped(tmp_path: Path) -> Path:
    """The installed package data, copied where a test may damage it."""
    root = tmp_path / "checkpoints"
    shutil.copytree(shipped.models_root(), root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _shipped_from(root: Path) -> dict[str, shipped.ShippedModel]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(shipped, "models_root", lambda: root)
        return shipped.shipped_models()


@pytest.fixture
def damaged(tmp_path, monkeypatch) -> Path:
    """A copy of the shipped models with one byte of folk-tunes' weights changed (a tensor
    byte: the header still reads, so only the checksum tells), looked up instead of the
    installed ones."""
    root = _copy_shipped(tmp_path)
    weights = root / "folk-tunes" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    monkeypatch.setattr(shipped, "models_root", lambda: root)
    monkeypatch.chdir(tmp_path)
    return root


def test_damaged_weights_are_refused_in_one_line(damaged, cli):
    for args in (["sample", "folk-tunes"], ["info", "folk-tunes"], ["eval", "folk-tunes", "-"]):
        result = cli(*args, input=TUNE)
        assert result.exit_code == 1, result.stderr
        line = one_error_line(result.stderr)
        assert line.startswith(
            "error: shipped model folk-tunes is damaged: model.safetensors has sha256 "
        )
        assert str(damaged / "folk-tunes") in line and shipped.REFRESH in line
        assert result.stdout == ""


def test_a_missing_shipped_file_is_named(damaged, cli):
    (damaged / "folk-tunes" / "tokenizer.json").unlink()
    (damaged / "folk-tunes" / "model.safetensors").write_bytes(
        (REGISTRY.parent / "folk-tunes" / "model.safetensors").read_bytes()
    )
    result = cli("info", "folk-tunes")
    assert result.exit_code == 1
    assert "folk-tunes is damaged: tokenizer.json is missing" in one_error_line(result.stderr)
    listed = json.loads(cli("models", "list", "--json").stdout)
    assert listed["status"] == "damaged: tokenizer.json is missing"


def test_a_damaged_registry_is_one_error(tmp_path, monkeypatch):
    root = _copy_shipped(tmp_path)
    (root / "models.toml").write_text("[folk-tunes]\nlevel = 'abc'\n", encoding="utf-8")
    monkeypatch.setattr(shipped, "models_root", lambda: root)
    with pytest.raises(GenseqError, match="damaged registry of shipped models"):
        resolve_checkpoint("folk-tunes")


def test_an_install_without_the_models_package_says_to_reinstall(monkeypatch):
    """An editable install made before genseq.checkpoints existed cannot import it."""

    def missing(package):
        raise ModuleNotFoundError(package)

    monkeypatch.setattr(shipped.resources, "files", missing)
    with pytest.raises(GenseqError, match=r"reinstall genseq \(in a clone: pip install -e \.\)"):
        resolve_checkpoint("folk-tunes")


# ---------------------------------------------------------------------------------------------
# genseq models list


def test_models_list_json_is_the_registry(cli):
    result = cli("models", "list", "--json")
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    registry = _registry()
    assert [row["name"] for row in rows] == list(registry)
    for row in rows:
        spec = registry[row["name"]]
        assert row["status"] == "ok"
        assert {k: row[k] for k in spec} == spec
        assert Path(row["path"]) == shipped.models_root() / row["name"]


def test_models_list_table(cli):
    result = cli("models", "list")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()  # not a terminal: tab-separated rows, header first
    assert lines[0] == "name\tlevel\tsize\tstatus\tdescription"
    row = next(line for line in lines if line.startswith("folk-tunes\t"))
    assert row.split("\t")[:4] == ["folk-tunes", "abc", "1.5 MB", "ok"]


# ---------------------------------------------------------------------------------------------
# From another directory, through the installed console script


@pytest.mark.slow
def test_sample_info_and_eval_by_name_from_another_directory(tmp_path):
    """What a user does after `pip install`: the installed script, run far from the clone."""
    (tmp_path / "tune.abc").write_text(TUNE, encoding="utf-8")
    info = run("info", "folk-tunes", "--json", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    path = Path(json.loads(info.stdout)["checkpoint"])
    assert path.parts[-2:] == ("checkpoints", "folk-tunes") and not path.is_relative_to(tmp_path)
    sample = run(
        "sample", "folk-tunes", "--seed", "2", "--meter", "6/8", "--key", "D", cwd=tmp_path
    )
    assert sample.returncode == 0, sample.stderr
    tune = sample.stdout.decode()
    assert tune.startswith("X:1\n") and "M:6/8\n" in tune and "K:D\n" in tune
    evaluated = run("eval", "folk-tunes", "tune.abc", "--json", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    row = json.loads(evaluated.stdout)
    assert row["tunes"] == 1 and Path(row["checkpoint"]) == path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tune.abc"]  # nothing written here
