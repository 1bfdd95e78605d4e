from source_iterable.source import SourceIterable

__all__ = ["SourceIterable"]
