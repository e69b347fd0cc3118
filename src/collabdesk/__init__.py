"""collabdesk: collaborative work orders for marketplace after-sales disputes."""

__version__ = "0.1.0"
