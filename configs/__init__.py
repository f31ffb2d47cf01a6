"""Agent configurations: the schema (:mod:`configs.model`), the shipped presets
(``presets/*.yaml``), the store of presets and custom configs (:mod:`configs.store`) and its
errors (:mod:`configs.errors`). ``README.md`` next to this file is the field reference.
"""
