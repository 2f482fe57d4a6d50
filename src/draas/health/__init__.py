"""Seeing the sites: probes (I/O, at the edge) and detectors (pure: results in, states out)."""
