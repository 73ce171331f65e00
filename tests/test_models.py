"""ferkit.models: registry, architectures, pretrained loading, save/load. Real torchvision/timm/safetensors,
no network: ImageNet weights are stand-ins written into a temporary TORCH_HOME."""
from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn

from ferkit.errors import ConfigError, UnknownModelError, WeightsError
from ferkit.models import (
    count_parameters,
    create_model,
    head_prefix,
    list_models,
    load_model,
    register_model,
    save_model,
)

ALL_MODELS = ["inception_v3", "mobilenet_v2", "resnet18", "resnet34", "resnet50", "spp_net", "vgg_fer"]
MARK = 0.125  # recognisable constant written into the stand-in ImageNet weights


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread) -> None:
    """These tiny batches gain nothing from intra-op threads (see conftest.one_thread)."""


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)


def _forward_backward(model: nn.Module, x: torch.Tensor, num_classes: int) -> None:
    out = model(x)
    assert out.shape == (x.shape[0], num_classes)
    out.logsumexp(dim=1).sum().backward()
    head = dict(model.named_parameters())
    grads = [p.grad for name, p in head.items() if name.startswith(model.ferkit_head + ".")]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


# --------------------------------------------------------------------------------------- registry
def test_registry_lists_and_filters() -> None:
    assert list_models() == ALL_MODELS
    assert list_models("resnet*") == ["resnet18", "resnet34", "resnet50"]
    assert list_models("nothing*") == []


def test_registry_refuses_duplicate_names() -> None:
    def vgg_fer(pretrained: bool = False, **kwargs: object) -> nn.Module:
        raise AssertionError("never called")

    with pytest.raises(ValueError, match="already registered"):
        register_model(vgg_fer)
    assert create_model("vgg_fer", in_chans=1).ferkit_arch == "vgg_fer"


def test_unknown_model_suggests_close_names() -> None:
    with pytest.raises(UnknownModelError, match="did you mean resnet18") as info:
        create_model("resnet81")
    assert "\n" not in str(info.value)
    with pytest.raises(UnknownModelError):
        create_model("timm/not_a_model_at_all")


def test_invalid_sizes_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="num_classes"):
        create_model("vgg_fer", num_classes=0)
    with pytest.raises(ConfigError, match="backbone"):
        create_model("spp_net", backbone="alexnet")


# --------------------------------------------------------------------------------- architectures
@pytest.mark.parametrize("in_chans", [1, 3])
@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_model_runs_on_48px_faces(name: str, in_chans: int) -> None:
    model = create_model(name, num_classes=7, in_chans=in_chans)
    assert model.ferkit_arch == name
    # the head is the classifier: its last weight gives the 7 classes
    rows = [w.shape[0] for n, w in model.named_parameters() if n.startswith(head_prefix(model) + ".") and w.ndim > 1]
    assert rows and rows[-1] == 7, (head_prefix(model), rows)
    _forward_backward(model, torch.randn(2, in_chans, 48, 48), 7)


def test_head_prefix_of_a_model_built_by_timm_itself() -> None:
    """A model ferkit did not build (no ferkit_head) has its head named by timm's pretrained_cfg."""
    import timm

    assert head_prefix(timm.create_model("resnet18", num_classes=7)) == "fc"
    assert head_prefix(timm.create_model("mobilenetv2_050", num_classes=7)) == "classifier"
    with pytest.raises(ValueError, match="Linear has no known classifier"):
        head_prefix(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("name", ["resnet18", "vgg_fer"])
def test_224_rgb(name: str) -> None:
    model = create_model(name, num_classes=8).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 8)


def test_torchvision_names_and_heads_are_kept() -> None:
    resnet = create_model("resnet18", in_chans=1)
    names = dict(resnet.named_parameters())
    assert names["conv1.weight"].shape == (64, 1, 7, 7)
    assert names["fc.weight"].shape == (7, 512) and "layer4.1.conv2.weight" in names
    assert resnet.ferkit_head == "fc"
    assert create_model("mobilenet_v2").ferkit_head == "classifier"


