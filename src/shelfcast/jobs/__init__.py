"""One module per pipeline stage, wiring the pure core to the adapters."""
