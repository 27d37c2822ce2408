"""Parley tasks: what task authors write. Import only `worlds.base` from here."""
