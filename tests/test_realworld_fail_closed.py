"""No real configuration is served without the protection it asks for.

Every configuration of `../shared/realworld/` (84 from public repositories: single files and
flexible-config trees rendered as `FC_RUNS.tsv` says) goes through the build `run` and `check`
use. Either it is refused, and then each protecting section tidegate does not implement has its
own located error, or it is accepted, and then it asks for no such protection.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support import SHARED
from tidegate.config.loader import load_config
from tidegate.config.namespaces import protects, root_setting_protects
from tidegate.errors import ConfigError, ConfigErrors
from tidegate.lint.failclosed import find_unprotected
from tidegate.reload.builder import build_candidate

REALWORLD = SHARED / "realworld"


def _single_files() -> list[Path]:
    folder = REALWORLD / "configs"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def _fc_rows() -> list[dict[str, str]]:
    table = REALWORLD / "FC_RUNS.tsv"
    if not table.exists():
        return []
    lines = table.read_text().splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, (line.split("\t") + [""] * len(header))[:len(header)],
                     strict=True)) for line in lines[1:] if line.strip()]


def _render_env(row: dict[str, str], tmp: Path) -> tuple[str, dict[str, str]]:
    """A private copy of the tree and the FC_* environment KrakenD would be started with."""
    tree = tmp / "tree"
    shutil.copytree(REALWORLD / row["dir"], tree)
    env = {"FC_ENABLE": "1"}
    for var in ("FC_SETTINGS", "FC_PARTIALS", "FC_TEMPLATES"):
        value = row.get(var, "")
        if not value:
            continue
        parts = value.split("+")
        if len(parts) > 1:  # several settings folders merged into the first, as the runner does
            for extra in parts[1:]:
                shutil.copytree(tree / extra, tree / parts[0], dirs_exist_ok=True)
        env[var] = str(tree / parts[0])
    for item in row.get("extra_env", "").split():
        if item.startswith("@copy="):
            src, dst = item[len("@copy="):].split(":")
            shutil.copy(tree / src, tree / dst)
        else:
            key, _, value = item.partition("=")
            env[key] = value
    return str(tree / row["template"]), env


def _assert_never_unprotected(path: str, env: dict[str, str]) -> None:
    try:
        data = load_config(path, env).data
    except ConfigError:
        return  # refused before anything could be served
    expected = {u.path for u in find_unprotected(data)}
    try:
        candidate = build_candidate(path, env, port=None, debug=False)
    except ConfigErrors as exc:
        refused = {e.path for e in exc.errors
                   if "requests would be served without it" in e.message}
        assert refused == expected, "\n".join(map(str, exc.errors))
        return
    except ConfigError:
        assert not expected
        return
    assert not expected, f"served although it asks for {sorted(expected)}"
    assert not candidate.unprotected


@pytest.mark.skipif(not _single_files(), reason="../shared/realworld is not beside the repo")
@pytest.mark.parametrize("config", _single_files(), ids=lambda p: p.name[:60])
def test_single_file_config_is_never_served_unprotected(config: Path) -> None:
    _assert_never_unprotected(str(config), {})


@pytest.mark.skipif(not _fc_rows(), reason="../shared/realworld is not beside the repo")
@pytest.mark.parametrize("row", _fc_rows(), ids=lambda r: r["dir"][3:60])
def test_flexible_config_tree_is_never_served_unprotected(row: dict[str, str],
                                                          tmp_path: Path) -> None:
    path, env = _render_env(row, tmp_path)
    _assert_never_unprotected(path, env)


def _asks_for_protection(data: Any) -> bool:
    """Whether a configuration has a protecting section, implemented by tidegate or not."""
    def protecting(owner: Any) -> bool:
        extra = owner.get("extra_config") if isinstance(owner, dict) else None
        return isinstance(extra, dict) and any(isinstance(k, str) and protects(k) for k in extra)

    if not isinstance(data, dict):
        return False
    owners: list[Any] = [data]
    for ep in data.get("endpoints") or []:
        owners.append(ep)
        owners.extend(ep.get("backend") or [] if isinstance(ep, dict) else [])
    return any(map(protecting, owners)) or any(
        root_setting_protects(k, v) for k, v in data.items())


def test_the_corpus_really_asks_for_protection() -> None:
    """The property above is not vacuous: most configurations ask for protections (refused, or
    served with the components tidegate implements)."""
    if not _single_files():
        pytest.skip("../shared/realworld is not beside the repo")
    asking = 0
    for config in _single_files():
        try:
            asking += _asks_for_protection(load_config(str(config), {}).data)
        except ConfigError:
            continue
    assert asking >= 10  # falls as components land (20 before auth/validator and Lua)
