"""Model fields shared by the apps."""

from django.db import models


class IdentifierField(models.CharField):
    """A CharField compared byte by byte: run ids and metric, param and tag keys, which
    are matched whole and never sorted for people. PostgreSQL otherwise compares text
    with the database's locale (strcoll on every b-tree step), a third of the cost of
    inserting a batch of metric points; with collation "C" it compares bytes. Foreign
    keys to such a field take its collation. SQLite compares bytes already."""

    def db_parameters(self, connection):
        params = super().db_parameters(connection)
        if connection.vendor == "postgresql" and not self.db_collation:
            params["collation"] = "C"
        return params
