"""Field types every request model shares, so no string reaches the database that it cannot
store or compare: PostgreSQL text and JSONB refuse NUL characters, and no driver can encode a
lone UTF-16 surrogate (JSON's `"\\ud800"`) as UTF-8. Each such string is a 4xx naming its field,
never a driver error. Every `str` in services/gateway/schemas.py and query.py is `Text`."""

from typing import Annotated

from pydantic import AfterValidator


def storable(value: str) -> str:
    """`value`, if a database can store and compare it; ValueError otherwise."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


Text = Annotated[str, AfterValidator(storable)]