def test_drop_rate_reaches_every_head() -> None:
    assert create_model("resnet18", drop_rate=0.3).fc.drop_rate == 0.3
    assert create_model("mobilenet_v2", drop_rate=0.3).classifier[0].p == 0.3
    assert create_model("inception_v3", drop_rate=0.3).dropout.p == 0.3
    assert create_model("vgg_fer", drop_rate=0.3).head_drop.p == 0.3
    assert create_model("spp_net", drop_rate=0.3, backbone="vgg_fer").classifier.drop.p == 0.3
    assert create_model("mobilenet_v2", drop_rate=None).classifier[0].p == 0.2  # None keeps the default


@pytest.fixture(scope="module")
def spp_resnet18() -> nn.Module:
    return create_model("spp_net", num_classes=7, in_chans=1)


@pytest.mark.parametrize("size", [(48, 48), (64, 64), (100, 80), (224, 224)])
def test_spp_net_accepts_any_input_size(spp_resnet18: nn.Module, size: tuple[int, int]) -> None:
    assert spp_resnet18.classifier.fc1.in_features == 512 * (1 + 4 + 16)
    _forward_backward(spp_resnet18, torch.randn(2, 1, *size), 7)


@pytest.mark.parametrize("backbone", ["mobilenet_v2", "vgg_fer"])
def test_spp_net_backbones_and_levels(backbone: str) -> None:
    model = create_model("spp_net", in_chans=1, backbone=backbone, levels=[1, 3])
    _forward_backward(model, torch.randn(2, 1, 56, 40), 7)
    assert model.forward_head(model.forward_features(torch.randn(1, 1, 48, 48)), pre_logits=True).shape == (1, 512)


def test_vgg_fer_is_compact() -> None:
    model = create_model("vgg_fer", in_chans=1)
    assert 1_000_000 <= count_parameters(model) <= 2_500_000
    assert create_model("vgg_fer", in_chans=1, width=0.5).features[-1][0][0].out_channels == 128
    model.reset_classifier(8)
    assert model(torch.randn(2, 1, 48, 48)).shape == (2, 8)


def test_timm_model_by_name() -> None:
    model = create_model("timm/test_resnet", num_classes=7, in_chans=1)
    assert model.ferkit_arch == "timm/test_resnet"
    assert model.ferkit_head == model.pretrained_cfg["classifier"] == "fc"
    _forward_backward(model, torch.randn(2, 1, 48, 48), 7)
    assert create_model("test_resnet", in_chans=1).ferkit_arch == "timm/test_resnet"  # bare timm name


# ------------------------------------------------------------------------------ pretrained weights
def _marked_resnet18_state() -> dict[str, torch.Tensor]:
    """A torchvision resnet18 state dict (1000 classes, RGB) with layer1.0.conv1 set to MARK."""
    state = torchvision.models.resnet18().state_dict()
    state["layer1.0.conv1.weight"].fill_(MARK)
    state["bn1.running_mean"].fill_(MARK)
    return state


def _assert_adapted_resnet18(model: nn.Module, source: dict[str, torch.Tensor]) -> None:
    """Loaded body, first conv summed over RGB, new 7-way head."""
    assert torch.all(model.layer1[0].conv1.weight == MARK)
    assert torch.equal(model.bn1.running_mean, source["bn1.running_mean"])
    assert torch.allclose(model.conv1.weight, source["conv1.weight"].sum(dim=1, keepdim=True))
    assert model.fc.out_features == 7 and model.fc.weight.shape == (7, 512)


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


def _cache_path(torch_home: Path, weights: torchvision.models.WeightsEnum) -> Path:
    return torch_home / "hub" / "checkpoints" / Path(urlparse(weights.url).path).name


