"""The use cases under the pages, the API and the terminal: what a view needs, as plain data, with no web framework.

:mod:`~app.views.train_form` turns the training form's fields (or the terminal's options) into a training
configuration and back.
"""
