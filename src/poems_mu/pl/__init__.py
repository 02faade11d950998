"""poems_mu.pl."""
