#!/usr/bin/env python3
"""HDF5 fixtures (h5py 3.16, Keras 3.15 on the torch backend) and their reference activations.

Run from the repository root:
    .venv-ref/bin/python tools/make_hdf5_fixtures.py

Writes Tests/Fixtures/hdf5/, Tests/Fixtures/verify/ and Tests/Fixtures/safetensors/ (READMEs beside them):
  * flat h5py state dicts: every dtype and storage path the reader handles, and a small torchvision
    DenseNet's state dict;
  * three tiny keras.applications models (a ResNet v1, the Keras 2.2 Caffe-named ResNet50 layout, a
    DenseNet) with seeded random weights and randomised batch-norm statistics, saved every way Keras
    saves them: Keras 3 `.weights.h5` (with and without the layers' `name` attributes), Keras 3's legacy
    `.h5` writer (weights-only and full model), and Keras 2-style files written with h5py (`:0` weight
    names, chunked `layer_names0/1` attributes, fixed- and variable-length strings, float16 / float64 /
    big-endian / chunked-gzip datasets);
  * files that must be refused: a Theano-backend file, a Keras 1 file with channels-first kernels;
  * the reference activations of each model, computed by Keras itself from the saved file
    (tools/reference_taps.py), and the keras.applications layer order of the full-size models;
  * torch references for `verify` (verify/), and files written by the safetensors library (safetensors/).
Deterministic: seeded weights and inputs; h5py files carry no timestamps (track_times=False).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import sys

os.environ["KERAS_BACKEND"] = "torch"
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import reference_taps as rt  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "Fixtures" / "hdf5"
VERIFY = ROOT / "Tests" / "Fixtures" / "verify"
SAFE = ROOT / "Tests" / "Fixtures" / "safetensors"
H, W = 32, 40
BATCH = 2
SEED = 7

CONFIGS = {
    "keras_resnet_tiny": dict(family="resnet", block="Bottleneck", layers=[2, 1, 1, 1], groups=1, width_per_group=64, stem_width=64,
                              stage_widths=[2, 4, 8, 16], num_classes=10, flavor="keras"),
    "keras_resnet_caffe_tiny": dict(family="resnet", block="Bottleneck", layers=[2, 1, 1, 1], groups=1, width_per_group=64, stem_width=64,
                                    stage_widths=[2, 4, 8, 16], num_classes=10, flavor="keras-caffe"),
    "keras_densenet_tiny": dict(family="densenet", growth_rate=8, block_config=[2, 1, 1, 1], num_init_features=64, bn_size=4, num_classes=10,
                                flavor="keras"),
}


def randomise(model, seed: int) -> None:
    """Seeded weights: He-normal kernels, small biases, batch-norm gamma/variance in [0.5, 1.5]."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        cls = layer.__class__.__name__
        values = []
        for v in layer.weights:
            shape = tuple(v.shape)
            name = v.path.split("/")[-1]
            if cls == "BatchNormalization":
                if name in ("gamma", "moving_variance"):
                    values.append(rng.uniform(0.5, 1.5, shape))
                else:
                    values.append(rng.normal(0, 0.1, shape))
            elif name == "kernel":
                fan_in = int(np.prod(shape[:-1]))
                values.append(rng.normal(0, np.sqrt(2.0 / fan_in), shape))
            else:
                values.append(rng.normal(0, 0.1, shape))
        if values:
            layer.set_weights([a.astype(np.float32) for a in values])


def round_layer(model, name: str, dtype) -> None:
    """Rounds a layer's kernel through `dtype` so a file storing it in that type holds the model's values."""
    layer = model.get_layer(name)
    ws = layer.get_weights()
    ws[0] = ws[0].astype(dtype).astype(np.float32)
    layer.set_weights(ws)


def weighted_layers(model):
    return [layer for layer in model.layers if layer.weights]


