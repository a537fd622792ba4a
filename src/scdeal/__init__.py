"""scdeal: single-cell drug response prediction by deep transfer learning from bulk cell-line screens. `scdeal.tl`
holds the Python API (`scdeal.tl.predict`, `scdeal.tl.screen`, `scdeal.tl.explain`) and `scdeal.data.BulkData` the
bulk lines; both load on first use, so `import scdeal` stays cheap."""
import importlib

__version__ = "0.1.0"
__all__ = ["data", "model", "pipeline", "tl"]


def __getattr__(name: str):
    """The layer `name` (data, model, tl, pipeline), imported on first use."""
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
