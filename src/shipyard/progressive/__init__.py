"""Building blocks of progressive delivery: gates, a strategy's analysis, A/B route matches."""
