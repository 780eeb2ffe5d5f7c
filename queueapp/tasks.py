"""The functions django-q2 runs. Thin: the engine's logic lives in runner, dispatcher and services."""

from . import dispatcher, runner, services


def run_job(job_id):
    return runner.run_job(job_id)


def tick():
    return dispatcher.tick()


def cleanup(days=None):
    return {"deleted": services.cleanup(days)}
