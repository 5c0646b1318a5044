"""Features and labels for the models: pure Polars, one code path for training, scoring and serving."""
