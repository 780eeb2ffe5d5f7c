from django.core.management.base import BaseCommand, CommandError

from ebay.fake_server import FakeEbayServer


def _ids(value):
    return {part.strip() for part in (value or "").split(",") if part.strip()}


class Command(BaseCommand):
    help = ("Run the fake eBay server (OAuth, Taxonomy, Marketing, Inventory publishOffer) on loopback. "
            "Faults can be set here or later with POST /__fake__/faults; GET /__fake__/state shows counters.")

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="Interface to bind (default loopback).")
        parser.add_argument("--port", type=int, default=8765, help="Port (0: any free port).")
        parser.add_argument("--seed", type=int, default=395, help="Seed of the deterministic category tree.")
        parser.add_argument("--sync-delay", type=float, default=90,
                            help="Seconds a listing answers 35048 after publishOffer (default 90).")
        parser.add_argument("--not-found", default="", help="Category ids whose aspects answer 404 (comma list).")
        parser.add_argument("--quota-limit", type=int, default=None,
                            help="API calls allowed per quota window; then 429/2001 until it resets.")
        parser.add_argument("--quota-window", type=float, default=60, help="Quota window in seconds.")
        parser.add_argument("--latency", type=float, default=0, help="Seconds every API call takes.")

    def handle(self, *args, **options):
        if options["host"] not in {"127.0.0.1", "localhost", "::1"}:
            raise CommandError("The fake eBay server only binds loopback (127.0.0.1, ::1, localhost).")
        server = FakeEbayServer(host=options["host"], port=options["port"], seed=options["seed"])
        server.state.configure(
            sync_delay_seconds=options["sync_delay"], not_found_categories=_ids(options["not_found"]),
            quota_limit=options["quota_limit"], quota_window_seconds=options["quota_window"],
            response_delay_seconds=options["latency"],
        )
        self.stdout.write(f"Fake eBay server on {server.url} ({len(server.state.nodes) - 1} categories, "
                          f"tree 0 for EBAY_US). Ctrl-C stops it.")
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.httpd.server_close()
