"""Model layer: networks with their loss terms, bulk training and the bulk → cell transfer (every drug of a
bulk model at once, drugs as columns), the cell model and device handling."""
