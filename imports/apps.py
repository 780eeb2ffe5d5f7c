from django.apps import AppConfig


class ImportsConfig(AppConfig):
    name = "imports"
    verbose_name = "Product and dealer imports"

    def ready(self):
        # Signal receivers: ImportLog follows its job; the SQLite search index follows single edits.
        from . import search, services  # noqa: F401
