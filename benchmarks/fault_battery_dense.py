"""Issue 30's faults, on the dense surfaces: segmentation pair folders, COCO detection, resume of
a killed segmenter, and export, quantize, convert and prune of segmenters and detectors. Each
case is one line: the exit status and the line the user saw (or what a snippet measured).
Called by ``fault_battery.py`` (``--only dense``), whose ``run`` starts each case in its own
process in a scratch folder."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

SEG = ["--model", "lraspp_mobilenet_v3_small", "--input-size", "32", "--batch-size", "4",
       "--limit-train-batches", "3", "--limit-val-batches", "1", "--no-progress",
       "--runs-dir", "runs"]
DET = ["--model", "fcos_mobilenet_v3_small", "--input-size", "64", "--batch-size", "2",
       "--limit-train-batches", "2", "--limit-val-batches", "1", "--no-progress",
       "--runs-dir", "runs"]
Runner = Callable[..., str]


def write_pairs(root: Path, count: int = 12, val: int = 4, mask_value: int | None = None) -> Path:
    """``root/{train,val}/{images,masks}`` of digits-seg canvases (PNG images, PNG masks);
    ``mask_value`` fills the validation masks with one value (255: nothing labelled)."""
    import numpy as np
    from PIL import Image

    from lightnets.data.digits_seg import write_pair_folder

    write_pair_folder(root, count, val)
    if mask_value is not None:
        for path in (root / "val" / "masks").iterdir():
            mask = np.array(Image.open(path))
            mask[:] = mask_value
            Image.fromarray(mask).save(path)
    return root


def write_coco(root: Path, count: int = 6, boxes: bool = True, width: object = 64) -> Path:
    """``root/annotations.json`` + ``root/images/``: grey 64x64 images with one bright square
    of class 1 each (none with ``boxes=False``); ``width`` as written in the JSON."""
    from PIL import Image

    (root / "images").mkdir(parents=True, exist_ok=True)
    data = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "spot"}]}
    for i in range(count):
        pixels = Image.new("RGB", (64, 64), (90, 90, 90))
        pixels.paste((250, 250, 250), (8 + 4 * i, 10, 30 + 4 * i, 34))
        pixels.save(root / "images" / f"{i}.png")
        data["images"].append({"id": i + 1, "file_name": f"{i}.png", "width": width,
                               "height": 64})
        if boxes:
            data["annotations"].append({"id": i + 1, "image_id": i + 1, "category_id": 1,
                                        "bbox": [8 + 4 * i, 10, 22, 24], "area": 528,
                                        "iscrowd": 0})
    (root / "annotations.json").write_text(json.dumps(data))
    return root


def set_up(run: Runner) -> None:
    """The folders and runs the cases read: pairs, COCO, a trained segmenter and detector."""
    write_pairs(Path("pairs"))
    write_pairs(Path("ignored"), mask_value=255)
    write_coco(Path("coco/train"))
    write_coco(Path("coco/val"), 2)
    write_coco(Path("nobox/train"))
    write_coco(Path("nobox/val"), 2, boxes=False)
    write_coco(Path("strwidth"), 2, width="64")
    assert run(["train", *SEG, "--data", "pairs", "--epochs", "2", "--name", "seg"]
               ).startswith("exit 0"), "segmenter set-up"
    assert run(["train", *DET, "--data", "coco", "--epochs", "1", "--name", "det"]
               ).startswith("exit 0"), "detector set-up"


def data_faults(run: Runner) -> dict[str, str]:
    """Items 2, 3 and 10: data read wrongly, or refused only after training."""
    results = {}
    results["2 COCO val split without boxes: refused before training"] = run(
        ["train", *DET, "--data", "nobox", "--epochs", "1", "--name", "nobox"])
    results["  ... its run folder holds"] = ", ".join(
        sorted(p.name for p in Path("runs/nobox").glob("*"))) or "nothing (not created)"
    results["3 classifier on a pair folder (images/, masks/)"] = run(
        ["train", "--model", "mobilenet_v2_x0_25", "--data", "pairs/train", "--epochs", "1",
         "--input-size", "32", "--no-progress", "--runs-dir", "runs", "--name", "cls"])
    results["3 pair folder: a.png and a.jpg, one mask"] = run(
        "import shutil\nfrom PIL import Image\nshutil.copytree('pairs', 'stem')\n"
        "Image.open('stem/train/images/0.png').save('stem/train/images/0.jpg')\n"
        "from lightnets.cli import main\nsys.exit(main(['train', *" + repr(SEG) + ", '--data', "
        "'stem', '--epochs', '1', '--name', 'stem']))\n")
    results["3 validation masks all 255 (ignored)"] = run(
        ["train", *SEG, "--data", "ignored", "--epochs", "1", "--name", "ignored"])
    results["3 a 16-bit PNG predicts as its 8-bit picture"] = run(
        "import numpy as np\nfrom PIL import Image\n"
        "a = np.asarray(Image.open('pairs/val/images/0.png').convert('L')).astype(np.uint16)\n"
        "Image.fromarray(a.astype(np.uint8)).save('p8.png')\n"
        "Image.fromarray(a * 257).save('p16.png')\nfrom lightnets.cli import main\n"
        "main(['predict', '--checkpoint', 'runs/seg/last.pt', 'p8.png', 'p16.png', "
        "'--output', 'masks'])\n"
        "m8, m16 = (np.asarray(Image.open(f'masks/{n}.mask.png')) for n in ('p8', 'p16'))\n"
        "print('same mask' if np.array_equal(m8, m16) else "
        "f'masks differ at {(m8 != m16).mean():.1%} of pixels')\n")
    results["10 a 1-bit PNG mask"] = run(
        "import shutil\nfrom PIL import Image\nshutil.copytree('pairs', 'onebit')\n"
        "Image.open('onebit/train/masks/0.png').point(lambda v: 255 if v else 0).convert('1')"
        ".save('onebit/train/masks/0.png')\n"
        "from lightnets.cli import main\nsys.exit(main(['train', *" + repr(SEG) + ", '--data', "
        "'onebit', '--epochs', '1', '--name', 'onebit']))\n")
    results["10 a JPEG mask"] = run(
        "import shutil, os\nfrom PIL import Image\nshutil.copytree('pairs', 'jpeg')\n"
        "Image.open('jpeg/train/masks/0.png').save('jpeg/train/masks/0.jpg')\n"
        "os.remove('jpeg/train/masks/0.png')\n"
        "from lightnets.cli import main\nsys.exit(main(['train', *" + repr(SEG) + ", '--data', "
        "'jpeg', '--epochs', '1', '--name', 'jpeg']))\n")
    results['10 COCO "width": "64" (a string)'] = run(
        ["train", *DET, "--data", "strwidth", "--epochs", "1", "--name", "strwidth"])
    results["10 train --help names COCO, VOC and pairs"] = run(
        "import io, contextlib\nfrom lightnets.cli import main\nout = io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
        "    main(['train', '--help'])\ntext = ' '.join(out.getvalue().split())\n"
        "print([w for w in ('COCO', 'VOC', 'images/ and masks/') if w in text])\n")
    return results


def model_faults(run: Runner) -> dict[str, str]:
    """Item 4: constructor values that break a detector or segmenter later."""
    results = {}
    for option in ("score_thresh=2.0", "nms_thresh=-1", "detections_per_img=-1", "min_size=0",
                   "fpn_channels=0"):
        results[f"4 create_detector(..., {option})"] = run(
            "from lightnets import create_detector\n"
            f"create_detector('fcos', 'mobilenet_v3_small', 3, {option})\nprint('accepted')\n")
    results["4 a training label 7 with num_classes=3"] = run(
        "import torch\nfrom lightnets import create_detector\n"
        "m = create_detector('fcos', 'mobilenet_v3_small', 3).train()\n"
        "m([torch.rand(3, 64, 64)], [{'boxes': torch.tensor([[1., 1., 20., 20.]]), "
        "'labels': torch.tensor([7])}])\nprint('accepted')\n")
    results["4 create_segmenter(..., num_classes=True)"] = run(
        "from lightnets import create_segmenter\n"
        "create_segmenter('lraspp', 'mobilenet_v3_small', num_classes=True)\nprint('accepted')\n")
    return results


def deployment_faults(run: Runner) -> dict[str, str]:
    """Items 5-9: export, quantize, convert and prune of segmenters and detectors."""
    results = {}
    results["5 export a trained segmenter"] = run(
        ["export", "--checkpoint", "runs/seg/last.pt", "--output", "seg.onnx"])
    results["5 quantize a trained segmenter"] = run(
        ["quantize", "--checkpoint", "runs/seg/last.pt", "--calib-data", "pairs", "--calib-size",
         "8", "--max-drop", "100", "--output", "seg.int8.onnx", "--latency-batch", "1"])
    results["5 convert a segmenter checkpoint"] = run(
        ["convert", "runs/seg/last.pt", "--output", "segc.safetensors"])
    results["6 export a detector trained on COCO"] = run(
        ["export", "--checkpoint", "runs/det/last.pt", "--output", "det.onnx"], pick="check")
    for name, extra in (("torchscript", ["--format", "torchscript"]),
                        ("--no-postprocess", ["--no-postprocess"]),
                        ("pt2", ["--format", "pt2"])):
        results[f"7 export --model fasterrcnn {name}"] = run(
            ["export", "--model", "fasterrcnn", "--output", "frcnn",
             *extra])
    for kind in ("seg", "det"):
        results[f"8 prune a {'segmenter' if kind == 'seg' else 'detector'}"] = run(
            ["prune", "--checkpoint", f"runs/{kind}/last.pt", "--ratio", "0.3",
             "--finetune-epochs", "0", "--output", f"{kind}.pruned.pt"])
    results["9 --pretrained a torchvision classifier file for a segmenter"] = run(
        "import torch, torchvision\n"
        "torch.save(torchvision.models.mobilenet_v3_small().state_dict(), 'tv.pth')\n"
        "from lightnets.cli import main\nsys.exit(main(['train', *" + repr(SEG) + ", '--data', "
        "'pairs', '--epochs', '1', '--name', 'tv', '--pretrained', 'tv.pth']))\n")
    return results


def resume_fault(python: Callable[..., list[str]], cli: str, env: dict) -> str:
    """Item 1: a segmenter killed (SIGKILL) in its second epoch and resumed on 0 loader
    processes, against an uninterrupted run: how many tensors differ."""
    argv = ["train", *SEG, "--data", "pairs", "--epochs", "3", "--seed", "3", "--workers", "1"]
    subprocess.run(python(cli.format(argv=[*argv, "--name", "straight"])), env=env,
                   capture_output=True, timeout=900)
    killed = subprocess.Popen(python(cli.format(argv=[*argv, "--name", "killed"])), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not Path("runs/killed/last.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    started = time.monotonic()
    resumed = subprocess.run(python(cli.format(argv=["train", "--resume", "runs/killed",
                                                     "--workers", "0", "--no-progress"])),
                             env=env, capture_output=True, text=True, timeout=900)
    if resumed.returncode:
        return f"resume exit {resumed.returncode}: {resumed.stderr.strip().splitlines()[-1]}"
    import torch

    straight, again = (torch.load(f"runs/{n}/last.pt", weights_only=True)["model"]
                       for n in ("straight", "killed"))
    differ = sum(not torch.equal(t, again[k]) for k, t in straight.items())
    return (f"{differ} of {len(straight)} tensors differ from an uninterrupted run (resumed "
            f"{time.monotonic() - started:.0f} s after the kill)")


def tiny_epoch(run: Runner) -> str:
    """Small data: seconds per epoch of a segmenter on 12 images (3 steps) over 6 epochs."""
    run(["train", *SEG, "--data", "pairs", "--epochs", "6", "--name", "tiny"])
    rows = Path("runs/tiny/metrics.csv").read_text().splitlines()
    if len(rows) < 2:
        return "no metrics"
    header = rows[0].split(",")
    seconds = [float(r.split(",")[header.index("epoch_seconds")]) for r in rows[1:]]
    return f"{sum(seconds) / len(seconds):.2f} s per epoch of 3 steps (6 epochs)"


def dense_faults(run: Runner, python: Callable[..., list[str]], cli: str, env: dict
                 ) -> dict[str, str]:
    """Every dense case, after the set-up, in the issue's order."""
    set_up(run)
    results = {"1 resume a killed segmenter (kill -9 in epoch 2)": resume_fault(python, cli,
                                                                                 env)}
    results.update(data_faults(run))
    results.update(model_faults(run))
    results.update(deployment_faults(run))
    results["small data: segmenter epoch on 12 images"] = tiny_epoch(run)
    return results
