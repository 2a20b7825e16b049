"""The production server's front (:mod:`~app.serving.front`): gunicorn's asyncio worker, which reads each request
in its event loop and hands the app only whole ones."""
