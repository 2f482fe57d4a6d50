"""draas: automatic disaster-recovery failover for services hosted on OpenStack."""

__version__ = "0.1.0"
