"""Benchmark: image and sentence embeddings through Spark (local[2]) vs a plain Python loop, in one run.

Columns (img/s): the ONNX image embedder as a Spark ML stage, the same ONNX model in a plain loop over the same
files, and torch eager in the same loop. Then MiniLM sentences: `SentenceEmbedder` through Spark with its default
call size (32 sentences per torch thread; one thread per task) vs the same model in a loop on all cores, the loop
at its fastest of several call sizes. Also the peak resident memory of the Spark Python workers. Goals: sentences
>= 0.85 x the loop, images >= 1.0 x; worker peak < 1.5 GB with both encoders loaded.
The last line is `image_embed_spark_vs_loop: <ratio>`.

    .venv/bin/python benchmarks/bench_featurize.py [--images 456] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from _timing import best_wall_time

ROOT = Path(__file__).resolve().parents[1]
COCO = ROOT / "examples" / "coco-cc57"


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(p.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def worker_peak_rss_mb(jvm_pid: int) -> float:
    """Largest VmHWM (peak RSS) among this JVM's Python worker processes, in MB."""
    peak = 0.0
    for pid in _descendants(jvm_pid):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"pyspark" not in cmd:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]) / 1024)
    return peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=456, help="images per run (coco-cc57 files, cycled)")
    ap.add_argument("--torch-images", type=int, default=128, help="images for the (slow) torch eager column")
    ap.add_argument("--sentences", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64, help="images per encoder call")
    ap.add_argument("--loop-sentence-batches", type=int, nargs="+", default=[32, 64, 128],
                    help="call sizes tried for the sentence loop; its fastest is the baseline")
    args = ap.parse_args()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

    from pyspark.sql import functions as F

    from wanderlens.features import ImageEmbedder, SentenceEmbedder
    from wanderlens.features.encoders import get_encoder, lite0_onnx_path
    from wanderlens.features.image import embed_images
    from wanderlens.features.sentence import embed_sentences
    from wanderlens.session import get_spark

    files = sorted(str(p) for p in (COCO / "images").glob("*.jpg"))
    paths = [files[i % len(files)] for i in range(args.images)]
    captions = [a["caption"] for a in json.loads((COCO / "captions.json").read_text())["annotations"]]
    texts = [captions[i % len(captions)] for i in range(args.sentences)]
    lite0_onnx_path()  # export once before timing anything
    spark = get_spark(master="local[2]", app_name="bench-featurize")
    cores = spark.sparkContext.defaultParallelism
    load0 = os.getloadavg()[0]

    # Spark: ImageEmbedder over 2 partitions, 1 encoder thread per task; evaluated fully with the noop sink.
    df = spark.createDataFrame([(p,) for p in paths], "image_path string").repartition(cores).cache()
    df.count()
    embedder = ImageEmbedder(batchSize=args.batch_size)

    def spark_images() -> None:
        embedder.transform(df).select("image_embedding", "image_tags").write.format("noop").mode("overwrite").save()

    jvm_pid = int(spark._jvm.java.lang.ProcessHandle.current().pid())
    spark_images()  # warm-up: start the Python workers, load the model
    t_spark = best_wall_time(spark_images, args.repeats)
    peak_image_mb = worker_peak_rss_mb(jvm_pid)  # now, before idle workers time out (60 s)

    # Plain loop: same files, same ONNX model, ONNX Runtime with all cores, decode in the loop.
    get_encoder("efficientnet_lite0", threads=cores)
    embed_images(paths[:8], "efficientnet_lite0", 0, 5, args.batch_size)
    os.environ["WANDERLENS_ENCODER_THREADS"] = str(cores)
    t_loop = best_wall_time(lambda: embed_images(paths, "efficientnet_lite0", 0, 5, args.batch_size), args.repeats)
    torch_paths = paths[: args.torch_images]
    embed_images(torch_paths[:4], "torch", 0, 5, args.batch_size)
    t_torch = best_wall_time(lambda: embed_images(torch_paths, "torch", 0, 5, args.batch_size), 1)

    # Sentences: Spark SentenceEmbedder vs the same MiniLM in a loop.
    sdf = spark.createDataFrame([(t,) for t in texts], "caption string").withColumn(
        "tags", F.lit(None).cast("array<string>")).repartition(cores).cache()
    sdf.count()
    sentencer = SentenceEmbedder()

    def spark_sentences() -> None:
        sentencer.transform(sdf).select("sentence_embedding").write.format("noop").mode("overwrite").save()

    spark_sentences()
    s_spark = best_wall_time(spark_sentences, args.repeats)
    peak_mb = max(peak_image_mb, worker_peak_rss_mb(jvm_pid))
    embed_sentences(texts[:8])
    loop_times = {b: best_wall_time(lambda b=b: embed_sentences(texts, b), args.repeats)
                  for b in args.loop_sentence_batches}
    loop_batch = min(loop_times, key=loop_times.get)
    s_loop = loop_times[loop_batch]

    load1 = os.getloadavg()[0]
    n, nt, ns = len(paths), len(torch_paths), len(texts)
    ratio = (n / t_spark) / (n / t_loop)
    print(f"machine: {os.cpu_count()} CPUs, Spark local[{cores}], batch {args.batch_size}, "
          f"load average {load0:.1f} -> {load1:.1f}")
    print(f"{'images/s':<22}{'spark onnx':>12}{'loop onnx':>12}{'loop torch':>12}")
    print(f"{'efficientnet_lite0':<22}{n / t_spark:>12.1f}{n / t_loop:>12.1f}{nt / t_torch:>12.1f}")
    print(f"{'ratio vs loop onnx':<22}{ratio:>12.2f}{1.0:>12.2f}{(nt / t_torch) / (n / t_loop):>12.2f}")
    print("sentence loop per call size: " + ", ".join(f"{b}: {ns / t:.1f}/s" for b, t in loop_times.items()))
    print(f"{'sentences/s':<22}{'spark':>12}{'loop':>12}  (spark: default call size; loop: {loop_batch} a call)")
    print(f"{'all-MiniLM-L6-v2':<22}{ns / s_spark:>12.1f}{ns / s_loop:>12.1f}")
    print(f"{'ratio vs loop':<22}{s_loop / s_spark:>12.2f}{1.0:>12.2f}")
    print(f"python worker peak RSS: images {peak_image_mb:.0f} MB, images + sentences {peak_mb:.0f} MB "
          f"(goal < 1536 MB) "
          f"{'OK' if peak_mb < 1536 else 'OVER'}")
    print(f"sentence_embed_spark_vs_loop: {s_loop / s_spark:.3f}")
    print(f"image_embed_spark_vs_loop: {ratio:.3f}")
    spark.stop()


if __name__ == "__main__":
    main()
