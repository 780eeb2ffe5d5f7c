from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class QueueappConfig(AppConfig):
    name = "queueapp"
    verbose_name = "Jobs"

    def ready(self):
        # Every installed app's jobs.py registers its kinds, in the web process and in every worker alike.
        autodiscover_modules("jobs")
