"""Page routes for quality advisers, one module per page (app.web.signin, queue, report, report_list, statistics,
overview, model_page; what they share is app.web.pages): parse, authorise (the API's roles), call the API's
service functions, render a template. No SQL here and no calls to the API over HTTP."""

from __future__ import annotations

from app.web import model_page, overview, queue, report, report_list, signin, statistics
from app.web.assets import serve_asset
from app.web.pages import PUBLIC_PATHS, PageAuthorize, install_not_found_page, page_router
from app.web.statistics import STATS_PARTS

__all__ = ["PUBLIC_PATHS", "STATS_PARTS", "PageAuthorize", "install_not_found_page", "router"]

router = page_router()
router.add_route("/static/{name}", serve_asset, methods=["GET"], include_in_schema=False)
# The pages' own routes, as they are (include_router would nest each module's router as one entry).
for page in (signin, queue, report, report_list, statistics, overview, model_page):
    router.routes.extend(page.router.routes)
