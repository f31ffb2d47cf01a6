"""The process inside each agent container: drives ``ClaudeSDKClient`` and speaks JSON lines.

Commands arrive on stdin (:mod:`broker.runner_wire`), numbered events leave on stdout.
"""
