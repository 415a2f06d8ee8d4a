"""The examples in ``hivectl.api``'s docstrings run, for real, against a scratch vm_dir.

Each docstring uses ``hv``, a ``Hivectl`` over an initialised vm_dir in tmp holding one guest, ``doc``
(debian template, 1G disk). They run in doctest's order (by method name) on the same ``hv``, so every
example states what it needs itself.
"""

from __future__ import annotations

import doctest
from pathlib import Path

import hivectl.api
from hivectl.api import Hivectl


def test_docstring_examples(vmdir: Path) -> None:
    hv = Hivectl()
    hv.create("doc", template="debian", size="1G", cpu="1")
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    examples = 0
    for test in finder.find(hivectl.api, globs={"hv": hv}):
        test.globs["hv"] = hv
        examples += len(test.examples)
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0
    assert examples >= 20, "the API's docstrings lost their examples"
