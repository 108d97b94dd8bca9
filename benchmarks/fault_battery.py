"""Replays the faults of issues 15 and 30 (hardening) on tiny inputs and prints what each one did:
the exit status and the line the user saw. Issue 15's are a classifier's (``--only
classifier``); issue 30's the dense surfaces' (``--only dense``): segmentation pair folders,
COCO detection, resume of a killed segmenter, and export, quantize, convert and prune of
segmenters and detectors. Run it on two source trees to fill the "before / after" table, e.g.::

    python benchmarks/fault_battery.py                          # this tree
    PYTHONPATH=/tmp/before python benchmarks/fault_battery.py   # another checkout, e.g. b289afd

Every command runs in its own ``python -c`` process (so a hidden package is hidden from start-up
on) in a scratch folder; it takes a few minutes on two cores, mostly process start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import add_common_arguments, begin, write_json  # benchmarks/_common.py
from fault_battery_dense import dense_faults

TINY = ["--model", "mobilenet_v2_x0_25", "--batch-size", "32", "--limit-train-batches", "3",
        "--limit-val-batches", "2", "--no-progress", "--runs-dir", "runs"]
# hides packages as if they were not installed, then runs one `lightnets` command or a snippet
PRELUDE = "import sys\nfor name in {hide!r}: sys.modules[name] = None\n"
CLI = "from lightnets.cli import main\nsys.exit(main({argv!r}))\n"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def python(code: str, hide: tuple[str, ...] = (), prefix: tuple[str, ...] = ()) -> list[str]:
    return [*prefix, sys.executable, "-c", PRELUDE.format(hide=list(hide)) + code]


def outcome(done: subprocess.CompletedProcess) -> str:
    """The exit status and the line that matters: the last of stderr on failure, else stdout's."""
    lines = [line for line in (done.stderr if done.returncode else done.stdout).splitlines()
             if line.strip()] or [""]
    return f"exit {done.returncode}: {lines[-1].strip()[:220]}"


def run(code_or_argv, hide=(), prefix=(), pick=None) -> str:
    code = CLI.format(argv=code_or_argv) if isinstance(code_or_argv, list) else code_or_argv
    done = subprocess.run(python(code, hide, prefix), capture_output=True, text=True, env=ENV,
                          timeout=900)
    if pick:  # a line of the output that shows the fault, beside the status
        found = [line for line in (done.stdout + done.stderr).splitlines() if pick in line]
        return f"exit {done.returncode}: {(found or ['(no line with ' + pick + ')'])[0][:220]}"
    return outcome(done)


def image_tree(root: Path, splits: list[str], classes=("a", "b"), per_class=4) -> Path:
    from PIL import Image

    for split in splits:
        for name in classes:
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", (16, 16), (40 * i, 90 if name == "a" else 200, 7)).save(
                    root / split / name / f"{i}.png")
    return root