@pytest.mark.parametrize("pretrained", [True, "imagenet"])
def test_imagenet_weights_from_torch_hub_cache(torch_home: Path, pretrained: bool | str) -> None:
    source = _marked_resnet18_state()
    cached = _cache_path(torch_home, torchvision.models.ResNet18_Weights.DEFAULT)
    cached.parent.mkdir(parents=True)
    torch.save(source, cached)
    _assert_adapted_resnet18(create_model("resnet18", num_classes=7, in_chans=1, pretrained=pretrained), source)


def test_spp_net_loads_backbone_imagenet_weights(torch_home: Path) -> None:
    source = _marked_resnet18_state()
    cached = _cache_path(torch_home, torchvision.models.ResNet18_Weights.DEFAULT)
    cached.parent.mkdir(parents=True)
    torch.save(source, cached)
    model = create_model("spp_net", in_chans=1, pretrained=True)
    assert torch.all(model.features.layer1[0].conv1.weight == MARK)
    assert torch.allclose(model.features.conv1.weight, source["conv1.weight"].sum(dim=1, keepdim=True))


def test_missing_imagenet_cache_names_the_expected_file(torch_home: Path) -> None:
    expected = _cache_path(torch_home, torchvision.models.ResNet18_Weights.DEFAULT)
    with pytest.raises(WeightsError) as info:
        create_model("resnet18", in_chans=1, pretrained=True)
    assert str(expected) in str(info.value) and "\n" not in str(info.value)


def test_model_without_imagenet_weights(torch_home: Path) -> None:
    with pytest.raises(WeightsError, match="no ImageNet weights"):
        create_model("vgg_fer", pretrained=True)


@pytest.mark.parametrize("fmt", ["safetensors", "pth", "lightning"])
def test_local_weights_file(
    tmp_path: Path, fmt: str, caplog: pytest.LogCaptureFixture
) -> None:
    source = _marked_resnet18_state()
    path = tmp_path / f"weights.{'ckpt' if fmt == 'lightning' else fmt}"
    if fmt == "safetensors":
        save_file(source, path)
    elif fmt == "pth":
        torch.save(source, path)
    else:  # Lightning checkpoint of a module holding the network as self.net
        torch.save({"epoch": 3, "state_dict": {f"net.{k}": v for k, v in source.items()}}, path)
    with caplog.at_level(logging.INFO, logger="ferkit"):
        model = create_model("resnet18", num_classes=7, in_chans=1, pretrained=path)
    _assert_adapted_resnet18(model, source)
    assert "classifier fc keeps its random init" in caplog.text


def test_timm_model_from_local_file(tmp_path: Path) -> None:
    source = create_model("timm/test_resnet", num_classes=1000, in_chans=3).state_dict()
    path = tmp_path / "test_resnet.safetensors"
    save_file(source, path)
    model = create_model("timm/test_resnet", num_classes=7, in_chans=1, pretrained=str(path))
    assert torch.allclose(model.conv1[0].weight, source["conv1.0.weight"].sum(dim=1, keepdim=True))
    assert model.fc.weight.shape[0] == 7


