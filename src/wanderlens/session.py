"""Building the SparkSession: local by default, any master, loopback binding, Arrow on, quiet logs.

Every command and test gets its session from `get_spark`, so the same code runs in local mode and on a cluster
(`--master spark://...` or `WANDERLENS_SPARK_MASTER`).
"""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

DEFAULT_MASTER = "local[*]"


def resolve_master(master: str | None = None) -> str:
    """The master URL to use: the argument, else `WANDERLENS_SPARK_MASTER`, else local mode."""
    return master or os.environ.get("WANDERLENS_SPARK_MASTER") or DEFAULT_MASTER


def get_spark(
    master: str | None = None,
    app_name: str = "wanderlens",
    driver_memory: str | None = None,
    extra_conf: dict[str, str] | None = None,
) -> SparkSession:
    """Return the active SparkSession, creating it with wanderlens' defaults when none is running.

    Driver memory comes from the argument or `WANDERLENS_DRIVER_MEMORY` (default 2g); it only takes effect when
    this call starts the JVM.
    """
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # Executors' Python workers must run the same interpreter (the project's venv) as the driver.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    memory = driver_memory or os.environ.get("WANDERLENS_DRIVER_MEMORY", "2g")
    builder = (
        SparkSession.builder.master(resolve_master(master))
        .appName(app_name)
        .config("spark.driver.memory", memory)
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.pyspark.fallback.enabled", "false")
        # Spark 4.3's columnar input to Python UDFs rejects VectorUDT columns read from Parquet (UNSUPPORTED_DATATYPE).
        .config("spark.sql.execution.arrow.pythonUDF.columnarInput.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", os.environ.get("WANDERLENS_SHUFFLE_PARTITIONS", "8"))
        .config("spark.python.worker.reuse", "true")
        .config("spark.executorEnv.SPARK_LOCAL_IP", "127.0.0.1")
        .config("spark.executorEnv.HF_HUB_OFFLINE", "1")
        .config("spark.executorEnv.TRANSFORMERS_OFFLINE", "1")
    )
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("WANDERLENS_SPARK_LOG_LEVEL", "ERROR"))
    return spark
