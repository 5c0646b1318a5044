"""shelfcast."""
