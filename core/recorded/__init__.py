"""Runs the app did not train: a user's own ``model.fit`` (``LabCallback``) recorded into the runs folder,
shown, replayed and compared like the app's own, never trained here."""
