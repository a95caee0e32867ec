"""Benchmarks of swarm-observability: overhead per node, store throughput, live latency, peers.

Run ``python -m benchmarks.run`` (``make bench``) for the full set, ``--smoke`` for a seconds-long pass
with tiny sizes, ``--only NAME`` for one section. Results go to ``benchmarks/results/latest.json`` and
``latest.md``; see :mod:`benchmarks.run`.
"""
