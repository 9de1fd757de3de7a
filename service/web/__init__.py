"""The Settings > API pages and sign-in: server-rendered HTML, sessions in Redis, CSRF tokens."""

from service.web.render import error_page
from service.web.routes import routes

__all__ = ["error_page", "routes"]
