import os
from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from ebay import services


class Command(BaseCommand):
    help = "Queue a Promoted Listings ad for a listing (the same queue as POST /api/ebay/promotions)."

    def add_arguments(self, parser):
        parser.add_argument("listing_id")
        parser.add_argument("--ad-rate", required=True, help="Bid percentage, 2.0 to 100.0.")
        parser.add_argument("--campaign", default=None, help="Campaign id (default: the user's default or "
                                                             "single running manual campaign).")
        parser.add_argument("--user", default=os.environ.get("DEMO_USERNAME", "demo"),
                            help="Whose eBay account (default: the demo user).")

    def handle(self, *args, **options):
        listing_id = options["listing_id"]
        if not listing_id.isdigit() or len(listing_id) > 20:
            raise CommandError("The listing id is a number, e.g. 177681098666.")
        try:
            rate = Decimal(options["ad_rate"])
        except InvalidOperation:
            raise CommandError("--ad-rate must be a number from 2.0 to 100.0.")
        if not rate.is_finite() or not Decimal("2.0") <= rate <= Decimal("100.0") or rate != rate.quantize(Decimal("0.1")):
            raise CommandError("--ad-rate must be a number from 2.0 to 100.0 with at most one decimal.")
        if options["campaign"] and not options["campaign"].isdigit():
            raise CommandError("--campaign is a number.")
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user {options['user']!r}; pass --user.")
        try:
            queued = services.queue_promotions(
                user, [{"listing_id": listing_id, "ad_rate": rate, "campaign_id": options["campaign"]}],
                source="command")[0]
        except services.ServiceError as exc:
            raise CommandError(exc.message)
        promotion = queued.promotion
        if queued.created:
            self.stdout.write(f"Queued job {promotion.job_id}: listing {listing_id} at {promotion.ad_rate}% in "
                              f"campaign {promotion.campaign_id}. Status: /api/ebay/promotions/{promotion.job_id}")
        else:
            self.stdout.write(f"Listing {listing_id} already has a pending promotion: job {promotion.job_id}.")
