"""Model layer: networks with their loss terms, bulk training, bulk → cell transfer, the cell model
and device handling."""
