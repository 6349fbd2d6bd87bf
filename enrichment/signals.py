"""Events of the pipeline that other apps (outbound webhooks) listen to.

Both are sent inside the transaction that wrote what they announce, so a receiver's own
rows commit or roll back with it.
"""

from django.dispatch import Signal

# A run reached a terminal state and its job counters were updated: run (EnrichmentRun),
# state (str, the terminal state; the instance may still hold the old one).
run_finished = Signal()

# Observations were written: observations (list[Observation], saved); receivers pick the
# ones in state pending_review (the values flagged for a reviewer).
observations_flagged = Signal()
