"""Data layer: readers of the public formats, bulk and single-cell preparation, species mapping, the
shared feature space, the simulator, and atomic writers."""
