"""Campaigns: plan one job per (customer, channel) from one snapshot, run them, report.

plan.py turns a segment run into jobs in the ledger (contact rules applied, quiet hours scheduled);
run.py claims jobs, renders and delivers them through the channel steps (steps.py) on a local pool or on
Celery workers, with leases, a sweeper and an error budget; report.py reads the ledger back.
"""
