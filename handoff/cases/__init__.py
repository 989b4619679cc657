"""Complaint cases (seed ch. 5): see ``handoff.cases.front``."""
