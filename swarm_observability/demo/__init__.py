"""The demo swarm: a LangGraph multi-agent audit of a source folder, instrumented end to end.

``swarm-obs demo [PATH]`` runs it (see :mod:`.runner`); in code::

    from langgraph.checkpoint.memory import InMemorySaver
    from swarm_observability import SwarmObserver
    from swarm_observability.demo import build_demo_graph, scan_input

    observer = SwarmObserver()
    graph = observer.instrument(build_demo_graph(checkpointer=InMemorySaver()))
    result = graph.invoke(scan_input("."), {"configurable": {"thread_id": "audit-1"}})
    print(result["verdict"], len(result["findings"]))

Pass any LangChain chat model as ``build_demo_graph(model=...)`` to have it write the review; the
default :class:`OfflineReviewModel` is deterministic and needs no network.
"""

from .graph import DELAY_ENV, build_demo_graph, scan_input
from .model import OfflineReviewModel, build_review_prompt
from .probes import PROBES, Finding, ProbeSpec, take_inventory

__all__ = [
    "DELAY_ENV",
    "PROBES",
    "Finding",
    "OfflineReviewModel",
    "ProbeSpec",
    "build_demo_graph",
    "build_review_prompt",
    "scan_input",
    "take_inventory",
]
