"""ChargeLedger: an event-sourced transaction and billing ledger for EV charging."""

__version__ = "0.1.0"
