"""Workers: consume commands, own sessions, drive their containers, relay events to NATS."""
