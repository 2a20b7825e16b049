"""Dash building blocks shared by the pages; the pages themselves hold only their controls and callbacks.

- :mod:`~app.ui.page`: the frame of a model page (model choice, controls card, URL sync) and error reporting;
- :mod:`~app.ui.components`: small controls, cards, alerts, the prediction verdict;
- :mod:`~app.ui.links`: every URL to a view, and parsing URL parameters;
- :mod:`~app.ui.thumbnails`: test images as small pictures with captions;
- :mod:`~app.ui.unit_panel`: "test images that activate this unit most", for a click on any grid;
- :mod:`~app.ui.training_form`: the training page's configuration form.
"""
