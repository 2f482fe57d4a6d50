"""Deciding and carrying out failover, failback and switchover (the pure policy and the
runbooks that act on it)."""
