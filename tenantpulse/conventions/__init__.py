"""Conventions every component shares and none redefines: the metric catalog, named indicators,
sensitivity presets, exposition content types and label escaping."""
