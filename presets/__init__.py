"""Named run requests shipped with btlab (installed as `btlab._presets`); see btlab/presets.py in src."""
