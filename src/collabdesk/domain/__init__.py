"""Pure domain: states, transitions, policy, metrics, points, audit. No I/O here."""
