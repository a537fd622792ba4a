"""Data layer: readers of the public formats, bulk and single-cell preparation, the bulk lines as the models
read them (`BulkData`), the AnnData keys, species mapping, the shared feature space, the simulator, and
atomic writers."""


def __getattr__(name: str):
    """`BulkData`, imported on first use (the readers stay light for the command line)."""
    if name == "BulkData":
        from .bulkdata import BulkData
        return BulkData
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
