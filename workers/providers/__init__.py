"""Where agent containers run: the provider interface (``base``) and its implementations.

``docker`` drives a Docker Engine. A provider creates, starts, attaches to, lists, inspects
and removes one container per session; the worker's launch, reconcile and file code only
ever talks to the :class:`~workers.providers.base.Provider` interface.
"""
