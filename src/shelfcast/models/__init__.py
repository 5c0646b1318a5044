"""Forecasting, stockout and replenishment models, and the baselines they must beat (pure)."""
