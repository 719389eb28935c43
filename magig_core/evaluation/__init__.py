"""The ``evaluate`` command's machinery: job plan, batch loop, records, summaries, process sharding."""
