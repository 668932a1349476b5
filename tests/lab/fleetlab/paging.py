"""NextToken paging for every lab listing (moto's PaginatedResult does not work for SSM).

A token names the sort key of the last item served, not an offset, so a listing stays correct when items come and
go between calls (AWS's tokens are opaque; clients may rely on nothing else). Items are given in key order and
consumed lazily: a page costs the items it looks at, not the whole listing. Without a key, items are paged by
position. A token the lab did not issue is rejected with the operation's documented error (InvalidNextToken where
the model lists it, ValidationException otherwise). Where AWS documents no default page size, the caller's
default applies, capped at the model's MaxResults maximum.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Callable, Iterable

from . import model
from .errors import InvalidNextToken, ValidationException

Key = Callable[[object], "str | tuple[str, ...]"]
MODEL_MAX = 1_000_000  # as default_size: the model's MaxResults maximum


def _as_tuple(key: str | tuple[str, ...]) -> tuple[str, ...]:
    return (key,) if isinstance(key, str) else tuple(key)


def _token_error(operation: str) -> type:
    errors = {shape.name for shape in model.operation_model(operation).error_shapes}
    return InvalidNextToken if "InvalidNextToken" in errors else ValidationException


def _encode(key: tuple[str, ...]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": list(key)}).encode()).decode()


def _decode(token: str, operation: str) -> tuple[str, ...]:
    return token_key(token, _token_error(operation))


def token_key(token: str, error: type) -> tuple[str, ...]:
    """The key a lab token names (the last item served); `error` for a token the lab did not issue. For listings of
    other services, whose paging members and error codes differ (Page(size, token_key(...)).take)."""
    try:
        after = json.loads(base64.urlsafe_b64decode(token.encode()))["after"]
        if isinstance(after, list) and after and all(isinstance(part, str) for part in after):
            return tuple(after)
    except (ValueError, KeyError, TypeError, binascii.Error):
        pass
    raise error("The specified token isn't valid.")


@dataclass(frozen=True)
class Page:
    """The part of a sorted listing one request asks for: items after the token's key, at most `size`."""

    size: int
    after: tuple[str, ...] | None

    @classmethod
    def of(cls, params: dict, operation: str, default_size: int = 50) -> Page:
        limit = model.operation_model(operation).input_shape.members.get("MaxResults")
        if limit is not None:
            default_size = min(default_size, limit.metadata.get("max", default_size))
        token = params.get("NextToken")
        return cls(params.get("MaxResults") or default_size, _decode(token, operation) if token else None)

    def wants(self, key: str | tuple[str, ...]) -> bool:
        return self.after is None or _as_tuple(key) > self.after

    def take(self, items: Iterable, key: Key) -> tuple[list, str | None]:
        """Up to `size` of `items` (in key order, already past `after`) and the next token when more follow."""
        chunk: list = []
        for item in items:
            if len(chunk) == self.size:
                return chunk, _encode(_as_tuple(key(chunk[-1])))
            chunk.append(item)
        return chunk, None


def page(params: dict, operation: str, member: str, items: Iterable, key: Key | None = None,
         default_size: int = 50) -> dict:
    """`{member: the requested page, "NextToken": ...}` of `items` (in `key` order, or by position)."""
    wanted = Page.of(params, operation, default_size)
    if key is None:
        positioned = ((f"{index:09d}", item) for index, item in enumerate(items))
        chunk, token = wanted.take((p for p in positioned if wanted.wants(p[0])), lambda p: p[0])
        chunk = [item for _, item in chunk]
    else:
        chunk, token = wanted.take((item for item in items if wanted.wants(key(item))), key)
    return {member: chunk, **({"NextToken": token} if token else {})}
