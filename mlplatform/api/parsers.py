"""The REST API's JSON parser: DRF's, refusing a document nested deeper than
mlplatform.jsondepth allows (400) before Python's recursive parser sees it."""

import io

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from mlplatform import jsondepth


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            jsondepth.check(raw)
        except jsondepth.TooDeep as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        return super().parse(io.BytesIO(raw), media_type, parser_context)
