"""The ``agcluster`` command and the local stack it can run (``agcluster up``)."""