def faults() -> dict[str, str]:
    results = {}
    assert run(["train", *TINY, "--epochs", "2", "--name", "base"]).startswith("exit 0"), "setup"
    run(["export", "--checkpoint", "runs/base/last.pt", "--output", "model.onnx"])
    run(["export", "--checkpoint", "runs/base/last.pt", "--output", "model.pt2", "--format",
         "pt2"])
    digit = ("from PIL import Image\nfrom sklearn.datasets import load_digits\n"
             "Image.fromarray((load_digits().images[0] * 16).astype('uint8')).resize((32, 32))"
             ".save('digit.png')\n")
    run(digit)

    # lost work: a second run into a folder in use
    first = subprocess.Popen(python(CLI.format(argv=["train", *TINY, "--epochs", "200",
                                                     "--name", "dup"])), env=ENV,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not Path("runs/dup/last.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    results["second train into a folder in use (--overwrite)"] = run(
        ["train", *TINY, "--epochs", "1", "--name", "dup", "--overwrite"])
    results["  ... the first run is then"] = "running" if first.poll() is None else "ended"
    first.kill()
    first.wait()

    # resume with changed settings
    for name, extra in [("--lr 0.5", ["--lr", "0.5"]), ("--optimizer adamw",
                        ["--optimizer", "adamw"]), ("--epochs 1 (2 done)", [])]:
        folder = f"runs/r{len(results)}"
        shutil.copytree("runs/base", folder)
        epochs = ["--epochs", "1"] if not extra else ["--epochs", "3"]
        results[f"--resume {name}"] = run(["train", "--resume", folder, *epochs, *extra,
                                           "--no-progress"])
        if extra[:1] == ["--lr"]:
            lr = json.loads(Path(folder, "config.json").read_text()).get("lr")
            results["  ... config.json says lr"] = str(lr)

    # split folders
    image_tree(Path("split"), ["train", "test"])
    image_tree(Path("lone"), ["train"])
    folder_train = ["train", "--model", "mobilenet_v2_x0_25", "--epochs", "1", "--batch-size",
                    "4", "--input-size", "32", "--no-progress", "--runs-dir", "runs"]
    results["train/ + test/ folders"] = run([*folder_train, "--data", "split", "--name", "s"],
                                            pick="class")
    results["a lone train/ folder"] = run([*folder_train, "--data", "lone", "--name", "l"],
                                          pick="class")
    results["--warmup-epochs 100 --epochs 1"] = run(
        ["train", *TINY, "--epochs", "1", "--warmup-epochs", "100", "--name", "w"])
    results["bench --backend onnxruntime, onnxruntime hidden"] = run(
        ["bench", "mobilenet_v2_x0_25", "--backend", "onnxruntime", "--repeats", "2",
         "--warmup", "1", "--input-size", "32", "--peak-size", "64"], hide=("onnxruntime",))
    results["backend_from_file, sidecar names 3 classes of 10"] = run(
        "import json, shutil\nfrom lightnets.export.backends import backend_from_file\n"
        "shutil.copy('model.onnx', 'lie.onnx')\ns = json.load(open('model.onnx.json'))\n"
        "s['class_names'] = ['a', 'b', 'c']\nif 'artefact' in s: s['artefact'] = 'lie.onnx'\n"
        "json.dump(s, open('lie.onnx.json', 'w'))\nbackend_from_file('lie.onnx')\n"
        "print('accepted')\n")

    # missing optional packages
    results["train, matplotlib hidden"] = run(
        ["train", *TINY, "--epochs", "2", "--name", "nompl"], hide=("matplotlib",))
    results["eval --json, matplotlib hidden"] = run(
        ["eval", "--checkpoint", "runs/base", "--limit-batches", "1", "--json"],
        hide=("matplotlib",), pick="top")
    results["zoo, matplotlib hidden"] = run(
        ["zoo", "--pattern", "mobilenet_v2_x0_25", "--no-bench", "--out", "zoo"],
        hide=("matplotlib",))
    results["  ... zoo folder holds"] = ", ".join(sorted(p.name for p in Path("zoo").glob("*")))

    # write errors: a read-only folder, as a process that cannot override permission bits
    Path("ro").mkdir()
    Path("ro").chmod(0o555)
    caps = "-dac_override,-dac_read_search"
    unprivileged = (("setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}", "--")
                    if os.geteuid() == 0 else ())
    for name, argv in [
        ("train --runs-dir read-only", ["train", *TINY, "--epochs", "1", "--runs-dir", "ro"]),
        ("eval --confusion read-only/c.png", ["eval", "--checkpoint", "runs/base/last.pt",
                                              "--limit-batches", "1", "--confusion", "ro/c.png"]),
        ("export --output read-only/m.onnx", ["export", "--checkpoint", "runs/base/last.pt",
                                              "--output", "ro/m.onnx"]),
    ]:
        results[name] = run(argv, prefix=unprivileged)
    results["eval --confusion missing/folder/c.png"] = run(
        ["eval", "--checkpoint", "runs/base/last.pt", "--limit-batches", "1", "--confusion",
         "missing/folder/c.png"])
    Path("ro").chmod(0o755)

    # files that are not checkpoints
    Path("junk.pt").write_bytes(os.urandom(4096))
    Path("notes.pt").write_text("not a checkpoint\n")
    for name in ("junk.pt", "notes.pt", "model.onnx", "model.pt2"):
        results[f"eval --checkpoint {name}"] = run(
            ["eval", "--checkpoint", name, "--limit-batches", "1"], pick=None)
    results["predict --checkpoint model.onnx"] = run(
        ["predict", "--checkpoint", "model.onnx", "digit.png"])
    for part, entry in [("preprocess", "mean"), ("rng", "torch")]:  # a damaged checkpoint
        results[f"--resume, checkpoint lacking {part}.{entry}"] = run(
            f"import shutil, torch\nshutil.copytree('runs/base', 'runs/no_{part}')\n"
            f"c = torch.load('runs/no_{part}/last.pt', weights_only=True)\n"
            f"del c[{part!r}][{entry!r}]\ntorch.save(c, 'runs/no_{part}/last.pt')\n"
            "from lightnets.cli import main\nsys.exit(main(['train', '--resume', "
            f"'runs/no_{part}', '--epochs', '3', '--no-progress']))\n")

    # model arguments and inputs
    results["--model-arg width_mult=abc"] = run(
        ["train", "--model", "mobilenet_v2_x0_25", "--model-arg", "width_mult=abc",
         "--runs-dir", "runs"])
    results["a uint8 tensor into a model"] = run(
        "import torch, lightnets\nm = lightnets.create_model('mobilenet_v2_x0_25').eval()\n"
        "m(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))\n")
    results["README: ln.features.create_backbone"] = run(
        "import lightnets as ln\nln.features.create_backbone('resnet18', out_indices=(1, 2))\n"
        "print('ran')\n")
    image_tree(Path("two"), ["."], classes=("a",), per_class=2)
    results["quantize --calib-data (two images)"] = run(
        ["quantize", "--checkpoint", "runs/base/last.pt", "--calib-data", "two", "--output",
         "q.onnx", "--latency-batch", "1"])
    results["eval --limit-batches 0"] = run(
        ["eval", "--checkpoint", "runs/base", "--limit-batches", "0"])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("classifier", "dense"),
                        help="only issue 15's classifier faults, or only issue 30's dense ones")
    add_common_arguments(parser, threads=False, json=True)
    args = parser.parse_args()
    json_path = args.json if args.json in (None, "-") else str(Path(args.json).resolve())
    console = begin(args)
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        os.chmod(scratch, 0o755)  # the unprivileged process must reach its read-only folder
        results = {} if args.only == "dense" else faults()
        if args.only != "classifier":
            results.update(dense_faults(run, python, CLI, ENV))
    width = max(map(len, results))
    for fault, what in results.items():
        console.print(f"{fault:<{width}}  {what}", highlight=False, markup=False, soft_wrap=True)
    write_json(json_path, results)


if __name__ == "__main__":
    main()
