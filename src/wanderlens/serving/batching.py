"""Dynamic micro-batching for the REST service: requests that arrive together share one encoder call.

`MicroBatcher` queues jobs and runs them in batches on a few worker threads: a worker that finds the server idle
(no other batch running, nothing else queued) dispatches a lone request at once; under load it gathers what is
queued, waits at most `max_wait_ms` for more, and runs up to `max_size` jobs as one batch. A job whose caller gave
up (504) before its batch started is skipped. `run_batch` answers one result or one exception per job, so a job
that fails does not fail the others.

`BatchFeaturizer` is the batched twin of `LocalFeaturizer.transform_one`: the photos, decoded beforehand (in
parallel, on the decode pool, Pillow draft mode at the encoder's size), go through the image encoder as one array;
the texts through MiniLM as few calls as their lengths allow; the cheap per-row stages (TF-IDF, fusion) run per row.
`embed_texts` pads every text to a multiple of `TEXT_BUCKET` tokens and batches texts of the same padded length
only, so a text's embedding never depends on the other texts of its batch: a photo gets the same numbers alone or
in a batch of 32 (tested; the ONNX image encoder is batch-independent by itself).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wanderlens.io import read_ml_metadata

TEXT_BUCKET = 16  # tokens: texts are padded to a multiple of this, so their embedding is batch-independent


class MicroBatcher:
    """Runs `run_batch(items) -> [result or exception per item]` on batches of submitted items.

    `workers` threads each take a batch at a time; `max_size` caps a batch; `max_wait_ms` is how long a worker
    that already has jobs waits for more while the server is busy (never when it is idle).
    """

    def __init__(self, run_batch: Callable[[list[Any]], Sequence[Any]], max_size: int = 16,
                 max_wait_ms: float = 2.0, workers: int = 1, name: str = "wanderlens-batch") -> None:
        self.run_batch = run_batch
        self.max_size = max(1, int(max_size))
        self.max_wait_s = max(0.0, float(max_wait_ms)) / 1000.0
        self._queue: collections.deque[tuple[Any, Future]] = collections.deque()
        self._cond = threading.Condition()
        self._running = 0  # batches being computed now
        self._gathering = False  # one worker at a time waits for more jobs
        self._closed = False
        self.batches = 0
        self.jobs = 0
        self._threads = [threading.Thread(target=self._loop, name=f"{name}-{i}", daemon=True)
                         for i in range(max(1, int(workers)))]
        for thread in self._threads:
            thread.start()

    def submit(self, item: Any) -> Future:
        """Queue one item; the future gets its result (or its exception)."""
        future: Future = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            self._queue.append((item, future))
            self._cond.notify_all()
        return future

    def close(self) -> None:
        """Stop the workers after the queued jobs are done (idempotent)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)

    @property
    def mean_batch_size(self) -> float:
        return self.jobs / self.batches if self.batches else 0.0

    def _take(self) -> list[tuple[Any, Future]] | None:
        """The next batch (None when closed and drained); waits for more jobs only while the server is busy."""
        with self._cond:
            while not self._queue or self._gathering:
                if self._closed and not self._queue:
                    return None
                self._cond.wait()
            busy = self._running > 0 or len(self._queue) > 1
            batch = [self._queue.popleft() for _ in range(min(self.max_size, len(self._queue)))]
            if busy and len(batch) < self.max_size and self.max_wait_s > 0:
                self._gathering = True
                deadline = time.monotonic() + self.max_wait_s
                while len(batch) < self.max_size and not self._closed:
                    if self._queue:
                        batch.append(self._queue.popleft())
                        continue
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                self._gathering = False
                self._cond.notify_all()
            self._running += 1
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                live = [(item, fut) for item, fut in batch if fut.set_running_or_notify_cancel()]
                if live:
                    self._run(live)
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()

    def _run(self, batch: list[tuple[Any, Future]]) -> None:
        self.batches += 1
        self.jobs += len(batch)
        try:
            results = list(self.run_batch([item for item, _ in batch]))
            if len(results) != len(batch):
                raise RuntimeError(f"run_batch answered {len(results)} results for {len(batch)} jobs")
        except BaseException as exc:  # noqa: BLE001 - the batch failed as a whole: every job gets the error
            results = [exc] * len(batch)
        for (_, fut), res in zip(batch, results, strict=True):
            if isinstance(res, BaseException):
                fut.set_exception(res)
            else:
                fut.set_result(res)


