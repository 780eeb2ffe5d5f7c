class RetryLater(Exception):
    """A transient problem: run the job again later (after `after` seconds, or the kind's backoff)."""

    def __init__(self, reason="", after=None):
        super().__init__(reason)
        self.reason = reason
        self.after = after


class PermanentError(Exception):
    """A problem that no retry fixes: the job fails at once with this message."""


class YieldSlice(Exception):
    """The handler used its time slice: continue from the checkpoint after `after` seconds.

    A yield is not a failed attempt and does not count against max_attempts."""

    def __init__(self, after=0, reason="time slice used"):
        super().__init__(reason)
        self.after = after
        self.reason = reason


class JobCancelled(Exception):
    """Raised inside a handler (by ctx.raise_if_cancelled or ctx.progress) when a cancel was requested."""


class LeaseLost(Exception):
    """The job was taken away from this worker (its lease expired and it was requeued): stop, write nothing."""
