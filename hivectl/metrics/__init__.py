"""Prometheus metrics of the host and its guests (issue 11, item 6; docs/metrics.md lists every metric).

``collect.scrape`` reads one :class:`~hivectl.metrics.sample.Snapshot` (plain values, no dependency), from
the platform's sources: on Linux ``/proc``, ``/sys/class/net`` and QMP (``linux.py``); on FreeBSD
``bhyvectl --get-stats``, ``rctl -u`` and ``netstat`` (``freebsd.py``). ``exposition`` turns a snapshot
into Prometheus text through ``prometheus_client`` (the optional ``metrics`` extra, imported only there)
and caches it for a few seconds, so several scrapers do not multiply the cost of a scrape.
"""
