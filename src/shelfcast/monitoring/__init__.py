"""Monitoring: drift and live-accuracy statistics, and the policy that turns them into decisions (pure)."""
