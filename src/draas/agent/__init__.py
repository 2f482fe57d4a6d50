"""The agent daemon: one per machine; what it does follows from its node's role."""
