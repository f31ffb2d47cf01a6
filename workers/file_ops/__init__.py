"""Workspace file operations the owning worker performs on a session's volume.

One module per concern: ``paths`` (turning user input into workspace-relative parts and
opening what they name without leaving the workspace), ``tree``, ``preview``, ``upload``,
``archive``, and the bus side of moving bytes: ``wire`` (request shapes) and ``blobs``
(chunked transfers through the ``AGC_FILES`` object store). ``wire`` and ``blobs`` are the
contract the API shares with the workers; they import nothing from the worker itself.
"""
