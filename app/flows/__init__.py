"""Orchestration across domains: the steps of a request's life in order (``request.py``).

Sits above the domains it calls and below the edges that call it (routers, pages, tasks,
commands); no domain imports it (``tests/system/test_architecture.py``, docs/architecture.md).
"""