class _Exploit:
    """Unpickling this would create ``marker``; a safe loader must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_pickled_objects_are_refused_unexecuted(tmp_path: Path, writer: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    payload = {"conv1.weight": torch.zeros(1), "evil": _Exploit(marker)}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(WeightsError, match="evil.pth"):
        create_model("resnet18", pretrained=path)
    assert not marker.exists()


def test_pickled_object_in_torch_hub_cache_is_refused(torch_home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    cached = _cache_path(torch_home, torchvision.models.ResNet18_Weights.DEFAULT)
    cached.parent.mkdir(parents=True)
    torch.save(_Exploit(marker), cached)
    with pytest.raises(WeightsError, match=cached.name):
        create_model("resnet18", pretrained=True)
    assert not marker.exists()


def test_non_state_dicts_and_wrong_architectures(tmp_path: Path) -> None:
    not_weights = tmp_path / "meta.pth"
    torch.save({"epoch": 3, "lr": 0.1}, not_weights)
    with pytest.raises(WeightsError, match="not a plain state_dict"):
        create_model("resnet18", pretrained=not_weights)
    with pytest.raises(WeightsError, match="not found"):
        create_model("resnet18", pretrained=tmp_path / "missing.safetensors")
    vgg = tmp_path / "vgg.safetensors"
    save_file(create_model("vgg_fer").state_dict(), vgg)
    with pytest.raises(WeightsError, match="no tensor matches resnet18"):
        create_model("resnet18", pretrained=vgg)


# --------------------------------------------------------------------------------------- save/load
def _meta(classes: int = 7, channels: int = 1, **model_kwargs: object) -> dict[str, object]:
    return {
        "classes": [f"c{i}" for i in range(classes)],
        "input": {"size": 48, "channels": channels, "mean": [0.5] * channels, "std": [0.25] * channels},
        "model_kwargs": model_kwargs,
    }


def _trained_like(name: str, **kwargs: object) -> nn.Module:
    """A model whose BN running stats differ from their init (one train-mode forward)."""
    model = create_model(name, in_chans=1, **kwargs)
    with torch.no_grad():
        model(torch.randn(4, 1, 48, 48) * 2 + 1)
    return model.eval()


def test_save_load_round_trip_fp32(tmp_path: Path) -> None:
    model = _trained_like("spp_net", backbone="vgg_fer", levels=(1, 2), drop_rate=0.2)
    meta = _meta(backbone="vgg_fer", levels=[1, 2], drop_rate=0.2)
    weights = save_model(model, tmp_path / "run" / "model", meta)
    assert weights == tmp_path / "run" / "model.safetensors" and weights.with_suffix(".json").is_file()
    assert not [p for p in weights.parent.iterdir() if p.name.endswith(".tmp")]
    x = torch.randn(3, 1, 48, 48)
    expected = model(x)
    for path in (tmp_path / "run" / "model", weights, weights.with_suffix(".json"), tmp_path / "run"):
        loaded, loaded_meta = load_model(path)
        assert not loaded.training and loaded.ferkit_arch == "spp_net"
        assert torch.equal(loaded(x), expected)
    assert loaded_meta["classes"] == meta["classes"] and loaded_meta["model_kwargs"] == meta["model_kwargs"]
    assert loaded_meta["format"] == "ferkit-model/1" and loaded_meta["arch"] == "spp_net"
    assert loaded_meta["num_classes"] == 7 and loaded_meta["dtype"] == "float32"
    assert loaded_meta["num_params"] == count_parameters(model) and len(loaded_meta["sha256"]) == 64
    assert "sha256" not in meta  # the caller's dict is not modified


@pytest.mark.parametrize("name", ["vgg_fer", "timm/test_resnet"])
def test_save_load_round_trip_fp16(tmp_path: Path, name: str) -> None:
    model = _trained_like(name)
    weights = save_model(model, tmp_path / "small", _meta(), dtype=torch.float16)
    fp32 = save_model(model, tmp_path / "big", _meta())
    assert weights.stat().st_size < 0.6 * fp32.stat().st_size
    loaded, meta = load_model(weights)
    assert meta["dtype"] == "float16" and all(p.dtype == torch.float32 for p in loaded.parameters())
    x = torch.randn(2, 1, 48, 48)
    torch.testing.assert_close(loaded(x), model(x), atol=2e-2, rtol=1e-2)


def test_tampered_or_incomplete_files_are_refused(tmp_path: Path) -> None:
    weights = save_model(create_model("vgg_fer", in_chans=1), tmp_path / "m", _meta())
    meta_path = weights.with_suffix(".json")
    good_meta = meta_path.read_text()

    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="checksum mismatch, file corrupt or modified"):
        load_model(weights)

    meta_path.write_text("{not json")
    with pytest.raises(WeightsError, match="m.json"):
        load_model(weights)
    broken = json.loads(good_meta)
    del broken["input"]
    meta_path.write_text(json.dumps(broken))
    with pytest.raises(WeightsError, match="'input'"):
        load_model(weights)
    meta_path.unlink()
    with pytest.raises(WeightsError, match="m.json"):
        load_model(weights)


def test_json_edited_after_saving_is_refused_but_calibration_may_change(tmp_path: Path) -> None:
    """The hash of the JSON's architecture fields is stored inside the weights file (covered by the
    file's sha256): another model_kwargs or input is refused in one line; a new temperature loads."""
    weights = save_model(create_model("vgg_fer", in_chans=1), tmp_path / "m", _meta())
    meta_path = weights.with_suffix(".json")
    good = json.loads(meta_path.read_text())
    for edit in ({"model_kwargs": {"drop_rate": 0.5}}, {"input": {**good["input"], "size": 64}},
                 {"classes": list(reversed(good["classes"]))}):
        meta_path.write_text(json.dumps({**good, **edit}))
        with pytest.raises(WeightsError) as e:
            load_model(weights)
        assert str(e.value).startswith(f"{meta_path}: arch, classes, input, model_kwargs, num_classes differ")
        assert "\n" not in str(e.value)
    meta_path.write_text(json.dumps({**good, "temperature": 1.5}))
    assert load_model(weights)[1]["temperature"] == 1.5