def write_keras2(path, model, *, keras_version="2.2.4", backend="tensorflow", suffix=":0", dtypes=None, gzip=(), split_layer_names=True,
                 vlen_weight_names=()):
    """A Keras 2-style weights file written with h5py, as keras/engine/saving.py laid them out."""
    dtypes = dtypes or {}
    with h5py.File(path, "w", track_order=False) as f:
        names = [layer.name.encode() for layer in model.layers]
        if split_layer_names:
            half = len(names) // 2
            f.attrs["layer_names0"] = np.array(names[:half])
            f.attrs["layer_names1"] = np.array(names[half:])
        else:
            f.attrs["layer_names"] = np.array(names)
        if backend is not None:
            f.attrs["backend"] = backend.encode()
        if keras_version is not None:
            f.attrs["keras_version"] = keras_version.encode()
        for layer in sorted(model.layers, key=lambda x: x.name):
            g = f.create_group(layer.name)
            wnames = [f"{layer.name}/{v.path.split('/')[-1]}{suffix}" for v in layer.weights]
            if layer.name in vlen_weight_names:
                g.attrs.create("weight_names", wnames, dtype=h5py.string_dtype())
            else:
                g.attrs["weight_names"] = np.array([n.encode() for n in wnames])
            for wn, v in zip(wnames, layer.weights):
                value = np.array(v.numpy(), dtype=np.float32)
                dt = dtypes.get(wn.split(":")[0], "<f4")
                kwargs = dict(track_times=False)
                if wn.split(":")[0] in gzip:
                    kwargs.update(chunks=True, compression="gzip")
                g.create_dataset(wn, data=value.astype(dt), dtype=dt, **kwargs)


def save_keras3(model, path):
    model.save_weights(str(path))


def save_legacy(model, path):
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


def strip_names(src, dst):
    shutil.copyfile(src, dst)
    with h5py.File(dst, "a") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Group) and name.endswith("vars") and "name" in obj.attrs:
                del obj.attrs["name"]
        f.visititems(visit)


def check_against(model, c, path, expected):
    """Keras itself loads `path` into a fresh model and must reproduce `expected`. (Keras on the torch
    backend cannot take big-endian arrays, so a file holding them is read with h5py, by layer name.)"""
    if path.name == "keras2_resnet_tf.h5":
        fresh = rt.keras_model(c, (H, W, 3))
        with h5py.File(path, "r") as f:
            for layer in fresh.layers:
                if layer.weights:
                    g = f[layer.name]
                    names = [n.decode() if isinstance(n, bytes) else n for n in g.attrs["weight_names"]]
                    layer.set_weights([np.asarray(g[n], dtype=np.float32) for n in names])
        taps = rt.keras_taps(fresh, c, rt.deterministic_input(BATCH, H, W, SEED))
    else:
        x, taps, _ = rt.reference(str(path), c, BATCH, H, W, SEED)
    for k, v in expected.items():
        if not torch.allclose(taps[k], v, rtol=0, atol=1e-5 * max(1.0, float(v.abs().max()))):
            raise SystemExit(f"{path.name}: Keras reading the file back differs at {k}")


