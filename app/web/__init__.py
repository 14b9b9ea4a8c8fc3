"""Web pages for quality advisers: server-rendered Jinja2 with htmx, in bokmål (see app/web/router.py: one
module per page, what they share in app/web/pages.py)."""
