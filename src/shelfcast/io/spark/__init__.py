"""Apache Spark: the session, the lake's tables as Spark frames, Polars functions run per group of series, and
XGBoost trained on Spark. pyspark is the optional `spark` extra: nothing here imports it at import time."""
