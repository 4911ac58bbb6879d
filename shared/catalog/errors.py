"""What a catalog store raises, whichever database is behind it."""


class CatalogUnavailable(Exception):
    """The catalog database cannot be reached or is overloaded (HTTP 503 upstream; retry later)."""


class QueryTooComplex(Exception):
    """The database refuses the statement of a query as too complex (its parser's or planner's limits).

    A query that can never succeed: the client is told (400), not asked to retry (503).
    """


# SQLite's own errors for statements beyond its compiled-in limits (sqlite3.OperationalError).
SQLITE_LIMIT_ERRORS = (
    "parser stack overflow",
    "expression tree is too large",
    "too many sql variables",
    "too many terms",
    "too many arguments on function",
    "like or glob pattern too complex",
    "string or blob too big",
    "at most 64 tables in a join",
)