def test_save_model_checks_meta(tmp_path: Path) -> None:
    model = create_model("vgg_fer", in_chans=1)
    with pytest.raises(ValueError, match="8 classes"):
        save_model(model, tmp_path / "m", _meta(classes=8))
    with pytest.raises(ValueError, match="model_kwargs"):
        save_model(model, tmp_path / "m", {**_meta(), "model_kwargs": {"in_chans": 1}})
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("edit", "needle"), [
    ({"input": {"size": 0}}, "'input.size' must be an integer from 16 to 1024, not 0"),
    ({"input": {"size": -5}}, "'input.size'"),
    ({"input": {"size": "abc"}}, "'input.size'"),
    ({"input": {"size": 4096}}, "not 4096"),
    ({"input": {"std": [0.0]}}, "'input.std' must be positive"),
    ({"input": {"mean": [0.5, 0.5, 0.5]}}, "'input.mean' must be a list of 1 finite numbers"),
    ({"temperature": "hot"}, "'temperature' must be a number"),
    ({"temperature": float("inf")}, "'temperature'"),
    ({"classes": ["happy", "happy", "sad", "angry", "fear", "disgust", "neutral"]}, "names happy more than once"),
    ({"train_prior": [0.5, -1]}, "'train_prior' must be a list of 7 positive numbers"),
    ({"prior": 2}, "'prior' must be train, uniform or a balance from 0 to 1, not 2"),
    ({"prior": "flat"}, "'prior' must be train, uniform or a balance from 0 to 1, not 'flat'"),
    ({"prior": "uniform", "train_prior": None}, "'prior' 'uniform' needs 'train_prior'"),
    ({"model_kwargs": {"width": 1e6}}, "'model_kwargs.width' must be between 0 and 64"),
])
def test_crafted_model_json_is_one_line_error(tmp_path: Path, edit: dict, needle: str) -> None:
    """Each field of a hand-edited model JSON is checked before anything is built (issue 18)."""
    from _models import plain_model

    meta = plain_model(tmp_path)
    for key, value in edit.items():
        meta[key] = {**meta[key], **value} if key == "input" else value
    (tmp_path / "m.json").write_text(json.dumps(meta))
    with pytest.raises(WeightsError) as e:
        load_model(tmp_path / "m")
    assert needle in str(e.value) and "\n" not in str(e.value)
    assert str(e.value).startswith(str(tmp_path / "m.json"))


