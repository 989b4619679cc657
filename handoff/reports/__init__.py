"""Reports (seed ch. 4.3, 6, 10): service levels, satisfaction, quality inspection (质检) and staffing advice.

``recorder`` adds each event to hourly and daily Redis buckets as it happens (``buckets`` says which counters);
``queries``, ``quality`` and ``staffing`` turn a range of day buckets into reports; ``report`` names them for the
API (``api``: ``/api/reports/*`` and the page ``/reports``) and the CLI (``cli``: ``gateway report``, ``gateway
demo seed`` with ``seed``). Configuration: ``config/reports.yml`` and ``config/quality.yml``."""
