"""scdeal: single-cell drug response prediction by deep transfer learning from bulk cell-line screens."""

__version__ = "0.1.0"
