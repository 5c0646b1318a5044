"""Compositions of jobs: the pipeline, the Prefect flows, the demo, the policy acting on monitoring, replays."""