@pytest.mark.parametrize("stem", ["ensemble_votes", "onnx/votes_vgg_fer_w2"])
@pytest.mark.parametrize(("prior", "needle"), [
    (2, "'prior' must be train, uniform or a balance from 0 to 1, not 2"),
    (True, "'prior' must be train, uniform or a balance from 0 to 1, not True"),
    ("0.5", "'prior' must be train, uniform or a balance from 0 to 1, not '0.5'"),
])
def test_an_ensembles_or_onnx_exports_prior_is_checked_too(tmp_path: Path, stem: str, prior, needle: str) -> None:
    """The class prior a model predicts under (its JSON's `prior`) is checked in every format's JSON, one line
    naming the file, before anything is loaded."""
    from ferkit.models import WEIGHTS_DIR, load_ensemble, open_onnx, read_onnx_meta

    meta = json.loads((WEIGHTS_DIR / f"{stem}.json").read_text())
    target = tmp_path / "m.json"
    target.write_text(json.dumps({**meta, "prior": prior}))
    readers = [load_ensemble, open_onnx] if stem.startswith("ensemble") else [read_onnx_meta, open_onnx]
    for read in readers:     # the ONNX runtime's ensemble too, before any member's session is opened
        with pytest.raises(WeightsError) as e:
            read(target)
        assert str(e.value) == f"{target}: {needle}", read


def test_a_prior_has_one_spelling() -> None:
    """0 is the training prior, 1 uniform, another number a balance (numpy's too); a bool is no prior."""
    import numpy as np

    from ferkit.errors import FerkitError
    from ferkit.infer import RecognizerOptions
    from ferkit.models import canonical_prior

    assert [canonical_prior(v) for v in (None, 0, "train", 1, 1.0, "uniform", np.float32(0.5), (1, 2))] == [
        "train", "train", "train", "uniform", "uniform", "uniform", 0.5, [1.0, 2.0]]
    for bad, needle in ((True, "prior True: use train, uniform"), (1.5, "a balance must be from 0"),
                        ("flat", "prior 'flat': use train"), ({"happy": "x"}, "frequencies must be numbers")):
        with pytest.raises(FerkitError, match=needle):
            canonical_prior(bad)
    from ferkit.infer import parse_prior

    for v in (0, 1, 0.5, np.float32(0.25), 1 / 3):    # a number given to the options round-trips whole
        assert canonical_prior(parse_prior(RecognizerOptions(prior=v).prior)) == canonical_prior(v)
    assert RecognizerOptions(prior=1).prior == "uniform" and RecognizerOptions(prior=0).prior == "train"


_REFUSE = """
import json, resource, sys, time
import torch  # imported before the baseline: what is measured is load_model's own memory
from ferkit.errors import WeightsError
from ferkit.models import load_model
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    load_model(sys.argv[1])
    message = None
except WeightsError as e:
    message = str(e)
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024
print(json.dumps({"message": message, "seconds": time.perf_counter() - start, "grown": grown}))
"""


