"""The process inside each agent container: drives ``ClaudeSDKClient`` and speaks JSON lines.

Commands arrive on stdin (:mod:`runner.protocol`), numbered events leave on stdout.
"""
