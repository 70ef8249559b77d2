"""Backtests: the execution algorithms run against the local exchange in process, on a virtual clock.

    scenarios.py   the harness (`World`: exchange, in-process venue with latencies, OMS, parents, a
                   scripted counterparty) and the named scenarios
    report.py      every scenario measured and rendered as Markdown (`polyoms report algos`)

It sits above the algorithms and the venues and may import both; nothing below imports it.
"""