@pytest.mark.parametrize(("edit", "needle"), [
    ({"model_kwargs": {"width": 64}},
     ("'model_kwargs.width' 64 gives a network of 4.8G parameters, its weights hold 1.2M "
      "(more than the 200M ferkit loads)")),
    ({"model_kwargs": {"width": 2}},
     ("'model_kwargs.width' 2 gives a network of 4.7M parameters, its weights hold 1.2M "
      "(features.0.0.0.weight is [64, 1, 3, 3] here, [32, 1, 3, 3] in m.safetensors)")),
    ({"classes": [*"abcdefgh"], "train_prior": None},
     ("'classes' (8 names) gives a network of 1.2M parameters, its weights hold 1.2M "
      "(classifier.weight is [8, 256] here, [7, 256] in m.safetensors)")),
    ({"arch": "resnet18"},
     ("'arch' 'resnet18' gives a network of 11.2M parameters, its weights hold 1.2M "
      "(conv1.weight is not in m.safetensors)")),
])
def test_model_json_is_checked_against_the_weights_header_before_allocating(tmp_path: Path, edit: dict,
                                                                            needle: str) -> None:
    """A shipped safetensors file (saved before ferkit hashed the JSON into it) beside a JSON asking for
    another network: refused from the file's header and a network built on the meta device, in one line
    naming the field, in < 2 s and < 500 MB (without the check, width 64 allocates gigabytes)."""
    import subprocess
    import sys

    from _models import plain_model

    meta = {**plain_model(tmp_path), **edit}
    (tmp_path / "m.json").write_text(json.dumps(meta))
    r = subprocess.run([sys.executable, "-c", _REFUSE, str(tmp_path / "m")], capture_output=True, text=True,
                       timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert (got["message"] or "").startswith(f"{tmp_path / 'm.json'}: {needle}") and "\n" not in got["message"], got
    assert got["grown"] < 500e6, got
    assert got["seconds"] < 2 or "arch" in edit, got  # another arch: importing torchvision alone may take seconds


# ------------------------------------------------------------------------------------------- Weights
def test_weights_describe_every_format_without_building_a_network(tmp_path: Path) -> None:
    """`resolve` reads a model's JSON into a read-only `Weights`; `replace` + `write` is how a
    change is written (calibrate), atomically; what it says is what load_model and the ONNX
    export say."""
    import numpy as np

    from ferkit.data.preprocess import EvalTransform
    from ferkit.models import WEIGHTS_DIR, Weights, load_model, resolve, shipped_models

    w = resolve("default")
    _, meta = load_model("default")
    assert w.format == "model" and w.arch == meta["arch"] == "vgg_fer" and w.sha256 == meta["sha256"]
    assert w.classes == tuple(meta["classes"]) and w.temperature == meta["temperature"]
    assert w.as_dict() == meta and w.path == WEIGHTS_DIR / f"{shipped_models()['default']}.json"
    onnx = resolve(WEIGHTS_DIR / "onnx" / f"{shipped_models()['default']}.onnx")
    assert onnx.format == "onnx" and onnx.classes == w.classes and onnx.temperature == w.temperature
    with pytest.raises(TypeError):
        w.fields["temperature"] = 2.0  # read-only
    assert isinstance(w.transform(), EvalTransform) and w.transform().size == meta["input"]["size"]
    logits = np.array([[0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 0.0]])
    z = logits / meta["temperature"]
    assert np.allclose(w.probabilities(logits), np.exp(z) / np.exp(z).sum())

    hot = w.replace(temperature=2.0, note="x")
    assert (hot.temperature, w.temperature) == (2.0, meta["temperature"]) and hot.fields["note"] == "x"
    assert hot.replace(note=None).fields.get("note") is None
    out = hot.write(tmp_path / "model.json")
    assert Weights.from_json(out) == hot and json.loads(out.read_text())["temperature"] == 2.0
    assert not list(tmp_path.glob("*.tmp*"))

    (tmp_path / "bad.json").write_text('{"format": "ferkit-model/1", "classes": []}')
    with pytest.raises(WeightsError, match=r"bad\.json: 'classes' must be a non-empty list"):
        Weights.from_json(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"format": "something/2"}')
    with pytest.raises(WeightsError, match=r"other\.json: format is 'something/2'"):
        Weights.from_json(tmp_path / "other.json")
    with pytest.raises(WeightsError, match="not found"):
        Weights.from_json(tmp_path / "missing.json")


# ------------------------------------------------------------------------------ shipped names (arch.tag)
def test_create_model_takes_a_shipped_arch_tag_name() -> None:
    """timm's ``arch.tag``: ``create_model("vgg_fer.w15_fer2013")`` is that architecture with the shipped
    model's kwargs, classes and channels; ``pretrained=True`` gives the very network load_model loads."""
    from ferkit.models import resolve

    name = "vgg_fer.w15_fer2013"
    w = resolve(name)
    loaded, _ = load_model(name)
    untrained = create_model(name)
    assert untrained.ferkit_arch == "vgg_fer" and untrained.training
    assert type(untrained) is type(loaded) and untrained.num_classes == len(w.classes) == 7
    assert untrained.features[0][0][0].in_channels == w.input["channels"] == 1
    assert count_parameters(untrained) == count_parameters(loaded) == w.fields["num_params"]
    assert untrained.head_drop.p == w.fields["model_kwargs"]["drop_rate"]
    assert not torch.equal(untrained.classifier.weight, loaded.classifier.weight)
    trained = create_model(name, pretrained=True).eval()
    assert trained.training is False and all(torch.equal(a, b) for a, b in
                                             zip(trained.state_dict().values(), loaded.state_dict().values()))
    x = torch.rand(2, 1, 48, 48)
    with torch.no_grad():
        assert torch.equal(trained(x), loaded(x))
    # the caller's arguments win, as in timm: another head (re-initialised) and drop rate
    other = create_model("vgg_fer.w2_ferplus", num_classes=3, drop_rate=0.0, pretrained=True)
    assert other.num_classes == 3 and other.head_drop.p == 0.0
    assert torch.equal(other.features[0][0][0].weight, load_model("ferplus")[0].features[0][0][0].weight)
    assert create_model("vgg_fer").features[0][0][0].in_channels == 3  # the architecture alone: as before


def test_one_meaning_per_name(tmp_path: Path) -> None:
    """``vgg_fer`` is the architecture only; short names and ensembles are models, not architectures;
    each refusal is one line saying what to use."""
    from ferkit.models import shipped_models

    with pytest.raises(WeightsError) as e:
        load_model("vgg_fer")
    assert "vgg_fer: an architecture, not a trained model" in str(e.value) and "vgg_fer.w15_fer2013" in str(e.value)
    assert "vgg_fer" not in shipped_models() and "\n" not in str(e.value)
    with pytest.raises(UnknownModelError,
                       match=r"'default' names a shipped model.*create_model\('vgg_fer.w2_votes'\)"):
        create_model("default")
    with pytest.raises(UnknownModelError, match=r"'ensemble.votes' is a shipped ensemble, not one architecture"):
        create_model("ensemble.votes")
    with pytest.raises(UnknownModelError, match=r"load_model\('ensemble'\)$"):
        create_model("ensemble")
    # every shipped single model's arch.tag name works with both
    for name in shipped_models():
        arch, dot, _ = name.partition(".")
        if dot and arch in list_models():
            assert create_model(name).ferkit_arch == load_model(name)[0].ferkit_arch == arch


def test_an_onnx_exports_training_prior_and_any_jsons_prior_are_checked_where_they_are_read(tmp_path: Path) -> None:
    """The training frequencies of an ONNX export's JSON are checked as a model's are, and `Weights.from_json`
    (`ferkit models`, the scripts) checks a JSON's prior before any property is read: one line naming the file."""
    from ferkit.models import WEIGHTS_DIR, Weights, read_onnx_meta

    meta = json.loads((WEIGHTS_DIR / "onnx" / "votes_vgg_fer_w2.json").read_text())
    target = tmp_path / "m.json"
    target.write_text(json.dumps({**meta, "train_prior": [0.5, -1]}))
    with pytest.raises(WeightsError) as e:
        read_onnx_meta(target)
    assert str(e.value) == (f"{target}: 'train_prior' must be a list of {len(meta['classes'])} positive numbers "
                            "(class frequencies), not [0.5, -1]")
    model = json.loads((WEIGHTS_DIR / "votes_vgg_fer_w2.json").read_text())
    target.write_text(json.dumps({**model, "prior": "flat"}))
    with pytest.raises(WeightsError) as e:
        Weights.from_json(target)
    assert str(e.value) == f"{target}: 'prior' must be train, uniform or a balance from 0 to 1, not 'flat'"
