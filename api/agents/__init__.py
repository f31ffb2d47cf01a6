"""Agent sessions: launch, chat, events, interrupt, list, inspect, stop."""
