"""A sweep's outcome written back into the catalog: the sync, the sealed outcomes it may write, the catch-up of every command."""
