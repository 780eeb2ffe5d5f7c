from django.apps import AppConfig
from django.db.models.signals import pre_delete


class AnalysisConfig(AppConfig):
    name = "analysis"
    verbose_name = "Sales analysis"

    def ready(self):
        from queueapp.engine import Job

        from . import services

        def remove_files(sender, instance, **kwargs):
            services.delete_files(instance)

        # The retention cleanup deletes finished jobs through the ORM: their uploads and reports go too.
        pre_delete.connect(remove_files, sender=Job, dispatch_uid="analysis.remove_files", weak=False)
