"""Model layer: networks, their loss terms and training (moving here from the flat package)."""
