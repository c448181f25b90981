"""One router module per resource: runs (and their events and artifacts), sweeps, datasets, catalog."""