def make_keras_fixtures():
    import keras

    written = []
    configs = {}
    for name, raw in CONFIGS.items():
        c = rt.full_config(name, None) if name in rt.BUILTIN else dict(raw, name=name)
        configs[name] = raw
        keras.utils.set_random_seed(SEED)
        model = rt.keras_model(c, (H, W, 3))
        randomise(model, seed=len(name))
        files = []
        if name == "keras_resnet_tiny":
            # Values the Keras 2-style file stores in narrower types are rounded first, so every file holds the same model.
            round_layer(model, "conv2_block1_2_conv", np.float16)
        x = rt.deterministic_input(BATCH, H, W, SEED)
        taps = rt.keras_taps(model, c, x)
        if name == "keras_resnet_tiny":
            save_keras3(model, OUT / "keras3_resnet.weights.h5")
            strip_names(OUT / "keras3_resnet.weights.h5", OUT / "keras3_resnet_noname.weights.h5")
            save_legacy(model, OUT / "keras3_legacy_resnet.h5")
            model.save(str(OUT / "keras3_full_resnet.h5"))
            write_keras2(OUT / "keras2_resnet_tf.h5", model,
                         dtypes={"conv1_conv/kernel": "<f8", "conv2_block1_1_conv/kernel": ">f4", "conv2_block1_2_conv/kernel": "<f2",
                                 "conv2_block1_0_bn/moving_variance": ">f8"},
                         gzip={"predictions/kernel"}, vlen_weight_names={"conv1_conv", "conv3_block1_3_bn"})
            files = ["keras3_resnet.weights.h5", "keras3_resnet_noname.weights.h5", "keras3_legacy_resnet.h5", "keras3_full_resnet.h5",
                     "keras2_resnet_tf.h5"]
        elif name == "keras_resnet_caffe_tiny":
            write_keras2(OUT / "keras22_resnet_caffe.h5", model, split_layer_names=False)
            files = ["keras22_resnet_caffe.h5"]
        else:
            save_keras3(model, OUT / "keras3_densenet.weights.h5")
            save_legacy(model, OUT / "keras3_legacy_densenet.h5")
            files = ["keras3_densenet.weights.h5", "keras3_legacy_densenet.h5"]
        for fname in files:
            check_against(model, c, OUT / fname, taps)
        rt.write_reference(str(OUT / f"{name}.ref.safetensors"), x, taps, {
            "arch": name, "checkpoint": files[0], "checkpoint_sha256": rt.sha256(OUT / files[0]),
            "framework": f"keras {keras.__version__} (torch backend)",
            "input": f"torch.randn({BATCH}, 3, {H}, {W}) from torch.Generator seed {SEED}",
            "taps": ",".join(taps), "command": "tools/make_hdf5_fixtures.py", "files": ",".join(files),
        })
        written += files + [f"{name}.ref.safetensors"]
    # The small torchvision DenseNet of flat_small_densenet.h5 (tools/make_goldens.py's small_densenet).
    configs["small_densenet"] = json.loads((ROOT / "Tests/Fixtures/golden/small/configs.json").read_text())["small_densenet"]
    (OUT / "configs.json").write_text(json.dumps(configs, indent=2, sort_keys=True) + "\n")

    # Refused inputs.
    with h5py.File(OUT / "keras2_theano.h5", "w") as f:
        f.attrs["layer_names"] = np.array([b"conv1_conv"])
        f.attrs["backend"] = b"theano"
        f.attrs["keras_version"] = b"2.0.8"
        g = f.create_group("conv1_conv")
        g.attrs["weight_names"] = np.array([b"conv1_conv/kernel:0"])
        g.create_dataset("conv1_conv/kernel:0", data=np.zeros((1, 1, 3, 2), np.float32), track_times=False)
    with h5py.File(OUT / "keras1_channels_first.h5", "w") as f:
        # Keras 1 (no keras_version / backend attributes), 'th' dim ordering: [out, in, kh, kw].
        f.attrs["layer_names"] = np.array([b"conv2_block1_1_conv"])
        g = f.create_group("conv2_block1_1_conv")
        g.attrs["weight_names"] = np.array([b"conv2_block1_1_conv_W", b"conv2_block1_1_conv_b"])
        rng = np.random.default_rng(1)
        g.create_dataset("conv2_block1_1_conv_W", data=rng.normal(0, 1, (2, 64, 1, 1)).astype(np.float32), track_times=False)
        g.create_dataset("conv2_block1_1_conv_b", data=np.zeros(2, np.float32), track_times=False)
    written += ["keras2_theano.h5", "keras1_channels_first.h5"]

    # keras.applications' layer order of the full-size models (Keras 3 numbers its automatic names by it).
    order = {}
    for arch, ctor in [("keras_resnet50", keras.applications.ResNet50), ("keras_resnet101", keras.applications.ResNet101),
                       ("keras_resnet152", keras.applications.ResNet152), ("keras_densenet121", keras.applications.DenseNet121),
                       ("keras_densenet169", keras.applications.DenseNet169), ("keras_densenet201", keras.applications.DenseNet201)]:
        m = ctor(weights=None)
        order[arch] = [layer.name for layer in m.layers if layer.weights]
        del m
    (OUT / "keras_layer_order.json").write_text(json.dumps(order, indent=1) + "\n")
    written += ["configs.json", "keras_layer_order.json"]
    return written


def make_flat_fixtures():
    expected = {}
    rng = np.random.default_rng(11)
    arrays = {
        "a.f32": rng.normal(0, 1, (2, 3)).astype("<f4"),
        "b.f16": rng.normal(0, 1, (4,)).astype("<f2"),
        "c.f64": rng.normal(0, 1, (2, 2)).astype("<f8"),
        "d.be_f32": rng.normal(0, 1, (3,)).astype(">f4"),
        "e.be_f64": rng.normal(0, 1, (2,)).astype(">f8"),
        "f.scalar_i64": np.array(7, dtype="<i8"),
        "g.bool": np.array([True, False, True]),
        "h.u8": np.array([0, 1, 254, 255], dtype=np.uint8),
        "i.chunked_gzip": rng.normal(0, 1, (8, 5)).astype("<f4"),
        "j.empty": np.zeros((0, 3), dtype="<f4"),
        "k.be_i32": np.array([-2, 70000], dtype=">i4"),
    }
    with h5py.File(OUT / "flat_dtypes.h5", "w") as f:
        for k, v in arrays.items():
            kwargs = dict(chunks=(4, 5), compression="gzip") if k == "i.chunked_gzip" else {}
            f.create_dataset(k, data=v, track_times=False, **kwargs)
        f.attrs["source"] = "tools/make_hdf5_fixtures.py"  # variable-length UTF-8
        f.attrs["note"] = np.bytes_(b"fixed-length bytes")
    for k, v in arrays.items():
        expected[k] = dict(dtype=str(v.dtype.newbyteorder("=").name), shape=list(v.shape),
                           values=[float(x) for x in v.astype(np.float64).reshape(-1)])
    (OUT / "flat_dtypes.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")

    # A torchvision DenseNet's state dict the way h5py users save one (dotted names, 0-d num_batches_tracked).
    sd = rt.load_torch_state(str(ROOT / "Tests/Fixtures/golden/small/small_densenet.pth"))
    with h5py.File(OUT / "flat_small_densenet.h5", "w") as f:
        for k, v in sd.items():
            f.create_dataset(k, data=v.numpy(), track_times=False)
    # Links other than hard links must not be followed (an external link names another file).
    with h5py.File(OUT / "flat_links.h5", "w") as f:
        f.create_dataset("w", data=np.ones(2, np.float32), track_times=False)
        f["soft"] = h5py.SoftLink("/w")
        f["external"] = h5py.ExternalLink("/etc/passwd", "/x")
    return ["flat_dtypes.h5", "flat_dtypes.json", "flat_small_densenet.h5", "flat_links.h5"]


