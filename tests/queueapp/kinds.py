"""Job kinds used by the engine's tests (registered in the test process only)."""

from queueapp.engine import PermanentError, RetryLater, YieldSlice, exponential, job_kind

CALLS = {}


@job_kind("test.flaky", max_attempts=3, backoff=exponential(base=60, cap=100, jitter=0))
def flaky(ctx):
    """Asks to be retried until it has been called `fail_times` times."""
    CALLS[ctx.job_id] = CALLS.get(ctx.job_id, 0) + 1
    if ctx.attempt <= ctx.params.get("fail_times", 0):
        raise RetryLater(reason=f"not ready on attempt {ctx.attempt}", after=ctx.params.get("after"))
    return {"attempt": ctx.attempt}


@job_kind("test.boom", max_attempts=2, backoff=exponential(base=30, cap=600, jitter=0))
def boom(ctx):
    raise ValueError("the input is broken")


@job_kind("test.permanent", max_attempts=5)
def permanent(ctx):
    raise PermanentError("Campaign 42 does not exist; choose another campaign.")


@job_kind("test.sliced", max_attempts=1, slice_seconds=0)
def sliced(ctx):
    """Does one unit per slice and yields until `units` are done: yields never use up attempts."""
    done = (ctx.checkpoint or {}).get("done", 0) + 1
    ctx.save_checkpoint({"done": done})
    ctx.progress(done, total=ctx.params["units"])
    if done < ctx.params["units"]:
        raise YieldSlice(after=ctx.params.get("after", 0))
    return {"done": done}


@job_kind("test.stepped", steps=("Read", "Count", "Report"))
def stepped(ctx):
    ctx.progress(1, total=3, step=1)
    ctx.progress(2, step=2)
    if ctx.params.get("stop_in_step_2"):
        raise PermanentError("stopped in step 2")
    ctx.progress(3, step=3)
    return {}


@job_kind("test.single", concurrency=1)
def single(ctx):
    return {}


@job_kind("test.rated", rate_per_minute=2)
def rated(ctx):
    return {}
