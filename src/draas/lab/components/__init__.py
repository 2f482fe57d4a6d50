"""Launchers of the lab's real services, one module per daemon."""
