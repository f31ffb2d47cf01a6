"""Workspace files: tree, preview, upload and ZIP download, served by asking the session's worker.

The API never touches the Docker engine or a volume: every operation is a request to the
session's owning worker over NATS, and bytes that do not fit a message travel through the
``AGC_FILES`` object store (``broker.blobs``), so the API and the workers can run
on different hosts.
"""
