"""ShuffleNet V2: torchvision equivalence, official downsampling and paper MACs, widths."""

from __future__ import annotations

import pytest
import torch
import torchvision

import lightnets
from lightnets.models.shufflenet_v2 import ShuffleNetV2
from lightnets.profile import count_complexity
from lightnets.testing import randomise
from tests.models.conftest import assert_meta_torchvision_shapes

V2_VARIANTS = ["shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5",
               "shufflenet_v2_x2_0"]


@pytest.mark.parametrize("name", V2_VARIANTS)
def test_v2_has_torchvision_parameter_shapes(name):
    assert_meta_torchvision_shapes(name)


def test_v2_computes_torchvision_function_with_its_weights():
    torch.manual_seed(0)
    theirs = torchvision.models.shufflenet_v2_x0_5().eval()
    randomise(theirs, weights="keep")  # non-trivial statistics so every norm matters
    ours = lightnets.create_model("shufflenet_v2_x0_5").eval()
    ours.load_state_dict(dict(zip(ours.state_dict(), theirs.state_dict().values())))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,paper_macs", [
    ("shufflenet_v2_x1_0", 146e6), ("shufflenet_v2_x1_5", 299e6), ("shufflenet_v2_x2_0", 591e6)])
def test_v2_official_downsample_reproduces_paper_macs(name, paper_macs):
    official = count_complexity(lightnets.create_model(name, official_downsample=True))
    default = count_complexity(name)
    assert official.macs == pytest.approx(paper_macs, rel=0.01)
    assert official.macs > default.macs and official.params > default.params


def test_v2_x0_5_forms_coincide():
    """At 0.5x each downsampling unit has in = out / 2: both forms are one network, 40.5M MACs,
    1.3% under the paper's rounded 41M."""
    official = count_complexity(lightnets.create_model("shufflenet_v2_x0_5",
                                                       official_downsample=True))
    assert official == count_complexity("shufflenet_v2_x0_5")
    assert official.macs == pytest.approx(41e6, rel=0.015)


def test_v2_feature_info_and_alias():
    model = lightnets.create_model("shufflenet_v2")
    assert isinstance(model, ShuffleNetV2) and model.num_features == 1024
    assert [(e["num_chs"], e["reduction"]) for e in model.feature_info] == [
        (24, 2), (24, 4), (116, 8), (232, 16), (1024, 32)]
    with pytest.raises(ValueError, match="widths"):
        ShuffleNetV2(widths=(24, 116, 1024))
    with pytest.raises(ValueError, match="width_mult must be one of"):
        ShuffleNetV2(width_mult=0.75)
