"""Events of the pipeline that other apps (outbound webhooks) listen to.

Both are sent inside the transaction that wrote what they announce, so a receiver's own
rows commit or roll back with it.
"""

from django.dispatch import Signal

# Runs reached a terminal state and their job counters were updated: runs
# (list[EnrichmentRun], each holding its final state). Sent once for a batch of runs.
runs_finished = Signal()

# Observations were written: observations (list[Observation], saved); receivers pick the
# ones in state pending_review (the values flagged for a reviewer).
observations_flagged = Signal()