# -- text: batch-independent MiniLM embeddings ----------------------------------------------------------------------
def _pad_to(tensor: Any, width: int, value: int) -> Any:
    """[B, W] token tensor cut or padded (with `value`) to [B, width]."""
    import torch

    if tensor.shape[1] >= width:
        return tensor[:, :width]
    pad = torch.full((tensor.shape[0], width - tensor.shape[1]), value, dtype=tensor.dtype)
    return torch.cat([tensor, pad], dim=1)


def embed_texts(texts: Sequence[str | None], threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(MiniLM embeddings [N, 384] float32, presence [N] 0/1) like `embed_sentences`, but batch-independent.

    The texts are tokenized as `SentenceTransformer.encode` does; each is padded to a multiple of `TEXT_BUCKET`
    tokens and only texts of the same padded length share a forward pass, so every row sees the same shapes alone or
    in a batch (values within ~1e-7 of `embed_sentences`, which pads to the longest text of its batch).
    """
    import torch

    from wanderlens.features.sentence import SENTENCE_DIM, get_sentence_model
    from wanderlens.threads import default_threads, torch_threads

    clean = [(t or "").strip() for t in texts]
    out = np.zeros((len(clean), SENTENCE_DIM), dtype=np.float32)
    present = np.array([bool(t) for t in clean], dtype=np.float64)
    idx = [i for i, t in enumerate(clean) if t]
    if not idx:
        return out, present
    model = get_sentence_model()
    feats = model.preprocess([clean[i] for i in idx])
    mask = feats["attention_mask"]
    width = int(mask.shape[1])
    lengths = mask.sum(dim=1).tolist()
    pad_id = int(getattr(model.tokenizer, "pad_token_id", 0) or 0)
    groups: dict[int, list[int]] = collections.defaultdict(list)
    for row, n in enumerate(lengths):
        groups[-(-int(n) // TEXT_BUCKET) * TEXT_BUCKET].append(row)
    with torch_threads(threads or default_threads()), torch.inference_mode():
        for bucket, rows in groups.items():
            sel = torch.tensor(rows)
            sub = {k: (_pad_to(v[sel], bucket, pad_id if k == "input_ids" else 0)
                       if isinstance(v, torch.Tensor) and v.dim() == 2 and v.shape[1] == width else v)
                   for k, v in feats.items()}
            emb = model(sub)["sentence_embedding"].float().numpy()
            for j, row in enumerate(rows):
                out[idx[row]] = emb[j]
    return out, present


# -- the batched feature path ---------------------------------------------------------------------------------------
def _leaf_stages(stage_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """(class name, metadata) of a saved pipeline's stages, flattened in the order `LocalFeaturizer` runs them."""
    meta = read_ml_metadata(stage_dir)
    kind = meta["class"].rsplit(".", 1)[-1]
    if kind != "PipelineModel":
        return [(kind, meta)]
    out: list[tuple[str, dict[str, Any]]] = []
    for i, uid in enumerate(_param(meta, "stageUids")):
        out.extend(_leaf_stages(stage_dir / "stages" / f"{i}_{uid}"))
    return out


def _param(meta: dict[str, Any], name: str) -> Any:
    if name in meta.get("paramMap", {}):
        return meta["paramMap"][name]
    return meta.get("defaultParamMap", {}).get(name)


@dataclass
class Photo:
    """One photo ready for a batch: its model input (None when it could not be decoded) and its text."""

    pixels: np.ndarray | None
    image_error: str | None
    caption: str | None
    tags: list[str] | None


class BatchFeaturizer:
    """`featurize(photos) -> rows` for many photos at once, with `LocalFeaturizer`'s steps and numbers."""

    def __init__(self, featurizer: Any) -> None:
        from wanderlens.features.encoders import get_encoder, imagenet_labels

        self.featurizer = featurizer
        stages = _leaf_stages(Path(featurizer.path))
        kinds = [k for k, _ in featurizer.steps]
        if [k for k, _ in stages] != kinds:
            raise RuntimeError(f"pipeline stages {[k for k, _ in stages]} differ from the featurizer's {kinds}")
        self.stages = [(kind, meta, step) for (kind, meta), (_, step) in zip(stages, featurizer.steps, strict=True)]
        image = next((m for k, m in stages if k == "ImageEmbedder"), None)
        self.image = None
        if image is not None:
            enc = get_encoder(_param(image, "encoder"))
            self.image = {
                "encoder": enc, "size": int(_param(image, "imageSize")) or enc.input_size,
                "top_k": int(_param(image, "topK")), "batch": max(1, int(_param(image, "batchSize"))),
                "out": _param(image, "outputCol"), "tags": _param(image, "tagsCol"),
                "error": _param(image, "errorCol"), "presence": _param(image, "presenceCol"),
            }
            self.labels = imagenet_labels() if (enc.has_labels and self.image["top_k"] > 0) else None

    def preprocess(self, data: bytes) -> np.ndarray:
        """Decode one photo to the image encoder's input (draft-mode JPEG decoding at the encoder's size)."""
        from wanderlens.features.preprocess import load_and_preprocess

        if self.image is None:
            return np.zeros(0, dtype=np.float32)
        return load_and_preprocess(data, self.image["size"], self.image["encoder"].normalize)

    def featurize(self, photos: Sequence[Photo]) -> list[dict[str, Any]]:
        """The feature rows of `photos` (as `transform_one` gives them), computed batch-wise."""
        rows: list[dict[str, Any]] = [{"caption": p.caption, "tags": p.tags} for p in photos]
        for kind, meta, step in self.stages:
            if kind == "ImageEmbedder":
                self._images(rows, photos)
            elif kind == "SentenceEmbedder":
                self._texts(rows, meta)
            else:
                for row in rows:
                    step(row, None)
        for row in rows:
            row.pop("caption", None)
            row.pop("tags", None)
        return rows

    def _images(self, rows: list[dict[str, Any]], photos: Sequence[Photo]) -> None:
        """The image encoder on every decoded photo at once (chunks of the stage's batch size)."""
        im = self.image
        for row, photo in zip(rows, photos, strict=True):
            row[im["out"]], row[im["tags"]], row[im["error"]], row[im["presence"]] = None, None, photo.image_error, 0.0
        ok = [i for i, p in enumerate(photos) if p.pixels is not None]
        for start in range(0, len(ok), im["batch"]):
            chunk = ok[start:start + im["batch"]]
            emb, probs = im["encoder"].run(np.stack([photos[i].pixels for i in chunk]))
            for j, i in enumerate(chunk):
                row = rows[i]
                if not np.all(np.isfinite(emb[j])):
                    row[im["error"]] = "encoder produced non-finite values"
                    continue
                row[im["out"]], row[im["presence"]] = emb[j].astype(np.float64), 1.0
                if self.labels is not None and probs is not None:
                    top = np.argsort(-probs[j], kind="stable")[:im["top_k"]]
                    row[im["tags"]] = [(self.labels[c], float(probs[j, c])) for c in top]

    @staticmethod
    def _texts(rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
        """MiniLM on every row's caption + tags at once (batch-independent, see `embed_texts`)."""
        from wanderlens.features.text import join_text

        cap, tags = _param(meta, "captionCol"), _param(meta, "tagsCol")
        out, presence = _param(meta, "outputCol"), _param(meta, "presenceCol")
        texts = [join_text(row.get(cap), row.get(tags) if tags else None) for row in rows]
        emb, present = embed_texts(texts)
        for row, vec, flag in zip(rows, emb, present, strict=True):
            row[out], row[presence] = vec.astype(np.float64), float(flag)


# -- the service's batchers -------------------------------------------------------------------------------------------
@dataclass
class DescribeJob:
    """One `/v1/describe` request waiting for its batch: the model version it took, its photo, its file name."""

    served: Any
    photo: Photo
    filename: str | None
    queued_at: float


@dataclass
class SearchJob:
    """One `/v1/search` query waiting for its batch."""

    served: Any
    query: str
    k: int


def _by_model(jobs: Sequence[Any]) -> dict[int, list[int]]:
    """Job positions grouped by the model object they took (a hot swap can put two versions in one queue)."""
    groups: dict[int, list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault(id(job.served), []).append(i)
    return groups


def describe_batch(jobs: Sequence[DescribeJob]) -> list[bytes | BaseException]:
    """Run describe jobs, one batch per model version; each answer is its finished JSON body (bytes)."""
    out: list[bytes | BaseException] = [RuntimeError("not computed")] * len(jobs)
    started = time.perf_counter()
    for positions in _by_model(jobs).values():
        served = jobs[positions[0]].served
        group = [jobs[i] for i in positions]
        answers = served.describe_photos([j.photo for j in group], [j.filename for j in group])
        for i, job, answer in zip(positions, group, answers, strict=True):
            if isinstance(answer, BaseException):
                out[i] = answer
                continue
            answer["timing_ms"]["queue"] = round((started - job.queued_at) * 1000, 2)
            try:
                out[i] = served.encode_json(answer)
            except Exception as exc:  # noqa: BLE001 - this answer only
                out[i] = exc
    return out


def search_batch(jobs: Sequence[SearchJob]) -> list[list[dict[str, Any]] | BaseException]:
    """Embed every query of the batch at once, then look each up in its version's search index."""
    out: list[list[dict[str, Any]] | BaseException] = [RuntimeError("not computed")] * len(jobs)
    vectors, _present = embed_texts([j.query for j in jobs])
    for i, job in enumerate(jobs):
        try:
            out[i] = job.served.travel.search_vector(vectors[i], job.k)
        except Exception as exc:  # noqa: BLE001 - this query only
            out[i] = exc
    return out


class ServiceBatchers:
    """The decode pool and the describe / search batchers of one running service (sizes from `ServingConfig`).

    Decoding runs per request as soon as it arrives, on `decode_threads` threads (default one per core), so photos
    are decoded in parallel and while the previous batch is in the encoders; `inference_workers` threads run
    batches (one per core: each runs the encoders single-threaded, `encoder_threads`).
    """

    def __init__(self, settings: Any) -> None:
        import os
        from concurrent.futures import ThreadPoolExecutor

        cores = os.cpu_count() or 1
        self.decode_pool = ThreadPoolExecutor(max_workers=settings.decode_threads or cores,
                                              thread_name_prefix="wanderlens-decode")
        self.describe = MicroBatcher(describe_batch, settings.batch_max_size, settings.batch_max_wait_ms,
                                     settings.inference_workers, name="wanderlens-describe")
        self.search = MicroBatcher(search_batch, settings.batch_max_size, settings.batch_max_wait_ms, 1,
                                   name="wanderlens-search")

    def close(self) -> None:
        self.describe.close()
        self.search.close()
        self.decode_pool.shutdown(wait=False, cancel_futures=True)

    @staticmethod
    async def run(batcher: MicroBatcher, job: Any) -> Any:
        """Queue `job` on `batcher` and await its answer (cancelling the wait drops a job not started yet)."""
        import asyncio

        return await asyncio.wrap_future(batcher.submit(job))


async def within_limit(work: Awaitable[Any], limit_s: float) -> Any:
    """Await `work`; 504 when it takes longer than the request time limit."""
    import asyncio

    from fastapi import HTTPException

    try:
        return await asyncio.wait_for(work, timeout=limit_s)
    except TimeoutError as exc:
        raise HTTPException(504, f"the request took longer than {limit_s:g} s; try a smaller photo or retry "
                                 "later") from exc
