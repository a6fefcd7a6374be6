"""The ORM advisor: the user's SQLAlchemy models, and what their lazy loads cost.

``models.py`` imports the user's models in a subprocess and describes them as plain
dataclasses (``ModelMap``); ``reflect.py`` builds the same map from the database when
there are no models, naming things as sqlacodegen would. The rest of the package (N+1
detection, loader-option rewrites) and ``render/sqlalchemy.py`` read only that map.
"""
