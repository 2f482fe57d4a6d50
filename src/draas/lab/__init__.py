"""The lab: a whole two-site deployment on one machine, in network namespaces."""
