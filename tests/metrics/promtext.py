"""Reading metrics text back, and promtool: helpers of the metrics tests."""

from __future__ import annotations

import shutil
import subprocess

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of a Prometheus text exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(text_or_samples: str | dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float | None:
    """The value of the one sample ``name`` whose labels include ``labels``; None when there is none."""
    found = samples(text_or_samples) if isinstance(text_or_samples, str) else text_or_samples
    hits = [v for (n, ls), v in found.items() if n == name and labels.items() <= dict(ls).items()]
    assert len(hits) <= 1, f"{name}{labels}: {len(hits)} samples"
    return hits[0] if hits else None


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    """``promtool check metrics`` (Debian's prometheus package, scripts/setup) on ``text``."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run scripts/setup (Debian package prometheus)"
    return subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                          check=False, timeout=30)
