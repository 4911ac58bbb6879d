"""Events on the move: the publisher functions use, and the local broker of the embedded platform
(Knative Broker/Trigger semantics on a SQLite queue: ``manifests.load_topology``, ``broker.LocalBroker``).

Nothing is imported here: a function that only publishes must not pay for the broker's imports.
"""
