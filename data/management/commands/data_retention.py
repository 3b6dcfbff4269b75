"""Retention of the raw archive: lists (default) or deletes the sealed segments past
each stream's retention_days; never one a dataset version references, never a stream's
newest segment."""

import json

from django.core.management.base import BaseCommand

from data.models import Stream
from data.segments import stream_retention_apply


class Command(BaseCommand):
    help = "Apply each stream's retention to the archive (a dry run unless --apply)."

    def add_arguments(self, parser):
        parser.add_argument("--apply", action="store_true", help="Delete; without it, only list what would go.")
        parser.add_argument("--stream", help="Only this stream, as <project>/<stream>.")

    def handle(self, *args, apply, stream, **options):
        streams = Stream.objects.select_related("project").exclude(retention_days=0)
        if stream:
            project_slug, _, slug = stream.partition("/")
            streams = streams.filter(project__slug=project_slug, slug=slug)
        for found in streams:
            report = stream_retention_apply(stream=found, actor=None, dry_run=not apply)
            self.stdout.write(json.dumps(report))
