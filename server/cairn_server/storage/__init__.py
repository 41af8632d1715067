"""Storage tiers: a hot cache in front of a cold store, composed by tiered.TieredStore."""
