"""``make bench``: addon-mount's speed and memory against baselines, side by side."""
