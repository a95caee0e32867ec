"""The instrumentation core: node wrappers, the scan lifecycle, the recorder of scopes and the helpers.

``SwarmObserver.instrument(graph)`` wraps every node (:mod:`.nodes`) and gives the compiled graph a
scan lifecycle (:mod:`.lifecycle`); both open and close scopes recorded by :mod:`.recorder`, which
emits through the :class:`~swarm_observability.emitter.EventEmitter`. The public names are
re-exported by :mod:`swarm_observability`; import them from there.
"""
