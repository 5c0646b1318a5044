"""The FastAPI service: stockout risk on request, forecasts and reorder advice from the batch predictions."""
