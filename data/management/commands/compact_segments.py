"""Index sealed segments that have no row yet and compact sealed segments to Parquet
(the beat runs the same every minute)."""

from django.core.management.base import BaseCommand

from data.segments import segments_compact_pending


class Command(BaseCommand):
    help = "Compact sealed archive segments to Parquet (with their sha256)."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=1000)

    def handle(self, *args, limit, **options):
        self.stdout.write(f"Compacted {segments_compact_pending(limit=limit)} segment(s).")
