from django.dispatch import Signal

# Sent after a job reaches succeeded, failed or cancelled and the change is committed. Argument: job.
# Domain apps connect to it to update their own records (e.g. an import log's status).
job_finished = Signal()
