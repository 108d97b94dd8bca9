"""The documentation site builds with ``mkdocs build --strict`` (as ``make docs`` does), and a
broken link, a missing anchor or an API reference that does not resolve fails that build.

The build runs in a subprocess on this checkout (``PYTHONPATH`` first), into a temporary folder.
The Python examples of the pages run in ``tests/test_readme.py``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import lightnets

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "mkdocs.yml"
README = ROOT / "README.md"


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess:
    """``mkdocs build --strict`` of ``config`` into ``site``, with this checkout's lightnets."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "NO_MKDOCS_2_WARNING": "1"}  # Material's notice about its successor, not ours
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config),
                           "-d", str(site)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


def page_text(site: Path, page: str) -> str:
    """The visible text of a built page (tags dropped)."""
    return re.sub(r"<[^>]+>", " ", (site / page / "index.html").read_text())


@pytest.mark.slow  # the whole site (the small sites below check the same settings quickly)
def test_the_site_builds_strictly(tmp_path):
    site = tmp_path / "site"
    built = mkdocs_build(CONFIG, site)
    assert built.returncode == 0, f"mkdocs build --strict failed:\n{built.stdout}{built.stderr}"
    # the zoo tables are built from the registry: every registered model is listed
    zoo = page_text(site, "zoo")
    missing = [name for name in lightnets.list_models() if name not in zoo]
    assert not missing, f"the zoo page leaves out {missing}"
    assert "zoo-table" not in zoo and "Aliases:" in zoo
    # the API reference: each entry point with its arguments
    api = page_text(site, "reference/api")
    for name, arguments in {
            "create_model": ["checkpoint_path", "features_only", "out_indices"],
            "create_segmenter": ["head", "backbone", "output_stride", "aux_loss"],
            "create_detector": ["arch", "min_size", "score_thresh", "trainable_layers"],
            "load_pretrained": ["checkpoint_path", "source", "strict", "in_chans"],
            "summary": ["input_size", "depth", "batch_size"],
            "TrainConfig": ["model_args", "epochs", "lr", "limit_train_batches"]}.items():
        assert name in api, f"the API reference leaves out {name}"
        section = api[api.index(name):]
        absent = [argument for argument in arguments if argument not in section]
        assert not absent, f"the API reference of {name} leaves out {absent}"
    assert "peak learning rate, after warm-up" in api  # TrainConfig's fields are described
    assert ":func:" not in api and ":class:" not in api  # Sphinx roles read as code


# a defect a strict build must refuse, and a word its report names
DEFECTS = {
    "missing page": ("See [the guide](guides/nowhere.md).", "nowhere.md"),
    "missing anchor": ("See [the part](other.md#no-such-part).", "no-such-part"),
    "missing API object": ("::: lightnets.no_such_function", "no_such_function"),
    "missing cross-reference": ("See [it][lightnets.no_such_thing].", "no_such_thing"),
}


def small_site(tmp_path: Path, index: str) -> Path:
    """A two-page site with the settings of mkdocs.yml (theme, strictness, link validation,
    plugins, hooks), its paths made absolute; returns its configuration file."""
    config = yaml.safe_load(CONFIG.read_text())
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text(f"# Home\n\n{index}\n")
    (docs / "other.md").write_text("# Other\n\n## A part\n\nText.\n")
    config.update(docs_dir=str(docs), nav=[{"Home": "index.md"}, {"Other": "other.md"}],
                  hooks=[str(ROOT / hook) for hook in config.get("hooks", [])])
    config.pop("exclude_docs", None)
    for plugin in config["plugins"]:
        if isinstance(plugin, dict) and "mkdocstrings" in plugin:
            python = plugin["mkdocstrings"]["handlers"]["python"]
            python["paths"] = [str(ROOT / path) for path in python.get("paths", ["."])]
            options = python.get("options", {})
            options["extensions"] = [str(ROOT / extension)
                                     for extension in options.get("extensions", [])]
    path = tmp_path / "mkdocs.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_small_site_with_the_same_settings_builds(tmp_path):
    built = mkdocs_build(small_site(tmp_path, "See [the part](other.md#a-part) and "
                                              "[`summary`][lightnets.summary].\n\n"
                                              "::: lightnets.summary"), tmp_path / "site")
    assert built.returncode == 0, f"mkdocs build --strict failed:\n{built.stdout}{built.stderr}"


@pytest.mark.parametrize("defect", DEFECTS)
def test_a_defect_fails_the_build(defect, tmp_path):
    text, named = DEFECTS[defect]
    built = mkdocs_build(small_site(tmp_path, text), tmp_path / "site")
    output = built.stdout + built.stderr
    assert built.returncode != 0, f"a {defect} passed mkdocs build --strict:\n{output}"
    assert named in output, output


def test_the_readme_is_short_and_its_links_resolve():
    text = README.read_text()
    assert len(text.splitlines()) <= 300, "README.md grew past 300 lines: move it into docs/"
    for command in ("make run", "make test"):
        assert command in text, f"README.md lost the set-up command `{command}`"
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [target for target in targets if "://" not in target]
    assert local, "README.md links nothing of the documentation"
    broken = [target for target in local if not (ROOT / target).exists()]
    assert not broken, f"README.md links missing files: {broken}"
