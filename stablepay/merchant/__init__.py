"""The merchant dashboard (/merchant/): overview, payments, settlement report and CSV, settings.

`selectors` holds the reads (shared with the settlements API), `services` the settings writes,
`views` the thin pages. A signed-in user sees only the merchants they are a member of.
"""
