"""Every ```python block of README.md and of the documentation pages (docs/**/*.md) runs as
written.

Each page is one test: its blocks run in order in one namespace, as one session (a later example
may use a model an earlier one built on the same page; pages do not share names), in a temporary
working folder holding the files the page's examples name (:data:`EXAMPLE_FILES`). Blocks and
pages added are picked up with no change here; an example that needs a new file adds it to
:data:`EXAMPLE_FILES`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lightnets.data.digits import digits_split

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
pytestmark = pytest.mark.slow  # the examples train, prune and export


def digit_png(digit: int) -> Callable[[Path], None]:
    """Writes the first validation scan of ``digit`` as an 8x8 grey PNG."""
    def write(path: Path) -> None:
        _, (images, labels) = digits_split()
        index = int((labels == digit).nonzero()[0, 0])
        pixels = (images[index, 0].numpy() * 255).round().astype(np.uint8)
        Image.fromarray(pixels, "L").save(path)
    return write


def torchvision_resnet18(path: Path) -> None:
    """torchvision's ResNet-18 at random initialisation, under its release file's name."""
    import torch
    import torchvision

    torch.save(torchvision.models.resnet18().state_dict(), path)


def torchvision_segmenter(name: str, **kwargs) -> Callable[[Path], None]:
    """torchvision's segmenter ``name`` at random initialisation (its release's form:
    ``kwargs``), under its release file's name."""
    def write(path: Path) -> None:
        import torch
        import torchvision

        torch.save(torchvision.models.get_model(name, weights=None, weights_backbone=None,
                                                **kwargs).state_dict(), path)
    return write


def timm_hf_folder(architecture: str) -> Callable[[Path], None]:
    """A Hugging Face-style folder of timm's ``architecture`` at random initialisation."""
    def write(path: Path) -> None:
        timm = pytest.importorskip("timm")
        timm.models.save_for_hf(timm.create_model(architecture), str(path))
    return write


def smp_unet(folder: bool) -> Callable[[Path], None]:
    """segmentation_models_pytorch's Unet on resnet34 at random initialisation: its state dict,
    or its ``save_pretrained`` folder."""
    def write(path: Path) -> None:
        import torch

        smp = pytest.importorskip("segmentation_models_pytorch")
        model = smp.Unet("resnet34", encoder_weights=None)
        if folder:
            model.save_pretrained(str(path))
        else:
            torch.save(model.state_dict(), path)
    return write


# file name -> writer: the files the examples of README.md and docs/ (Python and shell) refer to;
# a page's folder holds those its text names
EXAMPLE_FILES = {"digit_0.png": digit_png(0), "digit_5.png": digit_png(5),
                 "resnet18-f37072fd.pth": torchvision_resnet18,
                 "timm-mbv3": timm_hf_folder("mobilenetv3_large_100"),
                 "lraspp_mobilenet_v3_large-d234d4ea.pth":
                     torchvision_segmenter("lraspp_mobilenet_v3_large"),
                 "deeplabv3_mobilenet_v3_large-fc3c493d.pth":
                     torchvision_segmenter("deeplabv3_mobilenet_v3_large", aux_loss=True),
                 "smp_unet.pth": smp_unet(folder=False), "smp_folder": smp_unet(folder=True)}


def python_blocks(text: str) -> list[tuple[int, str]]:
    """``(line, code)`` of each ```python block, ``line`` being that of its first code line."""
    return [(text.count("\n", 0, match.start(1)) + 1, match.group(1))
            for match in FENCE.finditer(text)]


def run_blocks(blocks: list[tuple[int, str]], source: str = "README.md") -> dict:
    """Execute the blocks in order in one namespace; a failing block raises ``AssertionError``
    naming its line, with the error's type and message."""
    namespace: dict = {"__name__": "__readme__"}
    for line, code in blocks:
        compiled = compile("\n" * (line - 1) + code, source, "exec")  # tracebacks: README lines
        try:
            exec(compiled, namespace)  # noqa: S102 - the project's own documentation
        except Exception as error:  # noqa: BLE001 - any failure of an example is a failure
            raise AssertionError(f"the {source} example at line {line} fails: "
                                 f"{type(error).__name__}: {error}") from error
    return namespace


def pages() -> list[Path]:
    """README.md and every documentation page, in a stable order."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def page_id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def test_the_blocks_are_found_with_their_lines():
    text = "intro\n```python\nx = 1\n```\n```bash\nls\n```\n\n```python\ny = x + 1\n```\n"
    assert python_blocks(text) == [(3, "x = 1\n"), (10, "y = x + 1\n")]
    assert run_blocks(python_blocks(text))["y"] == 2
    with pytest.raises(AssertionError, match=r"line 3 fails: NameError: name 'z' is not"):
        run_blocks([(3, "z + 1\n")])


def test_the_documentation_keeps_its_examples():
    counts = {page_id(page): len(python_blocks(page.read_text())) for page in pages()}
    assert counts["README.md"] >= 3, "README.md lost its quick starts (one per task)"
    assert sum(counts.values()) - counts["README.md"] >= 10, \
        f"the documentation lost Python examples: {counts}"


@pytest.mark.parametrize("page", [page for page in pages() if python_blocks(page.read_text())],
                         ids=page_id)
def test_python_examples_run(page, tmp_path, monkeypatch):
    text = page.read_text()
    monkeypatch.chdir(tmp_path)  # examples that train write runs/ here
    for name, write in EXAMPLE_FILES.items():
        if name in text:
            write(tmp_path / name)
    run_blocks(python_blocks(text), page_id(page))
