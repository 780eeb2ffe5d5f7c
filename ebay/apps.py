from django.apps import AppConfig


class EbayConfig(AppConfig):
    name = "ebay"
    verbose_name = "eBay"

    def ready(self):
        from queueapp.engine import Job, job_finished

        from . import services

        def promotion_finished(sender, job, **kwargs):
            services.on_job_finished(job)

        job_finished.connect(promotion_finished, sender=Job, weak=False,
                             dispatch_uid="ebay.promotion_finished")
