"""Turns a store's driver errors that mean "the database is unavailable" into StoreUnavailable.

Each store names which of its driver's errors those are; every public method of the store (and
its constructor, and the iterators it returns) then raises StoreUnavailable for them, with a
one-line message naming the database, so that callers handle one exception for both stores.
"""

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from batchgate.storage.base import StoreUnavailable

StoreClass = TypeVar("StoreClass", bound=type)
Classifier = Callable[[Exception], type[StoreUnavailable] | None]


def raises_store_unavailable(classify: Classifier) -> Callable[[StoreClass], StoreClass]:
    """A class decorator; `classify` returns the exception an error becomes, or None."""

    def decorate(cls: StoreClass) -> StoreClass:
        for name, member in list(vars(cls).items()):
            if inspect.isfunction(member) and (name == "__init__" or not name.startswith("_")):
                setattr(cls, name, _translating(member, classify))
        return cls

    return decorate


def _translated(store: Any, error: Exception, classify: Classifier) -> Exception:
    unavailable = classify(error)
    if unavailable is None:
        return error
    where = getattr(store, "location", "the database")
    return unavailable(f"{where} is unavailable: {' '.join(str(error).split())}")


def _translating(method: Callable[..., Any], classify: Classifier) -> Callable[..., Any]:
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def generator(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from method(self, *args, **kwargs)
            except Exception as error:
                translated = _translated(self, error, classify)
                if translated is error:
                    raise
                raise translated from error

        return generator

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as error:
            translated = _translated(self, error, classify)
            if translated is error:
                raise
            raise translated from error

    return call
