"""Measuring recovery from the client's side: the RTO meter and the lost-write accounting."""
