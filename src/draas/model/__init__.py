"""``draas model``: what a deployment's settings predict, before a disaster shows it (issue
20). Written from the product's own rules, not fitted: a probe fails with a probability that
follows from the path (loss, jitter, round trip) and the probe's timeout (``network``); an
observer's rise/fall detector is a Markov chain over its probes (``chains``); a site counts
down when a quorum of observers has seen it down for the confirmation window
(``falsealarms``). Pure functions of the configuration the agents run; numpy for the
numerics.
"""
