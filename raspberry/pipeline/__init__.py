"""Over the stages: the build plan (what a shard reads, whether it can run, whether a kept result
is stale) and the build's estimate (each stage's hook summed and priced, and a pilot's
measurements)."""
