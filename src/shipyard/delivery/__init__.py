"""How a release replaces another: canary and blue-green phases, gates, analysis and its statistics, A/B matches."""
