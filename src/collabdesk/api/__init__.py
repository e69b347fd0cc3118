"""FastAPI routers and schemas; domain errors become problem+json here and only here."""
