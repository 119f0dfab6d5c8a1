"""Scale-out: a local Spark standalone cluster for development and tests (`wanderlens cluster start|stop|status`)."""

from wanderlens.cluster.standalone import DEFAULT_DIR, StandaloneCluster, spark_home

__all__ = ["DEFAULT_DIR", "StandaloneCluster", "spark_home"]
