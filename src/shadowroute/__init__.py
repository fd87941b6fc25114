"""shadowroute."""
