"""JSON in, refusing what the database could not store.

PostgreSQL stores no NUL character in text or JSON, and UTF-8 has no lone surrogates
(which JSON's \\ud800 escapes can produce): such a body would fail deep in a write with a
server error, so it is refused at the door with a 400 that says why.
"""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        problem = unstorable_text(data)
        if problem:
            raise ParseError(f"The JSON body has {problem}, which cannot be stored")
        return data


def unstorable_text(value) -> str:
    """Return what makes the value unstorable as text, or "" when nothing does."""
    if isinstance(value, str):
        if "\x00" in value:
            return "a NUL character (\\u0000)"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "a lone surrogate escape (\\ud800-\\udfff)"
        return ""
    if isinstance(value, dict):
        for key, item in value.items():
            problem = unstorable_text(key) or unstorable_text(item)
            if problem:
                return problem
    elif isinstance(value, list):
        for item in value:
            problem = unstorable_text(item)
            if problem:
                return problem
    return ""
