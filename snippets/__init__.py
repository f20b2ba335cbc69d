"""Copy-ready utilities for the deployment cookbook: one topic per file, each file usable alone."""
