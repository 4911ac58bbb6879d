"""The browser side of refsys: the map client's site (``site.py``) and CORS for the APIs it calls (``cors.py``)."""
