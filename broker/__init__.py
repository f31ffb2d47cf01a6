"""The bus contract shared by the API, the workers and the runner.

Subject names, stream definitions, the msgspec schemas of every command and event, the
worker<->runner stdio protocol (``runner_wire``), the secret sealing used on the wire, and
the Redis session store. Importing this package is
cheap and pulls in neither nats-py nor redis: the runner inside the agent image imports
``broker.events`` and ``broker.runner_wire`` alone.
"""
