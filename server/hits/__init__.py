"""The HIT manager: publish, top up, expire, reconcile, sync assignments, review.

- `plan`: pure rules (tokens, fees, requirements, how many HITs to keep open)
- `quals`: Parley's qualification types on an account
- `publisher`: create / expire HITs and keep their records true to ListHITs
- `sync`: assignments -> agent states
- `review`: approve, reject, bonus, block, notify
- `manager`: the background loop tying them to the runs this process serves
- `admin`: what the CLI does without a server (publish a run, expire, clean up)
"""

from server.hits.admin import LiveModeRefused, check_live, publish_run
from server.hits.manager import HitManager
from server.hits.review import ReviewError
from server.store.hits import BudgetExceeded

__all__ = ["BudgetExceeded", "HitManager", "LiveModeRefused", "ReviewError", "check_live", "publish_run"]
