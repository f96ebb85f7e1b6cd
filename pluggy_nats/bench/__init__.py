"""In-process measurements of the core's data path (:mod:`.hotpath`:
``python -m pluggy_nats.bench.hotpath all --callgrind``). The load generator,
``pluggy-nats bench``, is the bench plugin (``plugins/bench``)."""
