"""The engine's demonstration kind: shows progress, checkpoints and resumption with no domain code."""

import time

from django.db import transaction
from rest_framework import serializers

from .registry import exponential, job_kind


class CountParams(serializers.Serializer):
    n = serializers.IntegerField(min_value=0, max_value=1_000_000, default=10)
    delay = serializers.FloatField(min_value=0, max_value=60, default=0.1,
                                   help_text="Seconds per step.")


@job_kind("demo.count", schedulable=True, params=CountParams, max_attempts=3,
          backoff=exponential(base=5, cap=60), title="Count to n (demo)")
def count(ctx):
    n, delay = ctx.params["n"], ctx.params["delay"]
    start = (ctx.checkpoint or {}).get("counted", 0)
    if start:
        ctx.event(f"Resuming at {start} of {n}")
    ctx.progress(start, total=n, message=f"Counting to {n}")
    for i in range(start + 1, n + 1):
        time.sleep(delay)
        with transaction.atomic():
            ctx.save_checkpoint({"counted": i})
        ctx.progress(i, message=f"Counted {i} of {n}")
    return {"counted": n, "resumed_from": start}
