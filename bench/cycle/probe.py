"""What a cycle worker reads about the server and itself: API requests served, peak RSS.

Standard library only: the slo-generator worker, which must not import sloengine, uses it
as well as the sloengine worker and the benchmark's driver, so all count the same way.
"""

from __future__ import annotations

import re
import resource
import urllib.request

_REQUESTS = re.compile(
    r'^prometheus_http_requests_total\{code="[^"]*",handler="(/api/[^"]*)"\} (\S+)$'
)


def api_requests(url: str) -> int:
    """Requests Prometheus has served on its query API (it counts them itself)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=60) as response:
        text = response.read().decode()
    return int(sum(float(m.group(2)) for line in text.splitlines() if (m := _REQUESTS.match(line))))


def max_rss_bytes() -> int:
    """This process's peak resident memory."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
