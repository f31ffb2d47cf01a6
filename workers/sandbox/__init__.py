"""The sandbox boundary as the worker holds it: everything a container may reach goes through here.

An agent container has ``--network none``; its only ways out are two unix sockets in a
per-sandbox host directory mounted at ``/run/agc`` (:mod:`broker.sandbox_wire`):

- ``gw.sock``, the model gateway (:mod:`.gateway`): swaps the session's token for its real
  model key (unsealed only in this process), streams to the operator's model API unbuffered,
  meters usage and cost from the model's own stream (:mod:`.meter`, :mod:`.pricing`), and
  forwards remote MCP servers with their headers added here;
- ``egress.sock``, the egress proxy (:mod:`.egress`): HTTP CONNECT and absolute-URI requests
  by host name, per the session's policy (:mod:`.policy`), never to a private address.

:mod:`.registry` binds a sandbox to a session by a random per-session token;
:mod:`.host` creates the directories and serves the sockets.
"""
