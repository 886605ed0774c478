"""The mission scheduler in the running system (issue 17): the planning engine (``scheduler/``)
fed with live state, its plans stored, its steps executed through the command ledger.

- ``problem``: a ``scheduler.Problem`` from the database's tasks and stations and the cluster's
  satellites, with pass, target and sunlight windows from ``orbital`` (cached per horizon);
- ``service``: the scheduler that holds the lease, re-plans when something changes and turns
  planned steps into ledger commands (the ``scheduler`` node role runs it).
"""