def make_safetensors_fixtures():
    """Files written by the reference safetensors library (0.8), for reader and byte-for-byte writer tests."""
    from safetensors.torch import save_file

    SAFE.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(5)
    tensors = {
        "a.bool": torch.tensor([True, False, True]),
        "b.half": torch.randn(3, 2, generator=g).half(),
        "c.f32": torch.randn(2, 3, generator=g),
        "d.i64": torch.tensor(42, dtype=torch.int64),
        "e.f32": torch.randn(4, generator=g),
        "f.bf16": torch.randn(5, generator=g).bfloat16(),
        "g.empty": torch.zeros(0, 4),
        "h.u8": torch.tensor([1, 2, 255], dtype=torch.uint8),
        "i.f64": torch.randn(2, generator=g, dtype=torch.float64),
        "j.i32": torch.tensor([-5, 6], dtype=torch.int32),
    }
    save_file(tensors, str(SAFE / "python_plain.safetensors"))
    save_file({"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}, str(SAFE / "python_metadata.safetensors"),
              metadata={"format": "pt", "note": "quote \" backslash \\ unicode \u00e9"})
    expected = {k: dict(dtype=str(v.dtype).replace("torch.", ""), shape=list(v.shape), values=[float(x) for x in v.float().reshape(-1)])
                for k, v in tensors.items()}
    (SAFE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    return ["python_plain.safetensors", "python_metadata.safetensors", "expected.json"]


def make_verify_fixtures():
    """A torch reference for the verify CLI tests: the small torchvision DenseNet of flat_small_densenet.h5."""
    VERIFY.mkdir(parents=True, exist_ok=True)
    name = "small_densenet"
    ckpt = OUT / "flat_small_densenet.h5"
    c = rt.full_config(name, str(OUT / "configs.json"))
    x, taps, framework = rt.reference(str(ckpt), c, BATCH, H, W, SEED)
    rt.write_reference(str(VERIFY / "flat_small_densenet.ref.safetensors"), x, taps, {
        "arch": name, "checkpoint": ckpt.name, "checkpoint_sha256": rt.sha256(ckpt), "framework": framework,
        "input": f"torch.randn({BATCH}, 3, {H}, {W}) from torch.Generator seed {SEED}", "taps": ",".join(taps),
        "command": f"tools/reference_taps.py Tests/Fixtures/hdf5/flat_small_densenet.h5 --arch {name} "
                   f"--arch-config Tests/Fixtures/hdf5/configs.json --batch {BATCH} --size {H}x{W} --seed {SEED}",
    })
    return ["flat_small_densenet.ref.safetensors"]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    written = make_flat_fixtures() + make_keras_fixtures()
    verify = make_verify_fixtures()
    safe = make_safetensors_fixtures()
    for path in list(OUT.iterdir()) + list(VERIFY.iterdir()) + list(SAFE.iterdir()):
        path.chmod(0o644)
    total = sum((OUT / n).stat().st_size for n in written) + sum((VERIFY / n).stat().st_size for n in verify) \
        + sum((SAFE / n).stat().st_size for n in safe)
    print(f"wrote {len(written)} files to {OUT.relative_to(ROOT)}, {len(verify)} to {VERIFY.relative_to(ROOT)}, "
          f"{len(safe)} to {SAFE.relative_to(ROOT)}: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
