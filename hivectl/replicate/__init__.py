"""Replication jobs (issue 12 item 3): keep a stopped copy of a guest on another host, on a schedule.

``hivectl replicate NAME REMOTE --every 15m --keep keep-last=..`` records a job (:mod:`.jobs`);
``hivectl replicate --run-due`` (cron) or hivectld's scheduler thread (:mod:`.scheduler`) runs the jobs that
are due (:mod:`.schedule`: the interval, and back-off after failures); a run (:mod:`.run`) takes a snapshot,
sends it with hivectl/transfer, moves the holds, and prunes both sides with hivectl/retention;
``hivectl replicate status`` reads what the runs recorded; ``hivectl promote NAME`` (:mod:`.promote`) turns
the copy into a normal guest on the DR host. docs/replication.md is the administrator's page.
"""
