"""Dataset adapters, looked up by the name given to `shelfcast ingest --source`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shelfcast.data.sources.base import RawPart, Source, SourceData
from shelfcast.data.sources.branch_csv import BranchCsvSource
from shelfcast.data.sources.canonical import CanonicalSource
from shelfcast.data.sources.freshretailnet import FreshRetailNetSource
from shelfcast.data.sources.generic import GenericSource
from shelfcast.data.sources.store_item import StoreItemSource
from shelfcast.data.sources.walmart import WalmartSource
from shelfcast.errors import ConfigError

SOURCES: dict[str, Callable[..., Source]] = {
    BranchCsvSource.name: BranchCsvSource,
    CanonicalSource.name: CanonicalSource,
    FreshRetailNetSource.name: FreshRetailNetSource,
    GenericSource.name: GenericSource,
    StoreItemSource.name: StoreItemSource,
    WalmartSource.name: WalmartSource,
}


def get_source(name: str, **options: Any) -> Source:
    """An adapter by name, with its options; unknown names list the valid ones."""
    try:
        factory = SOURCES[name]
    except KeyError:
        raise ConfigError(f"unknown source {name!r}; expected one of {', '.join(sorted(SOURCES))}") from None
    return factory(**options)


__all__ = ["SOURCES", "RawPart", "Source", "SourceData", "get_source"]
