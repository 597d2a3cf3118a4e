"""Early Stopping Lab for your own scripts: ``eslab.LabCallback`` records a ``model.fit`` into the app.

>>> import eslab
>>> eslab.LabCallback.__name__
'LabCallback'
"""

from core.recorded.lab_callback import LabCallback

__all__ = ["LabCallback"]
