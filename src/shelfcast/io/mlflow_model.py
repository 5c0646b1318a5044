"""The file MLflow runs to rebuild the pyfunc ("models from code"), so no Python object is ever pickled.

Only MLflow imports this module (when logging and loading the model); the
`set_model` call at import time is how that API works.
"""

import mlflow.models

from shelfcast.io.pyfunc import ShelfcastPyfunc

mlflow.models.set_model(ShelfcastPyfunc())
