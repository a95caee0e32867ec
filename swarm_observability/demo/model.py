"""The reviewer's default chat model: a deterministic, offline :class:`BaseChatModel`.

The reviewer agent talks to its model through LangChain's chat-model interface only, so any real
chat model can take its place (``build_demo_graph(model=ChatOpenAI(...))``). Without one, the demo
uses :class:`OfflineReviewModel`: it reads the findings from the JSON block of the prompt (the same
prompt a real model gets, see :func:`build_review_prompt`) and writes a structured review. No
network, no randomness: the same findings always give the same text, which keeps the demo and its
tests reproducible.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult

_SEVERITY_RANK = {"high": 0, "medium": 1, "low": 2, "info": 3}
_MAX_PROMPT_FINDINGS = 200
_FENCE = re.compile(r"```json\s*(\{.*?\})\s*```", re.DOTALL)

_ADVICE = {
    "secrets": "move credentials out of the source tree (env vars, a secret manager); rotate exposed keys",
    "syntax": "fix the files that do not parse; they cannot be imported or tested",
    "dependencies": "pin dependencies (== in requirements files, a version range in pyproject.toml)",
    "missing_tests": "add a test module for the untested package modules",
    "todos": "turn the open TODO-style markers into tracked issues or resolve them",
    "large_files": "keep large artefacts out of the repository (Git LFS or a release asset)",
    "binary_files": "check that committed binaries are intended; prefer building them",
    "file_access": "fix the permissions of unreadable files so every tool can scan them",
}

SYSTEM_PROMPT = (
    "You are the reviewer of a source-code audit swarm. You receive the findings of several probes as "
    "JSON. Write a short review: a first line 'Verdict: <pass|needs attention|fail> - <counts>', then "
    "'Top risks:' with the most serious findings, then 'Recommendations:' with one line per probe."
)


def build_review_prompt(
    root: str, findings: Sequence[dict[str, Any]], probes: Sequence[str]
) -> list[BaseMessage]:
    """The reviewer's messages: instructions, then the findings as a fenced JSON block.

    At most 200 findings (the most serious first) go into the prompt, so a huge scan cannot overflow a
    real model's context; the totals always cover every finding.
    """
    ranked = sorted(findings, key=_finding_key)
    payload = {
        "root": root,
        "probes": list(probes),
        "total": len(findings),
        "by_severity": dict(Counter(str(f.get("severity", "info")) for f in findings)),
        "findings": ranked[:_MAX_PROMPT_FINDINGS],
    }
    body = json.dumps(payload, indent=1, sort_keys=True, ensure_ascii=False)
    return [SystemMessage(SYSTEM_PROMPT), HumanMessage(f"Findings of the audit:\n```json\n{body}\n```")]


class OfflineReviewModel(BaseChatModel):
    """A deterministic chat model that reviews audit findings without any network access.

    It understands exactly one kind of prompt: the last human message must contain a fenced
    ```` ```json ```` block with ``findings`` (as written by :func:`build_review_prompt`). Anything
    else gets a polite answer saying no findings were found in the prompt.
    """

    max_risks: int = 5
    """How many findings the "Top risks" section lists."""
    model_name: str = "offline-reviewer"
    """The model name the instrumentation records (``ls_model_name``), as a provider's model has one."""

    @property
    def _llm_type(self) -> str:
        return "swarm-obs-offline-reviewer"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "swarm_obs"
        return params

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"max_risks": self.max_risks}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        prompt = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
        payload = _parse_payload(prompt.text if prompt is not None else "")
        text = self._review(payload) if payload is not None else "No audit findings were found in the prompt."
        prompt_words = sum(len(m.text.split()) for m in messages)
        message = AIMessage(
            content=text,
            response_metadata={"model_name": self._llm_type},
            usage_metadata={
                "input_tokens": prompt_words,
                "output_tokens": len(text.split()),
                "total_tokens": prompt_words + len(text.split()),
            },
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _review(self, payload: dict[str, Any]) -> str:
        findings = [f for f in payload.get("findings", []) if isinstance(f, dict)]
        by_severity = Counter(payload.get("by_severity") or [str(f.get("severity")) for f in findings])
        total = int(payload.get("total", len(findings)))
        if by_severity.get("high"):
            verdict = "fail"
        elif by_severity.get("medium"):
            verdict = "needs attention"
        else:
            verdict = "pass"
        counts = (
            ", ".join(f"{by_severity[s]} {s}" for s in _SEVERITY_RANK if by_severity.get(s)) or "no findings"
        )
        lines = [f"Verdict: {verdict} - {total} finding(s): {counts}."]
        serious = [f for f in sorted(findings, key=_finding_key) if f.get("severity") in ("high", "medium")]
        lines.append("Top risks:")
        if serious:
            for number, finding in enumerate(serious[: self.max_risks], start=1):
                where = finding.get("path", "?") + (f":{finding['line']}" if finding.get("line") else "")
                label = f"[{finding.get('severity')}] {finding.get('probe')}"
                lines.append(f"{number}. {label}: {finding.get('message')} ({where})")
        else:
            lines.append("none - nothing of high or medium severity.")
        probes_with_findings = sorted({str(f.get("probe")) for f in findings})
        lines.append("Recommendations:")
        for probe_name in probes_with_findings:
            advice = _ADVICE.get(probe_name, "review these findings")
            lines.append(f"- {probe_name}: {advice}.")
        if not probes_with_findings:
            lines.append("- keep it that way: run the audit in CI.")
        return "\n".join(lines)


def _parse_payload(text: str) -> dict[str, Any] | None:
    match = _FENCE.search(text)
    try:
        payload = json.loads(match.group(1) if match else text)
    except (json.JSONDecodeError, TypeError):
        return None
    return payload if isinstance(payload, dict) and isinstance(payload.get("findings"), list) else None


def _finding_key(finding: dict[str, Any]) -> tuple[Any, ...]:
    return (
        _SEVERITY_RANK.get(str(finding.get("severity")), 9),
        str(finding.get("probe", "")),
        str(finding.get("path", "")),
        finding.get("line") or 0,
    )
